"""The directory's rules: organisation tree levels, unique names and numbers, safe SIP secrets, endpoints."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy.orm import Session

from huiyan.db import store
from huiyan.db.directory import endpoints
from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import DeviceKind, OrgLevel, Role
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.passwords import verify_password


def _tree(db: Session) -> tuple[int, int, int]:
    province = store.create_organisation(db, name="吉林省司法厅", code="220000", level="province")
    city = store.create_organisation(db, name="长春市司法局", code="220100", level="city", parent_id=province.id)
    county = store.create_organisation(db, name="南关区司法局", code="220102", level="county", parent_id=city.id)
    return province.id, city.id, county.id


# ---- organisations ----------------------------------------------------------------------------


def test_levels_go_down_the_tree(db: Session) -> None:
    province, city, county = _tree(db)
    office = store.create_organisation(db, name="南岭街道司法所", code="o1", level="office", parent_id=county)
    assert office.parent_id == county
    # skipping a level is fine (an office straight under a city), going sideways or up is not
    store.create_organisation(db, name="直属司法所", code="o2", level="office", parent_id=city)
    for level, parent in [("county", county), ("city", county), ("province", province), ("city", city)]:
        with pytest.raises(Invalid, match="below its parent"):
            store.create_organisation(db, name="x", code=f"bad-{level}-{parent}", level=level, parent_id=parent)


def test_reparenting_and_relevelling_keep_the_rule(db: Session) -> None:
    province, city, county = _tree(db)
    with pytest.raises(Invalid, match="below its parent"):
        store.update_organisation(db, city, {"parent_id": county})
    with pytest.raises(Invalid, match="its child"):
        store.update_organisation(db, city, {"level": OrgLevel.COUNTY})  # its county child would be level with it
    moved = store.update_organisation(db, county, {"parent_id": province})
    assert moved.parent_id == province
    with pytest.raises(Invalid, match="does not exist"):
        store.update_organisation(db, county, {"parent_id": 999})


def test_organisation_codes_are_unique_and_in_use_ones_cannot_go(db: Session) -> None:
    province, city, county = _tree(db)
    with pytest.raises(Conflict, match="220100"):
        store.create_organisation(db, name="dup", code="220100", level="city", parent_id=province)
    store.create_device(db, serial="T1", organisation_id=county)
    with pytest.raises(Conflict, match="1 sub-organisations"):
        store.delete_organisation(db, city)
    with pytest.raises(Conflict, match="1 devices"):
        store.delete_organisation(db, county)
    with pytest.raises(NotFound):
        store.delete_organisation(db, 12345)


# ---- users and devices ------------------------------------------------------------------------


def test_extensions_are_assigned_lowest_free_first_across_users_and_devices(db: Session) -> None:
    _, city, _ = _tree(db)
    u = store.create_user(db, username="agent1", password="password1", role="agent")
    d = store.create_device(db, serial="T1", organisation_id=city)
    assert (u.extension, d.extension) == ("80001", "80002")
    with pytest.raises(Conflict, match="80002 is already used by device"):
        store.create_user(db, username="agent2", password="password1", role="agent", extension="80002")
    with pytest.raises(Conflict, match="80001 is already used by user"):
        store.create_device(db, serial="T2", organisation_id=city, extension="80001")
    store.delete_user(db, u.id)
    assert store.create_device(db, serial="T3", organisation_id=city).extension == "80001"


@pytest.mark.parametrize("extension", ["12345", "8000", "800001", "9000１", "8a001"])
def test_extensions_outside_the_plan_are_refused(db: Session, extension: str) -> None:
    with pytest.raises(Invalid, match="numbering plan _8XXXX"):
        store.create_user(db, username="x1", password="password1", role="agent", extension=extension)


def test_numbering_plan_comes_from_the_pattern() -> None:
    plan = ExtensionPlan.from_pattern("_6XXX")
    assert plan.contains("6001") and not plan.contains("60011") and not plan.contains("7001")
    assert next(plan.numbers()) == "6001"
    with pytest.raises(ValueError):
        ExtensionPlan.from_pattern("_8NXX")


def test_user_passwords_are_argon2_and_sip_passwords_generated(db: Session) -> None:
    u = store.create_user(db, username="mediator1", password="s3cret-pass", role="mediator", display_name="调解员")
    assert u.password_hash.startswith("$argon2")
    assert "s3cret" not in u.password_hash
    assert verify_password(u.password_hash, "s3cret-pass")
    assert not verify_password(u.password_hash, "wrong")
    assert not verify_password(None, "s3cret-pass")  # unknown user: still False, still spends the time
    assert len(u.sip_password) >= 12
    assert u.created_at.tzinfo is not None
    db.commit()
    db.expire_all()
    assert store.get_user(db, u.id).created_at.tzinfo == UTC


@pytest.mark.parametrize(
    "field,value",
    [
        ("sip_password", "short"),
        ("sip_password", "has;semicolon-x"),
        ("sip_password", "has space in it"),
        ("display_name", 'evil"\n[section]'),
        ("serial", "bad serial"),
        ("department", "Head Office"),
    ],
)
def test_values_written_into_pjsip_conf_are_checked(db: Session, field: str, value: str) -> None:
    _, city, _ = _tree(db)
    with pytest.raises(Invalid):
        store.create_device(db, **{"serial": "T1", "organisation_id": city, field: value})


def test_duplicates_conflict(db: Session) -> None:
    _, city, _ = _tree(db)
    store.create_user(db, username="lawyer1", password="password1", role="lawyer")
    store.create_device(db, serial="T1", organisation_id=city)
    with pytest.raises(Conflict, match="username lawyer1"):
        store.create_user(db, username="lawyer1", password="password1", role="lawyer")
    with pytest.raises(Conflict, match="serial T1"):
        store.create_device(db, serial="T1", organisation_id=city)


def test_the_last_active_admin_cannot_be_removed(db: Session) -> None:
    admin = store.create_user(db, username="admin", password="password1", role="admin")
    for change in ({"role": Role.AGENT}, {"active": False}):
        with pytest.raises(Conflict, match="last active admin"):
            store.update_user(db, admin.id, change)
    with pytest.raises(Conflict, match="last active admin"):
        store.delete_user(db, admin.id)
    store.create_user(db, username="admin2", password="password1", role="admin")
    store.update_user(db, admin.id, {"active": False})
    store.delete_user(db, admin.id)


def test_updates_change_only_what_is_given(db: Session) -> None:
    _, city, county = _tree(db)
    d = store.create_device(db, serial="T1", organisation_id=city, department="head", display_name="局领导")
    old_password = d.sip_password
    store.update_device(db, d.id, {"organisation_id": county, "extension": "81234"})
    assert (d.organisation_id, d.extension, d.sip_password, d.display_name) == (county, "81234", old_password, "局领导")
    with pytest.raises(Invalid, match="must belong"):
        store.update_device(db, d.id, {"organisation_id": None})
    with pytest.raises(Invalid, match="cannot change id"):
        store.update_device(db, d.id, {"id": 5})
    u = store.create_user(db, username="officer1", password="password1", role="officer")
    store.update_user(db, u.id, {"password": "new-password"})
    assert verify_password(u.password_hash, "new-password")


def test_list_filters_and_pages(db: Session) -> None:
    _, city, county = _tree(db)
    for i in range(5):
        store.create_device(db, serial=f"C{i}", organisation_id=city, department="hotline" if i % 2 else "head")
    store.create_device(db, serial="K1", organisation_id=county, kind="kiosk", display_name="天池和 扫码点")
    items, total = store.list_devices(db, organisation_id=city, offset=1, limit=2)
    assert total == 5 and [d.serial for d in items] == ["C1", "C2"]
    assert store.list_devices(db, department="hotline")[1] == 2
    assert [d.serial for d in store.list_devices(db, kind=DeviceKind.KIOSK)[0]] == ["K1"]
    assert [d.serial for d in store.list_devices(db, q="天池")[0]] == ["K1"]
    assert store.list_devices(db, q="%")[1] == 0  # LIKE wildcards are escaped
    assert store.list_organisations(db, level=OrgLevel.CITY)[1] == 1


# ---- endpoints --------------------------------------------------------------------------------


def test_endpoints_derive_from_active_users_and_devices(db: Session) -> None:
    _, city, _ = _tree(db)
    store.create_user(db, username="agent1", password="password1", role="agent", display_name="坐席一")
    store.create_device(db, serial="T1", organisation_id=city, kind="terminal", display_name="指挥中心")
    store.create_device(db, serial="B1", organisation_id=city, kind="browser")
    store.create_device(db, serial="S1", organisation_id=city, kind="softphone")
    store.create_device(db, serial="K1", organisation_id=city, kind="kiosk", sip_password="kiosk-password-1")
    store.create_device(db, serial="OFF", organisation_id=city, active=False)
    store.create_user(db, username="gone", password="password1", role="lawyer", active=False)
    specs = endpoints(db)
    got = {(s.name, s.caller_class, s.webrtc, s.display_name) for s in specs}
    assert got == {
        ("80001", "staff", True, "坐席一"),
        ("80002", "terminal", False, "指挥中心"),
        ("80003", "terminal", True, ""),
        ("80004", "terminal", False, ""),
        ("80005", "citizen", False, ""),
    }
    assert [s.name for s in specs] == sorted(s.name for s in specs)
    assert next(s for s in specs if s.name == "80005").password == "kiosk-password-1"
