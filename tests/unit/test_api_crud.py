"""CRUD over organisations, users and devices: happy paths, the 4xx cases, secrets, and the runtime hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from huiyan.db.events import DirectoryChanged

if TYPE_CHECKING:
    from conftest import ApiHarness


def _events(api: ApiHarness) -> list[Any]:
    seen: list[Any] = []
    api.bus.on(seen.append)
    return seen


# ---- organisations ----------------------------------------------------------------------------


def test_organisation_lifecycle(api: ApiHarness) -> None:
    admin = api.auth("admin")
    province = api.org("220000", "province", name="吉林省司法厅", name_en="Department of Justice of Jilin Province")
    city = api.org("220100", "city", province, name="长春市司法局")
    r = api.client.get(f"/api/organisations/{city}", headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.json()["name"] == "长春市司法局" and r.json()["parent_id"] == province
    r = api.client.patch(f"/api/organisations/{city}", json={"name_en": "Changchun"}, headers=admin)
    assert r.status_code == 200 and r.json()["name_en"] == "Changchun" and r.json()["code"] == "220100"
    r = api.client.get("/api/organisations", params={"parent_id": province}, headers=admin)
    assert [o["id"] for o in r.json()["items"]] == [city]
    r = api.client.get("/api/organisations", params={"level": "province"}, headers=admin)
    assert r.json()["total"] == 1
    assert api.client.delete(f"/api/organisations/{province}", headers=admin).status_code == 409
    assert api.client.delete(f"/api/organisations/{city}", headers=admin).status_code == 204
    assert api.client.get(f"/api/organisations/{city}", headers=admin).status_code == 404


def test_organisation_errors(api: ApiHarness) -> None:
    admin = api.auth("admin")
    province = api.org("220000", "province")
    city = api.org("220100", "city", province)
    r = api.client.post("/api/organisations", json={"name": "x", "code": "220100", "level": "city"}, headers=admin)
    assert r.status_code == 409 and "220100" in r.json()["detail"]
    r = api.client.post(
        "/api/organisations", json={"name": "x", "code": "x1", "level": "province", "parent_id": city}, headers=admin
    )
    assert r.status_code == 400 and "below its parent" in r.json()["detail"]
    r = api.client.post(
        "/api/organisations", json={"name": "x", "code": "x2", "level": "county", "parent_id": 999}, headers=admin
    )
    assert r.status_code == 400 and "does not exist" in r.json()["detail"]
    r = api.client.post("/api/organisations", json={"name": "x", "code": "x3", "level": "district"}, headers=admin)
    assert r.status_code == 422 and "level" in r.json()["detail"][0]["loc"]
    r = api.client.patch(f"/api/organisations/{city}", json={"name": None}, headers=admin)
    assert r.status_code == 422 and "may not be null" in r.json()["detail"][0]["msg"]
    for method in ("GET", "PATCH", "DELETE"):
        r = api.client.request(method, "/api/organisations/999", json={} if method == "PATCH" else None, headers=admin)
        assert r.status_code == 404 and r.json()["detail"] == "organisation 999 not found"


# ---- devices ----------------------------------------------------------------------------------


def test_device_creation_reloads_the_directory_and_returns_credentials(api: ApiHarness) -> None:
    events = _events(api)
    org = api.org()
    body = {"serial": "XY-0001", "organisation_id": org, "department": "command", "display_name": "省厅指挥中心"}
    r = api.client.post("/api/devices", json=body, headers=api.auth("admin"))
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["extension"].startswith("8") and len(device["extension"]) == 5
    assert len(device["sip_password"]) >= 12
    assert device["kind"] == "terminal" and device["last_seen"] is None
    assert api.directory_changes == 1
    assert events == [DirectoryChanged("device", "created", device["id"], device["extension"])]


def test_device_update_and_delete_also_reload(api: ApiHarness) -> None:
    admin = api.auth("admin")
    events = _events(api)
    org = api.org()
    dev = api.client.post("/api/devices", json={"serial": "XY-1", "organisation_id": org}, headers=admin).json()
    r = api.client.patch(
        f"/api/devices/{dev['id']}", json={"extension": "82001", "sip_password": "a-new-secret-123"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["extension"] == "82001"
    assert r.json()["sip_password"] == "a-new-secret-123"
    assert api.client.delete(f"/api/devices/{dev['id']}", headers=admin).status_code == 204
    assert api.client.get(f"/api/devices/{dev['id']}", headers=admin).status_code == 404
    assert api.directory_changes == 3
    assert [(e.action, e.extension) for e in events] == [
        ("created", dev["extension"]), ("updated", "82001"), ("deleted", "82001"),
    ]  # fmt: skip


def test_sip_passwords_go_only_to_admins_and_never_in_lists(api: ApiHarness) -> None:
    org = api.org()
    dev = api.client.post("/api/devices", json={"serial": "XY-1", "organisation_id": org}, headers=api.auth("admin"))
    dev_id = dev.json()["id"]
    assert api.client.get(f"/api/devices/{dev_id}", headers=api.auth("admin")).json()["sip_password"]
    assert api.client.get(f"/api/devices/{dev_id}", headers=api.auth("supervisor")).json()["sip_password"] is None
    listed = api.client.get("/api/devices", headers=api.auth("admin")).json()["items"]
    assert listed and all(d["sip_password"] is None for d in listed)
    user_id = api.user_ids["agent"]
    assert api.client.get(f"/api/users/{user_id}", headers=api.auth("admin")).json()["sip_password"]
    assert api.client.get(f"/api/users/{user_id}", headers=api.auth("supervisor")).json()["sip_password"] is None
    users = api.client.get("/api/users", headers=api.auth("admin")).json()["items"]
    assert all(u["sip_password"] is None and "password_hash" not in u for u in users)


def test_device_errors(api: ApiHarness) -> None:
    admin = api.auth("admin")
    org = api.org()
    first = {"serial": "XY-1", "organisation_id": org, "extension": "80100"}
    assert api.client.post("/api/devices", json=first, headers=admin).status_code == 201
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"serial": "XY-1", "organisation_id": org}, 409, "serial XY-1 already exists"),
        ({"serial": "XY-2", "organisation_id": org, "extension": "80100"}, 409, "80100 is already used"),
        ({"serial": "XY-2", "organisation_id": org, "extension": api_ext(api, "agent")}, 409, "used by user"),
        ({"serial": "XY-2", "organisation_id": org, "extension": "12348"}, 400, "numbering plan _8XXXX"),
        ({"serial": "XY-2", "organisation_id": 999}, 400, "organisation 999 does not exist"),
        ({"serial": "XY-2", "organisation_id": org, "sip_password": "short"}, 422, "sip_password"),
        ({"serial": "XY 2", "organisation_id": org}, 422, "serial"),
        ({"serial": "XY-2", "organisation_id": org, "kind": "fax"}, 422, "kind"),
        ({"serial": "XY-2", "organisation_id": org, "display_name": "a\nb"}, 422, "display_name"),
        ({"serial": "XY-2"}, 422, "organisation_id"),
    ]
    for body, status, reason in cases:
        r = api.client.post("/api/devices", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
        assert reason in (r.json()["detail"] if status != 422 else str(r.json()["detail"])), (body, r.text)
    assert api.directory_changes == 1  # refused changes do not reload anything
    for method in ("GET", "PATCH", "DELETE"):
        r = api.client.request(method, "/api/devices/999", json={} if method == "PATCH" else None, headers=admin)
        assert r.status_code == 404 and r.json()["detail"] == "device 999 not found"


def api_ext(api: ApiHarness, role: str) -> str:
    return str(api.client.get(f"/api/users/{api.user_ids[role]}", headers=api.auth("admin")).json()["extension"])


def test_device_list_filters_and_pages(api: ApiHarness) -> None:
    admin = api.auth("admin")
    province = api.org("220000", "province")
    city = api.org("220100", "city", province)
    plan = [(province, "head", "terminal"), (city, "hotline", "browser"), (city, "head", "kiosk"),
            (city, "head", "terminal")]
    for i, (org, dept, kind) in enumerate(plan):
        body = {"serial": f"XY-{i}", "organisation_id": org, "department": dept, "kind": kind}
        assert api.client.post("/api/devices", json=body, headers=admin).status_code == 201
    page = api.client.get("/api/devices", params={"organisation_id": city, "limit": 2}, headers=admin).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    page2 = api.client.get("/api/devices", params={"organisation_id": city, "offset": 2}, headers=admin).json()
    assert [d["serial"] for d in page2["items"]] == ["XY-3"]
    assert api.client.get("/api/devices", params={"kind": "kiosk"}, headers=admin).json()["total"] == 1
    assert api.client.get("/api/devices", params={"department": "head"}, headers=admin).json()["total"] == 3
    assert api.client.get("/api/devices", params={"q": "xy-1"}, headers=admin).json()["total"] == 1
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"kind": "fax"}):
        assert api.client.get("/api/devices", params=bad, headers=admin).status_code == 422


# ---- users ------------------------------------------------------------------------------------


def test_user_lifecycle(api: ApiHarness) -> None:
    admin = api.auth("admin")
    events = _events(api)
    org = api.org()
    r = api.client.post(
        "/api/users",
        json={"username": "wang.li", "password": "initial-pass", "role": "mediator", "display_name": "王丽",
              "organisation_id": org},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["extension"].startswith("8") and user["sip_password"] and "password" not in user
    login = api.client.post("/api/auth/login", json={"username": "wang.li", "password": "initial-pass"})
    assert login.status_code == 200 and login.json()["role"] == "mediator"
    r = api.client.patch(f"/api/users/{user['id']}", json={"password": "changed-pass", "organisation_id": None},
                         headers=admin)
    assert r.status_code == 200 and r.json()["organisation_id"] is None
    def login_as(password: str) -> int:
        return api.client.post("/api/auth/login", json={"username": "wang.li", "password": password}).status_code

    assert (login_as("initial-pass"), login_as("changed-pass")) == (401, 200)
    listed = api.client.get("/api/users", params={"role": "mediator"}, headers=api.auth("supervisor")).json()
    assert [u["username"] for u in listed["items"]] == ["mediator1", "wang.li"]
    assert api.client.delete(f"/api/users/{user['id']}", headers=admin).status_code == 204
    assert [e.action for e in events if isinstance(e, DirectoryChanged)] == ["created", "updated", "deleted"]
    assert api.directory_changes == 3


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"username": "admin1", "password": "password1", "role": "agent"}, 409, "username admin1 already exists"),
        ({"username": "new1", "password": "password1", "role": "agent", "extension": "99999"}, 400, "numbering plan"),
        ({"username": "new1", "password": "password1", "role": "agent", "organisation_id": 999}, 400, "does not exist"),
        ({"username": "new1", "password": "short", "role": "agent"}, 422, "password"),
        ({"username": "new1", "password": "password1", "role": "judge"}, 422, "role"),
        ({"username": "new user", "password": "password1", "role": "agent"}, 422, "username"),
    ],
)
def test_user_errors(api: ApiHarness, body: dict[str, Any], status: int, reason: str) -> None:
    r = api.client.post("/api/users", json=body, headers=api.auth("admin"))
    assert r.status_code == status, r.text
    assert reason in str(r.json()["detail"])


def test_the_last_admin_cannot_lock_everyone_out(api: ApiHarness) -> None:
    admin_id = api.user_ids["admin"]
    r = api.client.patch(f"/api/users/{admin_id}", json={"role": "agent"}, headers=api.auth("admin"))
    assert r.status_code == 409 and "last active admin" in r.json()["detail"]
    assert api.client.delete(f"/api/users/{admin_id}", headers=api.auth("admin")).status_code == 409
    assert api.client.get("/api/users/999", headers=api.auth("admin")).status_code == 404


def test_a_failing_reload_does_not_undo_or_fail_the_change(api: ApiHarness) -> None:
    async def broken() -> None:
        raise RuntimeError("asterisk is restarting")

    api.app.state.huiyan.on_directory_change = broken
    events = _events(api)
    org = api.org()
    r = api.client.post("/api/devices", json={"serial": "XY-1", "organisation_id": org}, headers=api.auth("admin"))
    assert r.status_code == 201
    assert len(events) == 1  # listeners still hear about it (the runtime may retry from the event)
