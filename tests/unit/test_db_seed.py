"""The demo Jilin province: the pilot's organisation tree and terminal plan, seeded once however often run."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiyan.db import store
from huiyan.db.directory import endpoints
from huiyan.db.models import Device, MenuOption, Organisation, OrgLevel, Queue, Role, User
from huiyan.db.numbering import DEFAULT_PLAN
from huiyan.db.passwords import verify_password
from huiyan.db.seed import DEMO_PASSWORD, MENUS, OFFICES, PROVINCE_DEVICES, QUEUES, ensure_admin, seed_demo

CITY_BUREAUS = 10  # 9 prefectures + the Changbai Mountain bureau
COUNTIES = 60
EXPECTED = {
    "organisations": 1 + CITY_BUREAUS + COUNTIES + len(OFFICES),
    "users": len(Role) + 1,  # one per role, two hotline agents
    "devices": 70 + 5 * CITY_BUREAUS + 4 * COUNTIES,
    "queues": len(QUEUES),
    "menu_options": len(MENUS),
}


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_seed_counts_and_idempotency(db: Session) -> None:
    assert sum(n for _, _, n in PROVINCE_DEVICES) == 70
    assert seed_demo(db) == EXPECTED
    assert EXPECTED["devices"] == 360
    assert (EXPECTED["queues"], EXPECTED["menu_options"]) == (5, 8)
    assert seed_demo(db) == dict.fromkeys(EXPECTED, 0)
    tables = [("organisations", Organisation), ("users", User), ("devices", Device), ("queues", Queue),
              ("menu_options", MenuOption)]  # fmt: skip
    assert {k: _count(db, m) for k, m in tables} == EXPECTED
    # everything became an endpoint, on distinct extensions inside the plan
    specs = endpoints(db)
    assert len(specs) == EXPECTED["users"] + EXPECTED["devices"]
    assert len({s.name for s in specs}) == len(specs)
    assert all(DEFAULT_PLAN.contains(s.name) for s in specs)


def test_seed_follows_the_pilot_plan(db: Session) -> None:
    seed_demo(db)
    orgs = list(db.scalars(select(Organisation)))
    by_level = Counter(o.level for o in orgs)
    assert by_level[OrgLevel.PROVINCE] == 1
    assert by_level[OrgLevel.CITY] == CITY_BUREAUS
    assert by_level[OrgLevel.COUNTY] == COUNTIES
    province = next(o for o in orgs if o.level == OrgLevel.PROVINCE)
    assert province.name == "吉林省司法厅"
    city_names = {o.name for o in orgs if o.level == OrgLevel.CITY}
    assert {"长春市司法局", "延边朝鲜族自治州司法局", "长白山司法局"} <= city_names
    assert {"南关区司法局", "榆树市司法局", "德惠市司法局", "农安县司法局"} <= {o.name for o in orgs}
    for org in orgs:  # the tree keeps its own rule
        if org.parent is not None:
            assert org.level.is_below(org.parent.level), org
    departments: dict[OrgLevel, set[str]] = {}
    per_org = Counter(d.organisation_id for d in db.scalars(select(Device)))
    for org in orgs:
        devs = list(db.scalars(select(Device).where(Device.organisation_id == org.id)))
        departments.setdefault(org.level, set()).update(d.department or "" for d in devs)
        expected = {OrgLevel.PROVINCE: 70, OrgLevel.CITY: 5, OrgLevel.COUNTY: 4, OrgLevel.OFFICE: 0}[org.level]
        assert per_org[org.id] == expected, org
    assert departments[OrgLevel.CITY] == {"head", "command", "correction", "grassroots", "hotline"}
    assert departments[OrgLevel.COUNTY] == {"head", "command", "correction", "grassroots"}
    assert {"head", "command", "legal-aid", "hotline"} <= departments[OrgLevel.PROVINCE]


def test_demo_users_log_in_with_the_documented_password(db: Session) -> None:
    seed_demo(db)
    roles = {u.role for u in db.scalars(select(User))}
    assert roles == set(Role)
    admin = store.find_user(db, "admin")
    assert admin is not None and admin.role == Role.ADMIN
    assert verify_password(admin.password_hash, DEMO_PASSWORD)


def test_seed_keeps_what_is_already_there(db: Session) -> None:
    store.create_organisation(db, name="吉林省司法厅(已有)", code="220000", level="province")
    ensure_admin(db, "admin", "my-own-password")
    db.commit()
    created = seed_demo(db)
    assert created["organisations"] == EXPECTED["organisations"] - 1
    assert created["users"] == EXPECTED["users"] - 1
    admin = store.find_user(db, "admin")
    assert admin is not None and verify_password(admin.password_hash, "my-own-password")


def test_ensure_admin_promotes_and_resets(db: Session) -> None:
    u = store.create_user(db, username="boss", password="password1", role="agent", active=False)
    assert ensure_admin(db, "boss", "new-password").id == u.id
    assert (u.role, u.active) == (Role.ADMIN, True)
    assert verify_password(u.password_hash, "new-password")
