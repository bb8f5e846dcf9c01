"""/api/dispatch without a PBX: groups with their rules, and bad input on dispatches — unknown groups,
dispatches and legs (404), an ended dispatch (409), bad bodies (422) — answered before any PBX is needed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huiyan.db import store as directory
from huiyan.db.models import DispatchStatus, LegStatus
from huiyan.db.numbering import ExtensionPlan
from huiyan.dispatch import store
from huiyan.dispatch.model import RetryPolicy

if TYPE_CHECKING:
    from conftest import ApiHarness


def _tree(api: ApiHarness) -> dict[str, Any]:
    """A province, a city with two counties, a terminal per bureau (plus a softphone and a kiosk)."""
    prov = api.org("220000", "province")
    city = api.org("220100", "city", prov)
    counties = [api.org(f"22010{i}", "county", city) for i in (2, 3)]
    devices = {}
    with api.sessions() as s:
        for org in (city, *counties):
            devices[org] = directory.create_device(s, serial=f"D-{org}", organisation_id=org, department="command").id
        soft = directory.create_device(s, serial="SOFT", organisation_id=city, kind="softphone").id
        kiosk = directory.create_device(s, serial="KIOSK", organisation_id=city, kind="kiosk").id
        s.commit()
    return {"province": prov, "city": city, "counties": counties, "devices": devices, "soft": soft, "kiosk": kiosk}


def _post(api: ApiHarness, path: str, body: Any = None, role: str = "supervisor") -> Any:
    kw = {"json": body} if body is not None else {}
    return api.client.post(path, headers=api.auth(role), **kw)


def test_groups_from_the_tree_and_custom_ones(api: ApiHarness) -> None:
    t = _tree(api)
    r = _post(api, "/api/dispatch/groups", {"name": "各县区", "kind": "counties_of_city", "city_id": t["city"]})
    assert r.status_code == 201, r.text
    counties = r.json()
    assert counties["kind"] == "counties_of_city" and counties["organisation_ids"] == []
    r = api.client.get(f"/api/dispatch/groups/{counties['id']}/terminals", headers=api.auth("admin"))
    assert [x["device_id"] for x in r.json()] == [t["devices"][c] for c in t["counties"]]
    r = _post(api, "/api/dispatch/groups", {"name": "自选", "kind": "custom", "organisation_ids": [t["city"]],
                                            "device_ids": [t["soft"]]})
    assert r.status_code == 201, r.text
    custom = r.json()
    terminals = api.client.get(f"/api/dispatch/groups/{custom['id']}/terminals", headers=api.auth("admin")).json()
    # the city's terminal (auto-answer), then the listed softphone (it just rings)
    assert [(x["device_id"], x["auto_answer"]) for x in terminals] == [
        (t["devices"][t["city"]], True), (t["soft"], False)]
    r = api.client.patch(f"/api/dispatch/groups/{custom['id']}", json={"kind": "all", "department": "command"},
                         headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.json()["device_ids"] == [] and r.json()["department"] == "command", r.text
    listed = api.client.get("/api/dispatch/groups", headers=api.auth("admin")).json()
    assert listed["total"] == 2 and [g["name"] for g in listed["items"]] == ["各县区", "自选"]  # by name
    assert api.client.delete(f"/api/dispatch/groups/{custom['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.get(f"/api/dispatch/groups/{custom['id']}", headers=api.auth("admin")).status_code == 404


def test_group_bad_input(api: ApiHarness) -> None:
    t = _tree(api)
    cases = [
        ({"name": "x", "kind": "counties_of_city", "city_id": t["counties"][0]}, 400, "not a city"),
        ({"name": "x", "kind": "counties_of_city"}, 400, "needs city_id"),
        ({"name": "x", "kind": "all", "device_ids": [t["soft"]]}, 400, "only in a custom group"),
        ({"name": "x", "kind": "custom"}, 400, "at least one"),
        ({"name": "x", "kind": "custom", "device_ids": [t["kiosk"]]}, 400, "kiosks"),
        ({"name": "x", "kind": "custom", "organisation_ids": [424242]}, 400, "do not exist"),
        ({"name": "x", "kind": "everyone"}, 422, "kind"),
        ({"name": "x", "kind": "all", "department": "Command"}, 422, "pattern"),
        ({"name": 'a"b', "kind": "all"}, 422, "pattern"),
        ({"name": "x", "kind": "all", "colour": "red"}, 422, "extra"),
        ({"kind": "all"}, 422, "name"),
    ]
    for body, code, message in cases:
        r = _post(api, "/api/dispatch/groups", body)
        assert r.status_code == code and message in r.text, (body, r.text)
    assert _post(api, "/api/dispatch/groups", {"name": "全部", "kind": "all"}).status_code == 201
    r = _post(api, "/api/dispatch/groups", {"name": "全部", "kind": "all_cities"})
    assert r.status_code == 409 and "already used" in r.text
    r = api.client.patch("/api/dispatch/groups/999", json={"name": "y"}, headers=api.auth("admin"))
    assert r.status_code == 404
    r = api.client.patch("/api/dispatch/groups/1", json={"name": None}, headers=api.auth("admin"))
    assert r.status_code == 422
    for path in ("/api/dispatch/groups/999", "/api/dispatch/groups/999/terminals"):
        r = api.client.get(path, headers=api.auth("admin"))
        assert r.status_code == 404 and "dispatch group 999 not found" in r.json()["detail"]
    # only the command centre's duty officers (admins, supervisors) dispatch
    r = _post(api, "/api/dispatch/groups", {"name": "y", "kind": "all"}, role="agent")
    assert r.status_code == 403


def _dispatch(api: ApiHarness, group_id: int) -> int:
    with api.sessions() as s:
        d = store.create_dispatch(s, group_id=group_id, commander_user_id=api.user_ids["supervisor"], node="pbx1",
                                  room_plan=ExtensionPlan.from_pattern("_6XXX"), policy=RetryPolicy())
        s.commit()
        return d.id


def test_dispatch_bad_input(api: ApiHarness) -> None:
    t = _tree(api)
    gid = _post(api, "/api/dispatch/groups", {"name": "市", "kind": "all_cities"}).json()["id"]
    # unknown: 404 with a reason
    for method, path, body in [
        ("post", "/api/dispatch/groups/999/dispatch", None),
        ("get", "/api/dispatch/999", None),
        ("post", "/api/dispatch/999/end", None),
        ("post", "/api/dispatch/999/legs", {"target": "80001"}),
        ("delete", "/api/dispatch/999/legs/1", None),
    ]:
        r = api.client.request(method.upper(), path, headers=api.auth("admin"), **({"json": body} if body else {}))
        assert r.status_code == 404 and "dispatch" in r.json()["detail"], (path, r.text)
    # bad bodies: 422 with the reason
    for body, message in [({"retries": -1}, "retries"), ({"retry_interval_s": 0}, "retry_interval_s"),
                          ({"retry_on": ["declined"]}, "retry_on"), ({"ring_seconds": 1000}, "ring_seconds"),
                          ({"name": "a<b"}, "pattern"), ({"retry": 3}, "extra")]:
        r = _post(api, f"/api/dispatch/groups/{gid}/dispatch", body)
        assert r.status_code == 422 and message in r.text, (body, r.text)
    # a good request without a PBX connection: the runtime is unavailable
    r = _post(api, f"/api/dispatch/groups/{gid}/dispatch", {"retries": 3, "retry_interval_s": 5})
    assert r.status_code == 503 and "not available" in r.json()["detail"]

    did = _dispatch(api, gid)
    view = api.client.get(f"/api/dispatch/{did}", headers=api.auth("admin")).json()
    assert view["status"] == "active" and len(view["legs"]) == 1 and view["legs"][0]["status"] == "pending"
    assert view["room"]["number"] == view["room_number"] and view["recordings"] == []
    leg_id = view["legs"][0]["id"]
    for body, message in [({}, "exactly one"), ({"device_id": t["soft"], "target": "80001"}, "exactly one"),
                          ({"target": "h323:10.0.0.1"}, "pattern"), ({"user_id": 0}, "greater")]:
        r = _post(api, f"/api/dispatch/{did}/legs", body)
        assert r.status_code == 422 and message in r.text, (body, r.text)
    r = _post(api, f"/api/dispatch/{did}/legs", {"device_id": 99999})
    assert r.status_code == 404 and "device 99999 not found" in r.json()["detail"]
    r = _post(api, f"/api/dispatch/{did}/legs", {"user_id": 99999})
    assert r.status_code == 404
    r = api.client.delete(f"/api/dispatch/{did}/legs/99999", headers=api.auth("admin"))
    assert r.status_code == 404 and f"dispatch {did} has no leg 99999" in r.json()["detail"]
    # a leg that has ended cannot be dropped again
    with api.sessions() as s:
        s.get(store.DispatchLeg, leg_id).status = LegStatus.DECLINED  # type: ignore[union-attr]
        s.commit()
    r = api.client.delete(f"/api/dispatch/{did}/legs/{leg_id}", headers=api.auth("admin"))
    assert r.status_code == 409 and "already ended: declined" in r.json()["detail"]
    # an ended dispatch: ending it again, adding to it, dropping from it are 409s
    with api.sessions() as s:
        s.get(store.Dispatch, did).status = DispatchStatus.ENDED  # type: ignore[union-attr]
        s.commit()
    for method, path, body in [("post", f"/api/dispatch/{did}/end", None),
                               ("post", f"/api/dispatch/{did}/legs", {"target": "80001"}),
                               ("delete", f"/api/dispatch/{did}/legs/{leg_id}", None)]:
        r = api.client.request(method.upper(), path, headers=api.auth("admin"), **({"json": body} if body else {}))
        assert r.status_code == 409 and "already ended" in r.json()["detail"], (path, r.text)
    listed = api.client.get("/api/dispatch?status=ended", headers=api.auth("admin")).json()
    assert [x["id"] for x in listed["items"]] == [did] and listed["items"][0]["counts"] == {"declined": 1}
    assert api.client.get("/api/dispatch?status=active", headers=api.auth("admin")).json()["total"] == 0
