"""The check-in API on a real (SQLite) database: the registry and its validation, who sees which subject,
photo enrolment, the subject page's session (PIN, window, location, snapshots with the real face model,
finish), alerts, review, one-time codes, and the monthly report with its CSV/XLSX export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from huiyan.api.access import issue_token
from huiyan.db import store as directory
from huiyan.db.models import CheckinSnapshot, CheckinSubject, Role
from tests.unit.conftest import ApiHarness
from tests.unit.test_checkin_face import enrolled_photo, other_person_snapshot, same_person_snapshot

CENTRE = [43.8171, 125.3235]  # 长春


@dataclass
class World:
    api: ApiHarness
    office: int
    other_office: int
    officer: dict[str, str]
    officer_id: int
    other_officer: dict[str, str]
    supervisor: dict[str, str]
    supervisor_id: int
    far_supervisor: dict[str, str]

    def post(self, path: str, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.api.client.post(path, headers=who or self.officer, **kw)

    def get(self, path: str, who: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.api.client.get(path, headers=who or self.officer, **kw)

    def subject(self, who: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        body = {"name": "王某", "supervision_start": "2026-01-01", "supervision_end": "2027-12-31", "pin": "2468",
                "area": {"center": CENTRE, "radius_m": 800}, **body}
        r = self.post("/api/checkin/subjects", who, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def window_now(self, subject_id: int, seconds: int = 600, grace_s: int = 0) -> dict[str, Any]:
        now = datetime.now(UTC)
        r = self.post(f"/api/checkin/subjects/{subject_id}/schedules",
                      json={"kind": "once", "opens_at": (now - timedelta(seconds=5)).isoformat(),
                            "closes_at": (now + timedelta(seconds=seconds)).isoformat(), "grace_s": grace_s})
        assert r.status_code == 201, r.text
        return r.json()

    def start(self, number: str, pin: str = "2468") -> Any:
        return self.api.client.post("/api/checkin/sessions", json={"subject_number": number, "pin": pin})


@pytest.fixture
def w(api: ApiHarness) -> World:
    api.settings.checkin.escalate_after_s = 3600
    prov = api.org("220000", "province")
    city = api.org("220100", "city", prov)
    office = api.org("220101001", "office", city)
    other_city = api.org("220200", "city", prov)
    other_office = api.org("220201001", "office", other_city)
    key = api.settings.secret("jwt")
    heads: dict[str, dict[str, str]] = {}
    ids: dict[str, int] = {}
    with api.sessions() as s:
        for name, role, org in [("ck_officer", Role.OFFICER, office), ("ck_officer2", Role.OFFICER, office),
                                ("ck_head", Role.SUPERVISOR, office), ("ck_far_head", Role.SUPERVISOR, other_office)]:
            u = directory.create_user(s, username=name, password="password-123", role=role, organisation_id=org)
            ids[name] = u.id
            heads[name] = {"Authorization": f"Bearer {issue_token(u, key=key, ttl_seconds=3600)}"}
        s.commit()
    return World(api, office, other_office, heads["ck_officer"], ids["ck_officer"], heads["ck_officer2"],
                 heads["ck_head"], ids["ck_head"], heads["ck_far_head"])


def test_registry_validates_with_reasons_and_keeps_the_pin_hashed(w: World) -> None:
    bad = [
        ({"area": {"center": [91, 125], "radius_m": 100}}, "latitude 91.0 is outside -90..90"),
        ({"area": {"center": [43, 181], "radius_m": 100}}, "longitude 181.0 is outside -180..180"),
        ({"area": {"center": CENTRE, "radius_m": 0}}, "greater than 0"),
        ({"area": {"polygon": [[43, 125], [43.1, 125]]}}, "at least 3 distinct points"),
        ({"pin": "12a4"}, "pin"),
        ({"supervision_end": "2025-01-01"}, "supervision_start must not be after supervision_end"),
        ({"client": "12345"}, "not an extension of the internal plan"),
        ({"client": "ftp://x"}, "internal extension"),
    ]
    for body, why in bad:
        r = w.post("/api/checkin/subjects", json={"name": "李某", "supervision_start": "2026-01-01",
                                                  "supervision_end": "2026-12-31", "pin": "2468", **body})
        assert r.status_code == 422, (body, r.text)
        assert why in r.text, (why, r.text)
    s = w.subject(client="80777", area={"polygon": [[43.8, 125.3], [43.8, 125.4], [43.9, 125.4]]})
    assert s["officer_id"] == w.officer_id and s["organisation_id"] == w.office  # defaults: the caller, their office
    assert s["number"] == "100001" and "pin" not in s and s["area"]["polygon"][2] == [43.9, 125.4]
    with w.api.sessions() as db:
        row = db.get(CheckinSubject, s["id"])
        assert row is not None and row.pin_hash.startswith("$argon2") and "2468" not in row.pin_hash
    dup = w.post("/api/checkin/subjects", json={"name": "张某", "supervision_start": "2026-01-01",
                                                "supervision_end": "2026-12-31", "pin": "1357", "client": "80777"})
    assert dup.status_code == 409 and "already the registered client" in dup.text


def test_officers_see_their_own_subjects_supervisors_their_subtree(w: World) -> None:
    mine = w.subject()
    assert w.get(f"/api/checkin/subjects/{mine['id']}", w.other_officer).status_code == 403
    assert w.get(f"/api/checkin/subjects/{mine['id']}", w.supervisor).status_code == 200
    assert w.get(f"/api/checkin/subjects/{mine['id']}", w.far_supervisor).status_code == 403
    assert w.get("/api/checkin/subjects/9999").status_code == 404
    assert w.get("/api/checkin/subjects", w.other_officer).json()["total"] == 0
    assert [s["id"] for s in w.get("/api/checkin/subjects").json()["items"]] == [mine["id"]]
    r = w.post("/api/checkin/subjects", w.other_officer, json={
        "name": "赵某", "supervision_start": "2026-01-01", "supervision_end": "2026-12-31", "pin": "2468",
        "officer_id": w.officer_id})
    assert r.status_code == 403 and "only admins and supervisors" in r.text
    assert w.get("/api/checkin/subjects", w.api.auth("agent")).status_code == 403


def test_photo_enrolment_needs_one_readable_face(w: World) -> None:
    s = w.subject()
    url = f"/api/checkin/subjects/{s['id']}/photo"
    r = w.api.client.put(url, content=b"\x89PNG\r\n\x1a\n garbage", headers={**w.officer, "Content-Type": "image/png"})
    assert r.status_code == 400 and "unreadable image" in r.json()["detail"]
    blank = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 120, 200)).save(blank, format="PNG")
    r = w.api.client.put(url, content=blank.getvalue(), headers={**w.officer, "Content-Type": "image/png"})
    assert r.status_code == 422 and "0 faces" in r.text
    assert not w.get(f"/api/checkin/subjects/{s['id']}").json()["has_photo"]
    r = w.api.client.put(url, content=enrolled_photo(), headers={**w.officer, "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json()["faces"] == 1 and r.json()["face_enrolled"]
    got = w.get(url)
    assert got.status_code == 200 and got.content == enrolled_photo() and got.headers["content-type"] == "image/png"


def _enrolled(w: World, **kw: Any) -> dict[str, Any]:
    s = w.subject(**kw)
    r = w.api.client.put(f"/api/checkin/subjects/{s['id']}/photo", content=enrolled_photo(),
                         headers={**w.officer, "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    return s


def _checkins(w: World, subject_id: int) -> list[dict[str, Any]]:
    r = w.get("/api/checkin/checkins", params={"subject_id": subject_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _alerts(w: World) -> list[dict[str, Any]]:
    return w.get("/api/checkin/alerts").json()["items"]


def test_page_checkin_in_the_area_with_the_right_face_is_on_time(w: World) -> None:
    s = _enrolled(w)
    w.window_now(s["id"])
    r = w.start(s["number"])
    assert r.status_code == 201, r.text
    body = r.json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    cid = body["checkin_id"]
    digits = body["challenge"]["digits"]
    assert len(digits) == 4 and digits.isdigit()
    assert w.api.client.get(f"/api/checkin/sessions/{cid}/challenge", headers=auth).json()["digits"] == digits
    loc = w.api.client.post(f"/api/checkin/sessions/{cid}/location", headers=auth,
                            json={"latitude": CENTRE[0] + 0.001, "longitude": CENTRE[1], "accuracy_m": 15})
    assert loc.status_code == 200 and loc.json()["location"] == "in_area"
    snap = w.api.client.post(f"/api/checkin/sessions/{cid}/snapshots", headers={**auth, "Content-Type": "image/jpeg"},
                             content=same_person_snapshot())
    assert snap.status_code == 201, snap.text
    assert snap.json()["identity"] == "match"
    fin = w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth)
    assert fin.status_code == 200 and fin.json()["outcome"] == "on_time" and fin.json()["passed"]
    detail = w.get(f"/api/checkin/checkins/{cid}").json()
    assert (detail["outcome"], detail["location"], detail["identity"], detail["challenge"]) == (
        "on_time", "in_area", "match", digits)
    assert len(detail["snapshots"]) == 1 and detail["snapshots"][0]["identity"] == "match"
    assert w.get(detail["snapshots"][0]["url"]).content == same_person_snapshot()
    assert _alerts(w) == []
    again = w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth)
    assert again.status_code == 409 and "has ended" in again.text
    # A token works for its own check-in only, and a staff token is no session token.
    assert w.api.client.get(f"/api/checkin/sessions/{cid + 1}", headers=auth).status_code == 403
    assert w.api.client.get(f"/api/checkin/sessions/{cid}", headers=w.officer).status_code == 403


def test_the_page_gets_a_one_time_call_token_that_ties_its_call_to_the_checkin(w: World) -> None:
    import asyncio

    from huiyan.checkin.service import CheckinService

    s = w.subject()
    w.window_now(s["id"])
    body = w.start(s["number"]).json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    cid = body["checkin_id"]
    path = f"/api/checkin/sessions/{cid}/call"
    # No controller (no PBX): said so, with a 503 and a reason.
    r = w.api.client.post(path, headers=auth)
    assert r.status_code == 503 and "not running" in r.json()["detail"]

    svc = CheckinService("pbx1", w.api.sessions, w.api.settings, w.api.bus)
    w.api.app.state.checkin = svc
    try:
        r = w.api.client.post(path, headers=auth)
        assert r.status_code == 200, r.text
        call = r.json()
        assert call["target"].startswith("sip:12340@") and call["ws_url"].endswith("/ws")
        assert "X-Huiyan-Client: web-guest" in call["headers"]
        [token] = [h.split(": ", 1)[1] for h in call["headers"] if h.startswith("X-Huiyan-Checkin: ")]
        # The flow redeems the token once: this check-in, its subject and the challenge the page shows.
        found = asyncio.run(svc.browser_call(token, "pbx1-123.4"))
        assert found is not None
        checkin_id, subject, digits = found
        assert (checkin_id, subject.id, digits) == (cid, s["id"], body["challenge"]["digits"])
        assert asyncio.run(svc.browser_call(token, "pbx1-123.5")) is None  # used
        assert asyncio.run(svc.browser_call("made-up-token", "pbx1-123.6")) is None
        assert w.get(f"/api/checkin/checkins/{cid}").json()["call_id"] == "pbx1-123.4"
        # Another check-in's token, a staff token, and an ended check-in are refused with reasons.
        assert w.api.client.post(f"/api/checkin/sessions/{cid + 1}/call", headers=auth).status_code == 403
        assert w.api.client.post(path, headers=w.officer).status_code == 403
        stale = w.api.client.post(path, headers=auth).json()["headers"][1].split(": ", 1)[1]
        w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth)
        ended = w.api.client.post(path, headers=auth)
        assert ended.status_code == 409 and "has ended" in ended.json()["detail"]
        assert asyncio.run(svc.browser_call(stale, "pbx1-123.7")) is None  # the check-in is no longer pending
    finally:
        del w.api.app.state.checkin


def test_a_refused_geolocation_is_recorded_and_named_not_hidden(w: World) -> None:
    s = w.subject()
    w.window_now(s["id"])
    body = w.start(s["number"]).json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    cid = body["checkin_id"]
    bad = w.api.client.post(f"/api/checkin/sessions/{cid}/location/refused", headers=auth, json={"why": "because"})
    assert bad.status_code == 422
    r = w.api.client.post(f"/api/checkin/sessions/{cid}/location/refused", headers=auth, json={"why": "denied"})
    assert r.status_code == 200 and r.json()["location"] == "refused", r.text
    fin = w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth).json()
    assert fin["location"] == "refused" and "no location evidence" in fin["reason"]
    detail = w.get(f"/api/checkin/checkins/{cid}").json()
    assert detail["location"] == "refused" and "did not send one" in detail["reason"]


def test_page_checkin_from_outside_the_area_is_flagged_and_alerted(w: World) -> None:
    s = _enrolled(w)
    w.window_now(s["id"])
    body = w.start(s["number"]).json()
    auth, cid = {"Authorization": f"Bearer {body['token']}"}, body["checkin_id"]
    for bad in ({"latitude": 95, "longitude": 125}, {"latitude": 43, "longitude": -190},
                {"latitude": "north", "longitude": 125}, {"latitude": 43}):
        r = w.api.client.post(f"/api/checkin/sessions/{cid}/location", headers=auth, json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert w.get(f"/api/checkin/checkins/{cid}").json()["location"] == "none"  # nothing recorded from those
    r = w.api.client.post(f"/api/checkin/sessions/{cid}/location", headers=auth,
                          json={"latitude": CENTRE[0] + 0.1, "longitude": CENTRE[1]})  # ~11 km north
    assert r.json()["location"] == "outside_area" and r.json()["distance_m"] > 10_000
    fin = w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth).json()
    assert fin["outcome"] == "outside_area" and not fin["passed"]
    [alert] = _alerts(w)
    assert (alert["kind"], alert["checkin_id"], alert["officer_id"]) == ("outside_area", cid, w.officer_id)
    ack = w.post(f"/api/checkin/alerts/{alert['id']}/ack", json={"note": "电话核实：就医"})
    assert ack.status_code == 200 and ack.json()["acknowledged_at"]
    assert w.post(f"/api/checkin/alerts/{alert['id']}/ack", json={}).status_code == 409
    assert w.post(f"/api/checkin/alerts/{alert['id']}/ack", w.other_officer, json={}).status_code == 403


def test_someone_else_on_camera_fails_identity_and_an_unreadable_snapshot_records_nothing(w: World) -> None:
    s = _enrolled(w)
    w.window_now(s["id"])
    body = w.start(s["number"]).json()
    auth, cid = {"Authorization": f"Bearer {body['token']}"}, body["checkin_id"]
    r = w.api.client.post(f"/api/checkin/sessions/{cid}/snapshots", headers={**auth, "Content-Type": "image/jpeg"},
                          content=b"\xff\xd8\xff\xe0 not really a jpeg")
    assert r.status_code == 400 and "unreadable image" in r.json()["detail"]
    with w.api.sessions() as db:
        assert db.scalar(select(func.count()).select_from(CheckinSnapshot)) == 0
    assert w.get(f"/api/checkin/checkins/{cid}").json()["outcome"] == "pending"
    r = w.api.client.post(f"/api/checkin/sessions/{cid}/snapshots", headers={**auth, "Content-Type": "image/jpeg"},
                          content=other_person_snapshot())
    assert r.status_code == 201 and r.json()["identity"] == "no_match" and r.json()["distance"] > 0.6
    fin = w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth).json()
    assert fin["outcome"] == "identity_failed" and not fin["passed"]
    assert [a["kind"] for a in _alerts(w)] == ["identity_failed"]


def test_unknown_subject_no_window_and_three_wrong_pins(w: World) -> None:
    r = w.start("999999")
    assert r.status_code == 404 and "no active subject numbered 999999" in r.text
    s = w.subject()
    r = w.start(s["number"])  # no window at all
    assert r.status_code == 409 and "no check-in window is open" in r.text
    [attempt] = _checkins(w, s["id"])
    assert (attempt["outcome"], attempt["passed"]) == ("outside_window", False)
    assert _alerts(w) == []  # an attempt outside any window is recorded, not alerted
    w.window_now(s["id"])
    assert w.start(s["number"], "1111").status_code == 401
    r = w.start(s["number"], "2222")
    assert r.status_code == 401 and "1 tries left" in r.text
    r = w.start(s["number"], "3333")
    assert r.status_code == 423 and "rejected" in r.text
    outcomes = sorted(c["outcome"] for c in _checkins(w, s["id"]))
    assert outcomes == ["outside_window", "rejected"]
    assert [a["kind"] for a in _alerts(w)] == ["rejected"]
    assert w.start(s["number"]).status_code == 201  # the right PIN still works afterwards


def test_one_time_code_starts_a_checkin_once(w: World) -> None:
    s = w.subject()
    w.window_now(s["id"])
    code = w.post(f"/api/checkin/subjects/{s['id']}/codes").json()["code"]
    r = w.api.client.post("/api/checkin/sessions", json={"code": code})
    assert r.status_code == 201 and r.json()["subject"]["number"] == s["number"]
    again = w.api.client.post("/api/checkin/sessions", json={"code": code})
    assert again.status_code == 401 and "used or expired" in again.text


def test_review_decides_whether_it_passed(w: World) -> None:
    s = _enrolled(w)
    w.window_now(s["id"])
    body = w.start(s["number"]).json()
    auth, cid = {"Authorization": f"Bearer {body['token']}"}, body["checkin_id"]
    assert w.post(f"/api/checkin/checkins/{cid}/review", json={"result": "pass", "note": "x"}).status_code == 409
    w.api.client.post(f"/api/checkin/sessions/{cid}/finish", headers=auth)
    r = w.post(f"/api/checkin/checkins/{cid}/review", json={"result": "fail", "note": "录音中未读出数字"})
    assert r.status_code == 200 and r.json()["review"] == "fail" and not r.json()["passed"]
    assert w.post(f"/api/checkin/checkins/{cid}/review", json={"result": "maybe", "note": "x"}).status_code == 422


def test_report_figures_equal_what_happened_and_export_as_csv_and_xlsx(w: World) -> None:
    from openpyxl import load_workbook

    a, b = _enrolled(w), w.subject(name="钱某")
    w.window_now(a["id"])
    w.window_now(b["id"])
    ok = w.start(a["number"]).json()
    w.api.client.post(f"/api/checkin/sessions/{ok['checkin_id']}/finish",
                      headers={"Authorization": f"Bearer {ok['token']}"})
    bad = w.start(b["number"]).json()
    bauth = {"Authorization": f"Bearer {bad['token']}"}
    w.api.client.post(f"/api/checkin/sessions/{bad['checkin_id']}/location", headers=bauth,
                      json={"latitude": 40.0, "longitude": 116.4})
    w.api.client.post(f"/api/checkin/sessions/{bad['checkin_id']}/finish", headers=bauth)
    for pin in ("0000", "0001", "0002"):
        w.start(b["number"], pin)
    from zoneinfo import ZoneInfo

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    r = w.get("/api/checkin/reports", params={"month": month})
    assert r.status_code == 200, r.text
    [row] = r.json()["rows"]
    assert row["organisation_id"] == w.office and row["subjects"] == 2
    assert (row["on_time"], row["outside_area"], row["rejected"], row["alerts"]) == (1, 1, 1, 2)
    assert row["windows_due"] == 0 and row["completion_rate"] is None  # both windows still open
    assert w.get("/api/checkin/reports", w.far_supervisor, params={"month": month}).json()["rows"] == []
    assert w.get("/api/checkin/reports", params={"month": "2026-13"}).status_code == 422

    raw = w.get("/api/checkin/reports.csv", params={"month": month})
    assert raw.status_code == 200 and raw.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
    header, first, total = table[0], table[1], table[-1]
    col = {name.split(" ", 1)[1] if " " in name else name: i for i, name in enumerate(header)}
    assert first[col["on time"]] == "1" and first[col["outside area"]] == "1" and first[col["alerts"]] == "2"
    assert total[col["alerts"]] == "2" and "合计" in total[col["office"]]
    xl = w.get("/api/checkin/reports.xlsx", params={"month": month})
    assert xl.status_code == 200
    ws = load_workbook(io.BytesIO(xl.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert [str(v) for v in rows[0]] == header
    assert rows[1][col["rejected"]] == 1 and rows[1][col["subjects"]] == 2 and rows[1][col["office"]] == "org 220101001"


def test_officers_hear_their_own_subjects_events_and_alerts_live(w: World) -> None:
    import json

    from huiyan.checkin.service import CheckinEvent

    mine = w.subject()
    theirs = w.subject(w.other_officer, name="韩某")
    w.window_now(mine["id"])
    token = w.officer["Authorization"].split()[1]
    other_token = w.other_officer["Authorization"].split()[1]
    with w.api.client.websocket_connect(f"/api/checkin/events?token={token}") as ws, \
            w.api.client.websocket_connect(f"/api/checkin/events?token={other_token}") as other:
        for pin in ("0000", "0001", "0002"):
            w.start(mine["number"], pin)
        got = [json.loads(ws.receive_text()) for _ in range(2)]
        assert [(m["type"], m.get("kind")) for m in got] == [("CheckinEvent", "pin_rejected"),
                                                            ("CheckinAlertEvent", "raised")]
        assert got[1]["alert"] == "rejected" and got[1]["officer_id"] == w.officer_id
        # The other officer saw none of that: the first thing they get is their own subject's event.
        sentinel = CheckinEvent("pbx1", "reminder", theirs["id"], None, {"window_id": 0}, 0.0)
        other.portal.call(w.api.bus.publish, sentinel)
        first = json.loads(other.receive_text())
        assert (first["type"], first["subject_id"]) == ("CheckinEvent", theirs["id"])
    with w.api.client.websocket_connect(f"/api/checkin/events?token={w.api.tokens['agent']}") as ws:
        from starlette.websockets import WebSocketDisconnect

        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4403


def test_education_session_is_a_room_of_its_own_with_attendance(w: World) -> None:
    a, b = w.subject(client="80701"), w.subject(name="杨某", client="80702")
    start = datetime.now(UTC) + timedelta(hours=1)
    r = w.post("/api/checkin/education", json={"title": "法治教育讲座", "starts_at": start.isoformat(),
                                               "ends_at": (start + timedelta(hours=1)).isoformat(),
                                               "subject_ids": [a["id"], b["id"]], "organisation_id": w.office})
    assert r.status_code == 201, r.text
    edu = r.json()
    room = w.api.client.get(f"/api/rooms/{edu['room_id']}", headers=w.api.auth("admin")).json()
    assert room["kind"] == "education" and room["record"] and room["number"] == edu["room_number"]
    assert sorted(i["target"] for i in room["invitees"]) == ["80701", "80702"]
    assert [(x["number"], x["minutes"], x["present"]) for x in edu["attendance"]] == [
        (a["number"], 0.0, False), (b["number"], 0.0, False)]
    assert w.get(f"/api/checkin/education/{edu['id']}", w.other_officer).status_code == 403
    assert w.get(f"/api/checkin/education/{edu['id']}", w.supervisor).status_code == 200
    bad = w.post("/api/checkin/education", json={"title": "x", "starts_at": start.isoformat(),
                                                 "ends_at": start.isoformat(), "subject_ids": [a["id"]]})
    assert bad.status_code == 422 and "starts_at must be before ends_at" in bad.text
    assert w.post("/api/checkin/rollcalls", json={"subject_ids": [a["id"]]}).status_code == 503  # no PBX here
