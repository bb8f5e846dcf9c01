"""The hotline's configuration API (queues, members, menus, skills) and its history (queue log, CSV, calls)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from huiyan.db import hotline, store
from huiyan.db.hotline import HotlineConfigChanged

if TYPE_CHECKING:
    from conftest import ApiHarness

T0 = datetime(2024, 6, 1, 8, 0, 0, tzinfo=UTC)


def _events(api: ApiHarness) -> list[Any]:
    seen: list[Any] = []
    api.bus.on(seen.append)
    return seen


def _queue(api: ApiHarness, name: str = "法律咨询", **kw: Any) -> int:
    r = api.client.post("/api/queues", json={"name": name, **kw}, headers=api.auth("admin"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# ---- queues -----------------------------------------------------------------------------------


def test_queue_lifecycle_announces_each_change(api: ApiHarness) -> None:
    admin = api.auth("admin")
    events = _events(api)
    body = {
        "name": "法律咨询",
        "name_en": "Legal consultation",
        "strategy": "skills",
        "relax_steps": [[30, 1], [60, 2]],
    }
    r = api.client.post("/api/queues", json=body, headers=admin)
    assert r.status_code == 201, r.text
    q = r.json()
    assert (q["strategy"], q["ring_timeout_s"], q["wrapup_s"], q["max_wait_s"], q["join_empty"]) == (
        "skills", 20, 10, None, "join",
    )  # fmt: skip
    assert (q["sl_threshold_s"], q["sl_target"], q["autopause_after"], q["announce_every_s"], q["active"]) == (
        20, 0.8, 3, 30, True,
    )  # fmt: skip
    assert q["relax_steps"] == [[30, 1], [60, 2]]
    r = api.client.get(f"/api/queues/{q['id']}", headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.json()["name"] == "法律咨询"
    r = api.client.patch(f"/api/queues/{q['id']}", json={"wrapup_s": 0, "relax_steps": []}, headers=admin)
    assert r.status_code == 200 and (r.json()["wrapup_s"], r.json()["relax_steps"]) == (0, [])
    assert r.json()["strategy"] == "skills"  # untouched
    r = api.client.get("/api/queues", params={"q": "咨询"}, headers=api.auth("supervisor"))
    assert [x["id"] for x in r.json()["items"]] == [q["id"]] and r.json()["total"] == 1
    assert api.client.delete(f"/api/queues/{q['id']}", headers=admin).status_code == 204
    assert api.client.get(f"/api/queues/{q['id']}", headers=admin).status_code == 404
    assert events == [
        HotlineConfigChanged("queue", "created", q["id"]),
        HotlineConfigChanged("queue", "updated", q["id"]),
        HotlineConfigChanged("queue", "deleted", q["id"]),
    ]
    assert api.directory_changes == 0  # no SIP endpoint changed: pjsip is not re-rendered


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ring_timeout_s": 0}, "ring_timeout_s"),
        ({"wrapup_s": -5}, "wrapup_s"),
        ({"max_wait_s": 0}, "max_wait_s"),
        ({"sl_target": 1.5}, "sl_target"),
        ({"sl_target": 0}, "sl_target"),
        ({"strategy": "random"}, "strategy"),
        ({"join_empty": "refuse"}, "join_empty"),
        ({"relax_steps": [[60, 1], [30, 2]]}, "must be sorted"),
        ({"relax_steps": [[30, -1]]}, "relax_steps"),
        ({"relax_steps": [[30, 1, 2]]}, "relax_steps"),
        ({"name": ""}, "name"),
        ({"overflow_queue_id": 0}, "overflow_queue_id"),
    ],
)
def test_bad_queue_settings_are_422_with_the_reason(api: ApiHarness, body: dict[str, Any], field: str) -> None:
    r = api.client.post("/api/queues", json={"name": "法律咨询", **body}, headers=api.auth("admin"))
    assert r.status_code == 422, r.text
    assert field in str(r.json()["detail"])


def test_queue_domain_errors(api: ApiHarness) -> None:
    admin = api.auth("admin")
    events = _events(api)
    main = _queue(api)
    r = api.client.patch(f"/api/queues/{main}", json={"overflow_queue_id": main, "max_wait_s": 60}, headers=admin)
    assert r.status_code == 422 and "cannot overflow to itself" in str(r.json()["detail"])
    r = api.client.patch(f"/api/queues/{main}", json={"strategy": None}, headers=admin)
    assert r.status_code == 422 and "may not be null" in str(r.json()["detail"])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "法律咨询"}, 409, "a queue named 法律咨询 already exists"),
        ({"name": "长春", "overflow_queue_id": main}, 400, "needs max_wait_s"),
        ({"name": "长春", "overflow_queue_id": 999, "max_wait_s": 60}, 400, "overflow queue 999 does not exist"),
        ({"name": "长春", "organisation_id": 999}, 400, "organisation 999 does not exist"),
    ]
    for body, code, reason in cases:
        r = api.client.post("/api/queues", json=body, headers=admin)
        assert r.status_code == code and reason in r.json()["detail"], r.text
    city = _queue(api, "长春市法律咨询", overflow_queue_id=main, max_wait_s=90)
    r = api.client.delete(f"/api/queues/{main}", headers=admin)
    assert r.status_code == 409 and "1 queues overflow to it" in r.json()["detail"]
    r = api.client.patch(f"/api/queues/{city}", json={"max_wait_s": None}, headers=admin)
    assert r.status_code == 400 and "needs max_wait_s" in r.json()["detail"]
    for method in ("GET", "PATCH", "DELETE"):
        r = api.client.request(method, "/api/queues/999", json={} if method == "PATCH" else None, headers=admin)
        assert r.status_code == 404 and r.json()["detail"] == "queue 999 not found"
    assert [e.action for e in events] == ["created", "created"]  # refused changes announce nothing


# ---- members ----------------------------------------------------------------------------------


def test_members_are_agents_or_supervisors(api: ApiHarness) -> None:
    admin = api.auth("admin")
    queue = _queue(api)
    events = _events(api)
    agent, sup, lawyer = api.user_ids["agent"], api.user_ids["supervisor"], api.user_ids["lawyer"]
    r = api.client.post(f"/api/queues/{queue}/members", json={"user_id": agent}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() | {"extension": "x"} == {
        "queue_id": queue, "user_id": agent, "penalty": 0, "username": "agent1", "display_name": "",
        "role": "agent", "extension": "x",
    }  # fmt: skip
    r = api.client.post(f"/api/queues/{queue}/members", json={"user_id": sup, "penalty": 2}, headers=admin)
    assert r.status_code == 201
    r = api.client.post(f"/api/queues/{queue}/members", json={"user_id": lawyer}, headers=admin)
    assert r.status_code == 400 and "only agents and supervisors" in r.json()["detail"]
    r = api.client.post(f"/api/queues/{queue}/members", json={"user_id": agent}, headers=admin)
    assert r.status_code == 409 and "already a member" in r.json()["detail"]
    r = api.client.post(f"/api/queues/{queue}/members", json={"user_id": agent, "penalty": -1}, headers=admin)
    assert r.status_code == 422
    r = api.client.post("/api/queues/999/members", json={"user_id": agent}, headers=admin)
    assert r.status_code == 404
    r = api.client.patch(f"/api/queues/{queue}/members/{sup}", json={"penalty": 1}, headers=admin)
    assert r.status_code == 200 and r.json()["penalty"] == 1
    r = api.client.get(f"/api/queues/{queue}/members", headers=api.auth("supervisor"))
    assert [(m["user_id"], m["penalty"]) for m in r.json()] == sorted([(agent, 0), (sup, 1)])
    assert api.client.delete(f"/api/queues/{queue}/members/{agent}", headers=admin).status_code == 204
    r = api.client.delete(f"/api/queues/{queue}/members/{agent}", headers=admin)
    assert r.status_code == 404 and r.json()["detail"] == f"user {agent} is not a member of queue {queue}"
    assert [(e.kind, e.action, e.id) for e in events] == [
        ("member", "created", queue), ("member", "created", queue), ("member", "updated", queue),
        ("member", "deleted", queue),
    ]  # fmt: skip


# ---- menu options -----------------------------------------------------------------------------


def test_menu_options_crud_and_filter(api: ApiHarness) -> None:
    admin = api.auth("admin")
    consult, aid = _queue(api), _queue(api, "法律援助")
    events = _events(api)
    body = {"service_number": "12348", "digit": "1", "queue_id": consult, "label_zh": "法律咨询",
            "label_en": "Legal consultation", "required_skills": {"consultation": 1}}  # fmt: skip
    r = api.client.post("/api/menu-options", json=body, headers=admin)
    assert r.status_code == 201, r.text
    one = r.json()
    assert one | {"id": 0} == {**body, "id": 0, "priority": 0, "prompt": None}
    r = api.client.post("/api/menu-options", json={**body, "queue_id": aid}, headers=admin)
    assert r.status_code == 409 and f"digit 1 of 12348 is already menu option {one['id']}" in r.json()["detail"]
    aid_body = {**body, "digit": "2", "queue_id": aid, "label_zh": "法律援助", "required_skills": {"legal_aid": 1}}
    two = api.client.post("/api/menu-options", json=aid_body, headers=admin).json()
    city = api.client.post("/api/menu-options", json={**body, "service_number": "1234801"}, headers=admin).json()
    r = api.client.get("/api/menu-options", params={"service_number": "12348"}, headers=api.auth("supervisor"))
    assert [o["digit"] for o in r.json()["items"]] == ["1", "2"] and r.json()["total"] == 2
    r = api.client.patch(f"/api/menu-options/{two['id']}", json={"priority": 5, "prompt": "menu"}, headers=admin)
    assert r.status_code == 200 and (r.json()["priority"], r.json()["prompt"]) == (5, "menu")
    r = api.client.patch(f"/api/menu-options/{two['id']}", json={"prompt": None}, headers=admin)
    assert r.status_code == 200 and r.json()["prompt"] is None
    r = api.client.delete(f"/api/queues/{aid}", headers=admin)
    assert r.status_code == 409 and "1 menu options route to it" in r.json()["detail"]
    assert api.client.delete(f"/api/menu-options/{city['id']}", headers=admin).status_code == 204
    assert api.client.get(f"/api/menu-options/{city['id']}", headers=admin).status_code == 404
    assert [(e.kind, e.action) for e in events] == [("menu_option", "created")] * 3 + [
        ("menu_option", "updated")] * 2 + [("menu_option", "deleted")]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        ({"digit": "0"}, 422, "digit"),
        ({"digit": "*"}, 422, "digit"),
        ({"service_number": "12348a"}, 422, "service_number"),
        ({"required_skills": {"consultation": 11}}, 422, "required_skills"),
        ({"required_skills": {"Consultation!": 1}}, 422, "required_skills"),
        ({"prompt": "../../x"}, 422, "prompt"),
        ({"queue_id": 999}, 400, "queue 999 does not exist"),
    ],
)
def test_bad_menu_options(api: ApiHarness, change: dict[str, Any], code: int, reason: str) -> None:
    body = {"service_number": "12348", "digit": "1", "queue_id": _queue(api), "label_zh": "法律咨询", **change}
    r = api.client.post("/api/menu-options", json=body, headers=api.auth("admin"))
    assert r.status_code == code, r.text
    assert reason in str(r.json()["detail"])


# ---- skills -----------------------------------------------------------------------------------


def test_skills_are_read_and_replaced(api: ApiHarness) -> None:
    admin, sup = api.auth("admin"), api.auth("supervisor")
    agent = api.user_ids["agent"]
    events = _events(api)
    url = f"/api/users/{agent}/skills"
    assert api.client.get(url, headers=sup).json() == {"user_id": agent, "skills": {}}
    r = api.client.put(url, json={"skills": {"lang_zh": 10, "lang_ko": 6, "consultation": 8}}, headers=admin)
    assert r.status_code == 200 and r.json()["skills"] == {"consultation": 8, "lang_ko": 6, "lang_zh": 10}
    r = api.client.put(url, json={"skills": {"lang_zh": 9}}, headers=admin)
    assert api.client.get(url, headers=sup).json()["skills"] == {"lang_zh": 9}
    assert api.client.put(url, json={"skills": {"lang_zh": 9}}, headers=sup).status_code == 403
    for bad in ({"skills": {"lang_zh": 0}}, {"skills": {"lang_zh": 11}}, {"skills": {"Lang ZH": 5}}, {}):
        r = api.client.put(url, json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
    assert api.client.put(url, json={"skills": {}}, headers=admin).json()["skills"] == {}
    r = api.client.put("/api/users/999/skills", json={"skills": {}}, headers=admin)
    assert r.status_code == 404 and r.json()["detail"] == "user 999 not found"
    assert api.client.get("/api/users/999/skills", headers=admin).status_code == 404
    assert events == [HotlineConfigChanged("skills", "updated", agent)] * 3


# ---- queue log and calls ----------------------------------------------------------------------


def _history(api: ApiHarness) -> tuple[int, int]:
    """Two queues, an agent named 热线坐席一, and a few log lines and calls."""
    with api.sessions() as db:
        consult = hotline.create_queue(db, name="法律咨询")
        aid = hotline.create_queue(db, name="法律援助")
        agent = api.user_ids["agent"]
        store.update_user(db, agent, {"display_name": "热线坐席一"})
        rows = [
            (0, "enqueue", consult.id, None, {"caller": "13800000000", "menu": "法律咨询"}),
            (5, "offer", consult.id, agent, {}),
            (9, "connect", consult.id, agent, {"wait": 9}),
            (20, "enqueue", aid.id, None, {}),
            (30, "abandon", aid.id, None, {"position": 1}),
            (40, "pause", None, agent, {"reason": "午休"}),
            (50, "enqueue", 999, 998, {}),  # a queue and an agent deleted since
        ]
        hotline.append_queue_log(db, [
            {"at": T0 + timedelta(seconds=s, milliseconds=7), "node": "pbx1", "call_id": f"1717000000.{s}",
             "queue_id": q, "agent_user_id": a, "event": ev, "data": data}
            for s, ev, q, a, data in rows
        ])  # fmt: skip
        hotline.upsert_hotline_call(
            db, "1717000000.0", node="pbx1", queue_id=consult.id, outcome="answered",
            caller_number="13800000000", agent_user_id=agent, service_number="12348",
        )  # fmt: skip
        hotline.upsert_hotline_call(
            db, "1717000000.20", node="pbx1", queue_id=aid.id, outcome="abandoned",
            caller_number="043188880000", service_number="1234801",
        )  # fmt: skip
        db.commit()
        return consult.id, aid.id


def test_queue_log_filters_and_pages(api: ApiHarness) -> None:
    consult, _ = _history(api)
    sup = api.auth("supervisor")
    r = api.client.get("/api/queue-log", headers=sup)
    assert r.status_code == 200 and r.json()["total"] == 7
    first = r.json()["items"][0]
    assert first["event"] == "enqueue" and first["data"]["menu"] == "法律咨询"
    assert datetime.fromisoformat(first["at"]) == T0 + timedelta(milliseconds=7)

    def events(**params: Any) -> list[str]:
        r = api.client.get("/api/queue-log", params=params, headers=sup)
        assert r.status_code == 200, r.text
        return [e["event"] for e in r.json()["items"]]

    assert events(queue_id=consult) == ["enqueue", "offer", "connect"]
    assert events(agent_user_id=api.user_ids["agent"]) == ["offer", "connect", "pause"]
    assert events(event="abandon") == ["abandon"]
    assert events(call_id="1717000000.30") == ["abandon"]
    # 16:00:05 in Beijing is 08:00:05 UTC
    assert events(since="2024-06-01T16:00:05+08:00", until="2024-06-01T08:00:30Z") == ["offer", "connect", "enqueue"]
    assert events(offset=5, limit=10) == ["pause", "enqueue"]
    r = api.client.get("/api/queue-log", params={"since": "2024-06-01T08:00:00"}, headers=sup)
    assert r.status_code == 422 and "timezone" in str(r.json()["detail"])
    for params in ({"event": "hangup"}, {"limit": 0}, {"limit": 5000}, {"call_id": "a b"}):
        assert api.client.get("/api/queue-log", params=params, headers=sup).status_code == 422, params
    assert api.client.get("/api/queue-log", headers=api.auth("agent")).status_code == 403


def _csv(api: ApiHarness, **params: Any) -> tuple[bytes, list[list[str]]]:
    r = api.client.get("/api/queue-log.csv", params=params, headers=api.auth("supervisor"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="queue-log-')
    return r.content, list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))


def test_queue_log_csv_opens_in_excel_with_the_chinese_intact(api: ApiHarness) -> None:
    consult, _ = _history(api)
    raw, rows = _csv(api)
    assert raw.startswith(b"\xef\xbb\xbf")  # the UTF-8 BOM, then the header
    assert b"\r\n" in raw
    assert rows[0] == ["at", "node", "call_id", "queue", "agent", "event", "data"]
    assert len(rows) == 1 + 7
    assert rows[1] == ["2024-06-01T08:00:00.007+00:00", "pbx1", "1717000000.0", "法律咨询", "", "enqueue",
                       '{"caller":"13800000000","menu":"法律咨询"}']  # fmt: skip
    assert rows[2][3:6] == ["法律咨询", "热线坐席一", "offer"]
    assert rows[5][3] == "法律援助" and json.loads(rows[5][6]) == {"position": 1}
    assert rows[6][3:] == ["", "热线坐席一", "pause", '{"reason":"午休"}']
    assert rows[7][3:5] == ["#999", "#998"]  # deleted since: the id, not a blank
    _, rows = _csv(api, queue_id=consult, event="connect")
    assert [r[5] for r in rows[1:]] == ["connect"]
    _, rows = _csv(api, since="2030-01-01T00:00:00Z")
    assert rows == [["at", "node", "call_id", "queue", "agent", "event", "data"]]


def test_queue_log_csv_streams_a_long_log_and_defuses_formulas(api: ApiHarness) -> None:
    with api.sessions() as db:
        queue = hotline.create_queue(db, name="=SUM(A1:A9)")
        hotline.append_queue_log(db, [
            {"at": T0 + timedelta(seconds=i), "node": "pbx1", "call_id": f"c{i}", "queue_id": queue.id,
             "event": "enqueue"}
            for i in range(1234)
        ])  # fmt: skip
        db.commit()
    _, rows = _csv(api)
    assert len(rows) == 1 + 1234
    assert [r[2] for r in rows[1:4]] == ["c0", "c1", "c2"] and rows[-1][2] == "c1233"
    assert rows[1][3] == "'=SUM(A1:A9)"


def test_hotline_calls_list_and_get(api: ApiHarness) -> None:
    consult, aid = _history(api)
    sup = api.auth("supervisor")

    def ids(**params: Any) -> list[str]:
        r = api.client.get("/api/hotline/calls", params=params, headers=sup)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["items"]]

    assert set(ids()) == {"1717000000.0", "1717000000.20"}
    assert ids(queue_id=aid) == ["1717000000.20"]
    assert ids(outcome="answered") == ["1717000000.0"]
    assert ids(agent_user_id=api.user_ids["agent"]) == ["1717000000.0"]
    assert ids(service_number="1234801") == ["1717000000.20"]
    assert ids(caller_number="0431") == ["1717000000.20"]
    assert ids(since="2999-01-01T00:00:00Z") == []
    r = api.client.get("/api/hotline/calls/1717000000.0", headers=sup)
    assert r.status_code == 200
    assert (r.json()["queue_id"], r.json()["outcome"], r.json()["caller_number"]) == (
        consult,
        "answered",
        "13800000000",
    )
    r = api.client.get("/api/hotline/calls/1.2", headers=sup)
    assert r.status_code == 404 and r.json()["detail"] == "hotline call 1.2 not found"
    assert api.client.get("/api/hotline/calls", params={"outcome": "lost"}, headers=sup).status_code == 422
