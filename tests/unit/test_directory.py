"""The admin console's directory back end: device presence, bulk CSV import, the allocation plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.db import store
from huiyan.db.models import Device, OrgLevel
from huiyan.db.numbering import DEFAULT_PLAN
from huiyan.db.seed import CITY_DEVICES, COUNTY_DEVICES, PROVINCE_DEVICES
from huiyan.directory import csv_import
from huiyan.directory.plan import allocation_plan
from huiyan.directory.presence import DevicePresence, PresenceBook, PresenceService, parse_contact_list
from huiyan.pbx.events import parse_event
from tests.unit.conftest import ApiHarness

# ---- presence: the state machine ------------------------------------------------------------------


def test_a_device_is_online_from_registration_until_removed() -> None:
    book = PresenceBook()
    assert book.apply("80001", "sip:80001@10.0.0.5:5060", "Created").online is True
    assert book.apply("80001", "sip:80001@10.0.0.5:5060", "Reachable") is None  # no flip, no change
    assert book.apply("80001", "sip:80001@10.0.0.5:5060", "Removed").online is False
    assert not book.online("80001")


def test_unreachable_is_offline_and_reachable_again_is_online() -> None:
    book = PresenceBook()
    book.apply("80002", "u", "NonQualified")
    assert book.online("80002")
    assert book.apply("80002", "u", "Unreachable").online is False
    assert book.apply("80002", "u", "Reachable").online is True


def test_a_device_with_two_contacts_stays_online_until_both_go() -> None:
    book = PresenceBook()
    book.apply("80003", "a", "Created")
    assert book.apply("80003", "b", "Created") is None
    assert book.apply("80003", "a", "Removed") is None
    assert book.online("80003")
    assert book.apply("80003", "b", "Unreachable").online is False


def test_statuses_that_say_nothing_change_nothing() -> None:
    book = PresenceBook()
    assert book.apply("80004", "u", "Bogus") is None
    assert book.apply("", "u", "Created") is None
    assert not book.online("80004")


def test_contact_list_parsing_takes_the_aor_from_the_object_name_too() -> None:
    items = [
        {"Event": "ContactList", "ObjectName": "80001;@abc", "Uri": "sip:80001@127.0.0.1:5070", "Status": "Reachable",
         "Aor": "80001"},
        {"Event": "ContactList", "ObjectName": "80002;@def", "Uri": "sip:80002@127.0.0.1:5071", "Status": "Unknown"},
        {"Event": "ContactList", "ObjectName": "80003;@ghi", "Uri": "sip:80003@127.0.0.1:5072",
         "Status": "Unreachable"},
        {"Event": "ContactListComplete", "ListItems": "3"},
    ]
    parsed = parse_contact_list(items)
    assert [p[0] for p in parsed] == ["80001", "80002", "80003"]
    book = PresenceBook()
    book.replace(parsed)
    assert book.online_extensions() == {"80001", "80002"}


# ---- presence: the service against a real database --------------------------------------------


class StubAmi:
    """Answers PJSIPShowContacts with a fixed list (the real AMI is exercised in tests/integration)."""

    connected = True

    def __init__(self, contacts: list[dict[str, str]]) -> None:
        self.contacts = contacts

    async def action_list(self, name: str, timeout: float | None = None, **_: Any) -> list[dict[str, str]]:
        assert name == "PJSIPShowContacts"
        return list(self.contacts)


def _devices(db_sessions: sessionmaker[Session], n: int) -> list[tuple[int, str]]:
    with db_sessions() as s:
        org = store.create_organisation(s, name="吉林省司法厅", code="220000", level=OrgLevel.PROVINCE)
        out = []
        for i in range(n):
            d = store.create_device(s, serial=f"T-{i}", organisation_id=org.id)
            out.append((d.id, d.extension))
        s.commit()
        return out


def _state(db_sessions: sessionmaker[Session]) -> dict[str, tuple[bool, datetime | None]]:
    with db_sessions() as s:
        return {d.extension: (d.online, d.last_seen) for d in s.scalars(select(Device))}


async def _until(pred: Any, timeout: float = 3) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_service_reconciles_on_start_then_follows_events_into_the_database(
    db_sessions: sessionmaker[Session],
) -> None:
    (id1, ext1), (id2, ext2), (_, ext3) = _devices(db_sessions, 3)
    with db_sessions() as s:  # a stale "online" from before a restart, for a device no longer registered
        s.get(Device, id2).online = True
        s.commit()
    bus = EventBus()
    seen: list[DevicePresence] = []
    bus.on(lambda e: seen.append(e) if isinstance(e, DevicePresence) else None)
    ami = StubAmi([{"Event": "ContactList", "ObjectName": f"{ext1};@x", "Uri": f"sip:{ext1}@h", "Status": "Reachable"}])
    svc = PresenceService("pbx1", db_sessions, bus, ami)
    bus.on(svc.on_event)
    await svc.start()
    try:
        state = _state(db_sessions)
        assert state[ext1][0] is True and state[ext1][1] is not None
        assert state[ext2][0] is False and state[ext3][0] is False
        assert {(e.device_id, e.online) for e in seen} == {(id1, True), (id2, False)}

        def contact(ext: str, status: str) -> None:
            bus.publish(parse_event("pbx1", {"Event": "ContactStatus", "AOR": ext, "URI": f"sip:{ext}@h",
                                             "ContactStatus": status, "EndpointName": ext}))

        contact(ext3, "Created")
        contact(ext1, "Removed")
        contact("89999", "Created")  # a user's browser endpoint: not a device, nothing to write
        await _until(lambda: _state(db_sessions)[ext3][0] and not _state(db_sessions)[ext1][0])
        assert seen[-2:] == [
            DevicePresence(seen[-2].device_id, ext3, True, seen[-2].last_seen),
            DevicePresence(id1, ext1, False, seen[-1].last_seen),
        ]
        assert all(e.extension != "89999" for e in seen)
        contact(ext3, "Unreachable")
        await _until(lambda: not _state(db_sessions)[ext3][0])
    finally:
        await svc.stop()


async def test_an_empty_contact_list_answer_marks_everyone_offline(db_sessions: sessionmaker[Session]) -> None:
    from huiyan.pbx.ami import AmiActionError, AmiResponse

    (id1, ext1), = _devices(db_sessions, 1)
    with db_sessions() as s:
        s.get(Device, id1).online = True
        s.commit()

    class NoContacts(StubAmi):
        async def action_list(self, name: str, timeout: float | None = None, **_: Any) -> list[dict[str, str]]:
            resp = AmiResponse("pbx1", name, {"Response": "Error", "Message": "No Contacts found"})
            raise AmiActionError(f"{name} failed on node pbx1: No Contacts found", resp)

    svc = PresenceService("pbx1", db_sessions, EventBus(), NoContacts([]))
    await svc.start()
    await svc.stop()
    assert _state(db_sessions)[ext1][0] is False


# ---- the allocation plan ------------------------------------------------------------------------


def test_plan_counts_per_level_and_per_organisation() -> None:
    orgs = [(1, "220000", "省厅", OrgLevel.PROVINCE), (2, "220100", "长春", OrgLevel.CITY),
            (3, "220200", "吉林", OrgLevel.CITY), (4, "220102", "南关", OrgLevel.COUNTY),
            (5, "220102-001", "某所", OrgLevel.OFFICE)]
    counts = {(1, "head"): 8, (1, "hotline"): 3, (2, "head"): 2, (2, None): 1, (4, "command"): 1, (5, "x"): 1}
    plan = allocation_plan(orgs, counts)
    province_total = sum(n for _, _, n in PROVINCE_DEVICES)
    city_total = sum(n for _, _, n in CITY_DEVICES)
    county_total = sum(n for _, _, n in COUNTY_DEVICES)
    by_id = {o.organisation_id: o for o in plan.organisations}
    assert (by_id[1].planned, by_id[1].actual, by_id[1].missing) == (province_total, 11, province_total - 11)
    # 长春 has one head too many and one device in no department: neither fills another department's gap.
    assert (by_id[2].planned, by_id[2].actual, by_id[2].missing) == (city_total, 3, city_total - 1)
    assert [d.department for d in by_id[2].departments][-1] == "other"
    assert (by_id[3].actual, by_id[3].missing) == (0, city_total)
    assert (by_id[4].planned, by_id[4].missing) == (county_total, county_total - 1)
    assert (by_id[5].planned, by_id[5].actual, by_id[5].missing) == (0, 1, 0)
    levels = {lv.level: lv for lv in plan.levels}
    assert (levels[OrgLevel.CITY].organisations, levels[OrgLevel.CITY].planned) == (2, 2 * city_total)
    assert levels[OrgLevel.CITY].planned_each == city_total
    assert plan.planned == province_total + 2 * city_total + county_total
    assert plan.missing == sum(o.missing for o in plan.organisations)


def test_plan_endpoint_on_the_seeded_directory(api: ApiHarness) -> None:
    from huiyan.db.seed import seed_demo

    with api.sessions() as s:
        seed_demo(s)
    r = api.client.get("/api/devices/plan", headers=api.auth("supervisor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["missing"] == 0 and body["planned"] == body["actual"] > 0  # the seed fills its own plan
    province = next(o for o in body["organisations"] if o["code"] == "220000")
    assert province["planned"] == sum(n for _, _, n in PROVINCE_DEVICES)
    assert api.client.get("/api/devices/plan", headers=api.auth("agent")).status_code == 403


# ---- CSV import: the checks --------------------------------------------------------------------


def _check(text: str | bytes, *, serials: set[str] = frozenset(), exts: set[str] = frozenset()) -> csv_import.Checked:
    data = text.encode() if isinstance(text, str) else text
    _, rows = csv_import.parse(csv_import.decode(data))
    return csv_import.check(rows, org_ids={"220100": 7}, serials_taken=set(serials), extensions_taken=set(exts),
                            plan=DEFAULT_PLAN)


def test_good_rows_pass_with_chinese_headers_and_kinds() -> None:
    checked = _check("机构代码,类型,序列号,名称,部门\n220100,终端,XY-1,长春 会议室,command\n220100,kiosk,XY-2,大厅,\n")
    assert checked.errors == []
    assert [(r.row, r.organisation_id, r.kind.value, r.serial, r.department) for r in checked.rows] == [
        (2, 7, "terminal", "XY-1", "command"), (3, 7, "kiosk", "XY-2", None)]


def test_every_bad_row_is_reported_with_row_and_column() -> None:
    text = ("org_code,kind,serial,name,extension\n"
            "999999,terminal,A-1,ok,\n"          # 2: unknown organisation
            "220100,phone,A-2,ok,\n"             # 3: unknown kind
            "220100,terminal,A-3,ok,\n"
            "220100,terminal,A-3,again,\n"       # 5: duplicate serial inside the file
            "220100,terminal,OLD-1,ok,\n"        # 6: serial already in the database
            "220100,terminal,bad serial,ok,\n"   # 7: bad characters
            "220100,terminal,A-8,\"x;y\",\n"     # 8: bad name
            "220100,terminal,A-9,ok,12\n")       # 9: extension outside the plan
    checked = _check(text, serials={"OLD-1"})
    got = {(e.row, e.column) for e in checked.errors}
    assert got == {(2, "org_code"), (3, "kind"), (5, "serial"), (6, "serial"), (7, "serial"), (8, "name"),
                   (9, "extension")}
    assert any("also on row 4" in e.reason for e in checked.errors)
    assert any("already exists" in e.reason for e in checked.errors)


def test_missing_and_unknown_columns_are_refused_at_the_header() -> None:
    with pytest.raises(csv_import.ImportRejected) as exc:
        _check("org_code,kind,serial,colour\n220100,terminal,A-1,red\n")
    assert {(e.row, e.column) for e in exc.value.errors} == {(1, "colour"), (1, "name")}


def test_gbk_files_from_excel_are_read_and_garbage_is_refused() -> None:
    gbk = "org_code,kind,serial,name\n220100,terminal,G-1,长春市司法局\n".encode("gbk")
    assert _check(gbk).rows[0].display_name == "长春市司法局"
    bom = "\ufefforg_code,kind,serial,name\n220100,terminal,G-2,x\n".encode()
    assert _check(bom).rows[0].serial == "G-2"
    with pytest.raises(csv_import.ImportRejected, match="neither UTF-8 nor GBK"):
        _check(b"org_code,kind,serial,name\n220100,terminal,G-3,\x80\xff\x80\n")
    with pytest.raises(csv_import.ImportRejected, match="UTF-16"):
        _check("org_code,kind\n".encode("utf-16"))
    with pytest.raises(csv_import.ImportRejected, match="no device rows"):
        _check("org_code,kind,serial,name\n\n")


# ---- CSV import: the route ------------------------------------------------------------------------


def _post(api: ApiHarness, body: bytes, role: str = "admin", ctype: str = "text/csv") -> Any:
    return api.client.post("/api/devices/import", content=body,
                           headers={**api.auth(role), "Content-Type": ctype})


def test_import_creates_all_rows_in_one_go_and_renders_once(api: ApiHarness) -> None:
    api.org("220100", level="province")
    before = api.directory_changes
    r = _post(api, "org_code,kind,serial,name\n220100,terminal,IM-1,一号\n220100,softphone,IM-2,二号\n"
                   "220100,browser,IM-3,三号\n".encode())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == 3 and all(d["sip_password"] and d["extension"] for d in body["devices"])
    assert api.directory_changes == before + 1
    listed = api.client.get("/api/devices?q=IM-", headers=api.auth("admin")).json()
    assert listed["total"] == 3 and {d["online"] for d in listed["items"]} == {False}


def test_import_with_one_bad_row_creates_nothing(api: ApiHarness) -> None:
    api.org("220100", level="province")
    r = _post(api, b"org_code,kind,serial,name\n220100,terminal,OK-1,a\n220199,terminal,OK-2,b\n")
    assert r.status_code == 422
    assert r.json()["errors"] == [{"row": 3, "column": "org_code", "reason": "no organisation has the code '220199'"}]
    assert api.client.get("/api/devices?q=OK-", headers=api.auth("admin")).json()["total"] == 0
    r = _post(api, b"\x80\x80\xff")
    assert r.status_code == 422 and "UTF-8" in r.json()["errors"][0]["reason"]
    assert _post(api, b"x", ctype="multipart/form-data; boundary=x").status_code == 415
    assert _post(api, b"org_code,kind,serial,name\n", role="supervisor").status_code == 403


def test_device_list_filters_on_presence(api: ApiHarness) -> None:
    org = api.org("220100", level="province")
    ids = [api.client.post("/api/devices", json={"serial": f"P-{i}", "organisation_id": org},
                           headers=api.auth("admin")).json()["id"] for i in range(2)]
    with api.sessions() as s:
        s.get(Device, ids[1]).online = True
        s.get(Device, ids[1]).last_seen = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
        s.commit()
    on = api.client.get("/api/devices?online=true", headers=api.auth("admin")).json()
    assert [d["id"] for d in on["items"]] == [ids[1]] and on["items"][0]["last_seen"].startswith("2026-11-29T08:00")
    off = api.client.get("/api/devices?online=false", headers=api.auth("admin")).json()
    assert [d["id"] for d in off["items"]] == [ids[0]]
