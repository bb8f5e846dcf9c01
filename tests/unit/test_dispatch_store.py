"""Dispatch groups resolved against the seeded Jilin tree, the groups' rules, and dispatches with their
emergency room and legs in the database."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.db import store as directory
from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import Device, DeviceKind, Organisation, OrgLevel, RoomKind, User
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.seed import CITY_DEVICES, COUNTY_DEVICES, PREFECTURES, seed_demo
from huiyan.dispatch import store
from huiyan.dispatch.model import LegKind, LegStatus, RetryPolicy

ROOMS = ExtensionPlan.from_pattern("_6XXX")
INTERNAL = ExtensionPlan.from_pattern("_8XXXX")
CITIES = len(PREFECTURES) + 1  # and 长白山
COUNTIES = sum(len(c) for _, c in PREFECTURES)


@pytest.fixture
def jilin(db: Session) -> Session:
    seed_demo(db)
    return db


def _org(db: Session, code: str) -> Organisation:
    org = db.scalar(select(Organisation).where(Organisation.code == code))
    assert org is not None
    return org


def _resolve(db: Session, **group: object) -> list[store.Party]:
    g = store.create_group(db, name=f"组{len(store.list_groups(db)[0])}", **group)  # type: ignore[arg-type]
    return store.resolve_group(db, g)


def test_all_city_bureaus(jilin: Session) -> None:
    parties = _resolve(jilin, kind="all_cities")
    assert len(parties) == CITIES * len(CITY_DEVICES) == 50
    orgs = {jilin.get(Organisation, p.organisation_id) for p in parties}
    assert len(orgs) == CITIES and {o.level for o in orgs if o} == {OrgLevel.CITY}
    assert all(p.kind == LegKind.DEVICE and p.auto_answer and INTERNAL.contains(p.target) for p in parties)
    # ordered by organisation code (长白山's 220000-CBS, then 长春 220100, ...), each bureau's terminals together
    codes = [jilin.get(Organisation, p.organisation_id).code for p in parties]  # type: ignore[union-attr]
    assert codes == sorted(codes) and codes[5:10] == ["220100"] * 5
    # one department only: the command-centre terminal of each city
    command = _resolve(jilin, kind="all_cities", department="command")
    assert len(command) == CITIES and all("指挥中心" in p.name for p in command)


def test_county_bureaus_of_one_city(jilin: Session) -> None:
    changchun = _org(jilin, "220100")
    parties = _resolve(jilin, kind="counties_of_city", city_id=changchun.id)
    assert len(parties) == 11 * len(COUNTY_DEVICES)
    parents = {jilin.get(Organisation, p.organisation_id).parent_id for p in parties}  # type: ignore[union-attr]
    assert parents == {changchun.id}
    yanbian = _org(jilin, "222400")
    assert len(_resolve(jilin, kind="counties_of_city", city_id=yanbian.id, department="head")) == 8


def test_every_bureau_and_what_changes_at_dispatch_time(jilin: Session) -> None:
    group = store.create_group(jilin, name="全省", kind="all")
    parties = store.resolve_group(jilin, group)
    assert len(parties) == CITIES * len(CITY_DEVICES) + COUNTIES * len(COUNTY_DEVICES) == 290
    levels = Counter(jilin.get(Organisation, p.organisation_id).level for p in parties)  # type: ignore[union-attr]
    assert levels == {OrgLevel.CITY: 50, OrgLevel.COUNTY: 240}  # the province's own terminals are not called
    # resolved when the dispatch starts: a deactivated terminal drops out, a new one comes in
    first = jilin.get(Device, parties[0].device_id)
    assert first is not None
    directory.update_device(jilin, first.id, {"active": False})
    new = directory.create_device(jilin, serial="HY-NEW-1", organisation_id=_org(jilin, "222401").id)
    directory.create_device(jilin, serial="HY-KIOSK-1", organisation_id=_org(jilin, "222401").id,
                            kind=DeviceKind.KIOSK)  # kiosks are never called
    again = [p.device_id for p in store.resolve_group(jilin, group)]
    assert first.id not in again and new.id in again and len(again) == 290


def test_a_custom_group_of_organisations_and_devices(jilin: Session) -> None:
    baishan, songyuan = _org(jilin, "220600"), _org(jilin, "220700")
    extra = jilin.scalars(select(Device).where(Device.serial.like("HY-220000-command-%")).order_by(Device.id)).all()
    dup = jilin.scalars(select(Device).where(Device.organisation_id == baishan.id)).first()
    assert dup is not None and len(extra) == 6
    parties = _resolve(jilin, kind="custom", organisation_ids=[songyuan.id, baishan.id],
                       device_ids=[extra[0].id, dup.id, extra[1].id])
    assert [p.device_id for p in parties][-2:] == [extra[0].id, extra[1].id]  # listed devices after the bureaus'
    assert len(parties) == 2 * len(CITY_DEVICES) + 2  # the listed baishan terminal is called once
    assert [p.organisation_id for p in parties[:10]] == [baishan.id] * 5 + [songyuan.id] * 5  # by code


def test_group_rules(jilin: Session) -> None:
    changchun = _org(jilin, "220100")
    nanguan = _org(jilin, "220102")
    kiosk = directory.create_device(jilin, serial="HY-K-2", organisation_id=nanguan.id, kind=DeviceKind.KIOSK)
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"kind": "counties_of_city"}, Invalid, "needs city_id"),
        ({"kind": "counties_of_city", "city_id": nanguan.id}, Invalid, "not a city"),
        ({"kind": "counties_of_city", "city_id": 999999}, Invalid, "does not exist"),
        ({"kind": "all_cities", "city_id": changchun.id}, Invalid, "only for counties_of_city"),
        ({"kind": "all", "organisation_ids": [changchun.id]}, Invalid, "only in a custom group"),
        ({"kind": "custom"}, Invalid, "at least one"),
        ({"kind": "custom", "device_ids": [kiosk.id]}, Invalid, "kiosks"),
        ({"kind": "custom", "device_ids": [999999]}, Invalid, "do not exist"),
        ({"kind": "custom", "organisation_ids": [changchun.id, changchun.id]}, Invalid, "twice"),
        ({"kind": "all", "department": "Command!"}, Invalid, "not allowed"),
        ({"kind": "all", "name": 'a"b'}, Invalid, "not allowed"),
    ]
    for values, error, message in cases:
        values = {"name": "组", **values}
        with pytest.raises(error, match=message):
            store.create_group(jilin, **values)  # type: ignore[arg-type]
    g = store.create_group(jilin, name="长春各县区", kind="counties_of_city", city_id=changchun.id)
    with pytest.raises(Conflict, match="already used"):
        store.create_group(jilin, name="长春各县区", kind="all")
    # a new kind drops what only the old one had
    g = store.update_group(jilin, g.id, {"kind": "custom", "organisation_ids": [nanguan.id]})
    assert (g.city_id, store.member_ids(g)) == (None, ([nanguan.id], []))
    g = store.update_group(jilin, g.id, {"kind": "all_cities", "department": "command"})
    assert store.member_ids(g) == ([], []) and g.department == "command"
    with pytest.raises(Invalid, match="cannot change"):
        store.update_group(jilin, g.id, {"id": 5})
    # deleting a listed device or organisation takes it out of the group
    g2 = store.create_group(jilin, name="自选", kind="custom", device_ids=[kiosk.id - 1])
    jilin.commit()
    directory.delete_device(jilin, kiosk.id - 1)
    jilin.commit()
    jilin.expire_all()
    assert store.member_ids(store.get_group(jilin, g2.id)) == ([], [])
    store.delete_group(jilin, g.id)
    with pytest.raises(NotFound, match="dispatch group"):
        store.get_group(jilin, g.id)


def test_a_dispatch_creates_its_recorded_room_and_a_pending_leg_per_terminal(jilin: Session) -> None:
    commander = jilin.scalar(select(User).where(User.username == "supervisor"))
    assert commander is not None
    group = store.create_group(jilin, name="市州指挥中心", kind="all_cities", department="command")
    policy = RetryPolicy(retries=3, interval_s=10, on=frozenset({LegStatus.UNREACHABLE, LegStatus.BUSY}))
    d = store.create_dispatch(jilin, group_id=group.id, commander_user_id=commander.id, node="pbx1", room_plan=ROOMS,
                              policy=policy)
    room = d.room
    assert room.kind == RoomKind.DISPATCH and room.record and room.active and ROOMS.contains(room.number)
    assert [m.user_id for m in room.moderators] == [commander.id]
    assert room.pin is not None and len(room.pin) == 6  # anyone else who dials the number needs a PIN
    assert d.name == room.name == "市州指挥中心 指挥调度"
    state = store.state_of(d)
    assert state.policy == policy and state.room_number == room.number and len(state.legs) == CITIES
    assert {leg.status for leg in state.legs.values()} == {LegStatus.PENDING}
    # too many for one room, and nobody to call
    everyone = store.create_group(jilin, name="全省", kind="all")
    with pytest.raises(Conflict, match="290 terminals"):
        store.create_dispatch(jilin, group_id=everyone.id, commander_user_id=None, node="pbx1", room_plan=ROOMS,
                              policy=policy)
    office = store.create_group(jilin, name="司法所", kind="custom", organisation_ids=[_org(jilin, "220102-001").id])
    with pytest.raises(Conflict, match="no active terminal"):
        store.create_dispatch(jilin, group_id=office.id, commander_user_id=None, node="pbx1", room_plan=ROOMS,
                              policy=policy)
    with pytest.raises(NotFound):
        store.create_dispatch(jilin, group_id=999, commander_user_id=None, node="pbx1", room_plan=ROOMS, policy=policy)
    # without auto-answer no leg asks for it
    quiet = store.create_dispatch(jilin, group_id=group.id, commander_user_id=None, node="pbx1", room_plan=ROOMS,
                                  policy=policy, name="演练", auto_answer=False)
    assert quiet.name == "演练" and not any(leg.auto_answer for leg in quiet.legs)
    assert quiet.room.number != room.number


def test_adding_parties(jilin: Session) -> None:
    group = store.create_group(jilin, name="长白山", kind="custom", organisation_ids=[_org(jilin, "220000-CBS").id])
    d = store.create_dispatch(jilin, group_id=group.id, commander_user_id=None, node="pbx1", room_plan=ROOMS,
                              policy=RetryPolicy())
    lawyer = jilin.scalar(select(User).where(User.username == "lawyer"))
    device = jilin.scalars(select(Device).where(Device.serial == "HY-220100-command-01")).one()
    assert lawyer is not None
    p = store.party_for(jilin, internal=INTERNAL, user_id=lawyer.id)
    assert (p.kind, p.target, p.auto_answer) == (LegKind.USER, lawyer.extension, False)
    p = store.party_for(jilin, internal=INTERNAL, device_id=device.id, name="长春指挥")
    assert (p.kind, p.target, p.name, p.auto_answer) == (LegKind.DEVICE, device.extension, "长春指挥", True)
    assert store.party_for(jilin, internal=INTERNAL, target="sip:6001@10.20.0.5").kind == LegKind.SIP
    assert store.party_for(jilin, internal=INTERNAL, target="043188889999").kind == LegKind.PHONE
    assert store.party_for(jilin, internal=INTERNAL, target="80001").kind == LegKind.EXTENSION
    for kw, error in [({"device_id": 99999}, NotFound), ({"user_id": 99999}, NotFound), ({}, Invalid),
                      ({"target": "h323:1.2.3.4"}, Invalid), ({"target": "80001", "user_id": lawyer.id}, Invalid)]:
        with pytest.raises(error):
            store.party_for(jilin, internal=INTERNAL, **kw)  # type: ignore[arg-type]
    leg = store.add_leg(jilin, d.id, store.party_for(jilin, internal=INTERNAL, device_id=device.id))
    assert leg.status == LegStatus.PENDING and leg.dispatch_id == d.id
    with pytest.raises(Conflict, match="already in dispatch"):
        store.add_leg(jilin, d.id, store.party_for(jilin, internal=INTERNAL, device_id=device.id))
    # once that leg has ended, the same party may be called again
    leg.status = LegStatus.DROPPED
    jilin.flush()
    assert store.add_leg(jilin, d.id, store.party_for(jilin, internal=INTERNAL, device_id=device.id)).id != leg.id
    d.status = store.DispatchStatus.ENDED
    jilin.flush()
    with pytest.raises(Conflict, match="already ended"):
        store.add_leg(jilin, d.id, store.party_for(jilin, internal=INTERNAL, target="80001"))
