"""Check-ins end to end against the real Asterisk, controller and API: SIPp subjects call 12340 in a window
a minute long (the right PIN: on time, the call recorded and finalised into evidence linked to the
check-in; three wrong PINs: rejected and alerted; no window: told so, an attempt only; an unknown number:
told so), the subject page's API from outside the area (flagged and alerted), and an officer's roll-call to a
terminal that never registered (missed, alerted, escalated to the office head after the test's 3 s), with the
report of that office and its CSV/XLSX export showing exactly that."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Running
from tests.integration.test_rooms import Rooms, Terminal, recorded_seconds, rooms  # noqa: F401 - the fixture
from tests.unit.test_checkin_face import enrolled_photo, same_person_snapshot

pytestmark = pytest.mark.integration

CENTRE = [43.8171, 125.3235]


class Checkins:
    """The officer's side (a real login) over the Rooms harness's terminals and SIPp calls."""

    def __init__(self, h: Running, r: Rooms) -> None:
        from huiyan.db import store as directory
        from huiyan.db.models import Role

        self.h, self.r = h, r
        ns = time.monotonic_ns()
        with h.ctl.session_factory() as s:
            officer = directory.create_user(s, username=f"ck_off_{ns}", password="officer-password", role=Role.OFFICER,
                                            organisation_id=r.org_id, display_name="矫正干警")
            head = directory.create_user(s, username=f"ck_head_{ns}", password="head-password", role=Role.SUPERVISOR,
                                         organisation_id=r.org_id, display_name="所长")
            s.commit()
            self.officer_id, self.head_id = officer.id, head.id
        self.officer = self._login(officer.username, "officer-password")
        self.head = self._login(head.username, "head-password")

    def _login(self, username: str, password: str) -> dict[str, str]:
        r = httpx.post(f"{self.h.api}/api/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def api(self, method: str, path: str, who: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return httpx.request(method.upper(), f"{self.h.api}{path}", headers={**(who or self.officer),
                                                                             **kw.pop("headers", {})}, timeout=30, **kw)

    def subject(self, name: str, client: str | None = None, pin: str = "2468") -> dict[str, Any]:
        r = self.api("post", "/api/checkin/subjects", json={
            "name": name, "supervision_start": "2026-01-01", "supervision_end": "2030-12-31", "pin": pin,
            "client": client, "area": {"center": CENTRE, "radius_m": 1000}})
        assert r.status_code == 201, r.text
        return r.json()

    def window(self, subject: dict[str, Any], seconds: int = 90) -> None:
        now = datetime.now(UTC)
        r = self.api("post", f"/api/checkin/subjects/{subject['id']}/schedules", json={
            "kind": "once", "opens_at": (now + timedelta(seconds=1)).isoformat(),
            "closes_at": (now + timedelta(seconds=seconds)).isoformat(), "remind_s": 1})
        assert r.status_code == 201, r.text

    def event(self, kind: str, subject: dict[str, Any], timeout: float = 30, **match: Any) -> Any:
        from huiyan.checkin.service import CheckinEvent

        return self.h.wait_event(lambda e: isinstance(e, CheckinEvent) and e.kind == kind
                                 and e.subject_id == subject["id"]
                                 and all(e.data.get(k) == v for k, v in match.items()), timeout)

    def alert(self, kind: str, subject: dict[str, Any], timeout: float = 30) -> Any:
        from huiyan.checkin.service import CheckinAlertEvent

        return self.h.wait_event(lambda e: isinstance(e, CheckinAlertEvent) and e.kind == kind
                                 and e.subject_id == subject["id"], timeout)

    def checkins(self, subject: dict[str, Any]) -> list[dict[str, Any]]:
        r = self.api("get", "/api/checkin/checkins", params={"subject_id": subject["id"]})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def call(self, t: Terminal | None, steps: tuple[tuple[Any, ...], ...], **kw: Any) -> Any:
        return self.r.dial(t, "12340", steps=steps, hold_ms=60000, **kw)


@pytest.fixture
def ck(huiyan: Running, rooms: Rooms) -> Iterator[Checkins]:  # noqa: F811 - the imported fixture
    if "checkin" not in huiyan.ctl.agi.routes:
        # test_foundation's FastAGI-outage test swaps in a server with only the default routes.
        from huiyan.checkin.flow import checkin_route

        huiyan.ctl.agi.routes["checkin"] = checkin_route(huiyan.ctl.checkin)
    cfg = huiyan.settings.checkin
    saved = (cfg.tick_s, cfg.escalate_after_s, cfg.answer_s)
    cfg.tick_s, cfg.escalate_after_s, cfg.answer_s = 0.5, 3.0, 2
    try:
        yield Checkins(huiyan, rooms)
    finally:
        cfg.tick_s, cfg.escalate_after_s, cfg.answer_s = saved


def _finished(sipp: Any) -> None:
    res = sipp.wait()
    assert res.ok, res.stderr[-2000:] + res.errors[-3000:]


def test_a_subject_checks_in_by_phone_in_a_window_and_the_recording_is_linked(ck: Checkins, huiyan: Running) -> None:
    [t] = ck.r.terminals(1)
    s = ck.subject("郑某", client=t.extension)
    ck.window(s)
    opened = ck.event("window_opened", s)  # the scheduler opened it (a second after it was made)
    assert opened.data["window_id"]
    call = ck.call(t, (("pause", 1500), ("dtmf", "2468#")))
    done = ck.event("completed", s, timeout=60)
    assert done.data["outcome"] == "on_time" and done.data["location"] == "no_location"
    _finished(call)  # we hung up (BYE) after "check-in complete"

    [row] = ck.checkins(s)
    assert (row["outcome"], row["kind"], row["passed"], row["location"]) == ("on_time", "phone", True, "no_location")
    detail = ck.api("get", f"/api/checkin/checkins/{row['id']}").json()
    assert len(detail["challenge"]) == 4 and detail["pin_ok"]
    raw = Path(detail["recording"]["raw_path"])
    assert "/recordings/checkin/" in str(raw)
    assert recorded_seconds(raw, timeout=30) > 3  # the prompts, the digits and the answer time are in it

    from huiyan.recordings.service import RecordingEvent

    huiyan.wait_event(lambda e: isinstance(e, RecordingEvent) and e.kind == "finalised"
                      and e.recording_id is not None and _linked(ck, row["id"]) == e.recording_id, timeout=90)
    ev = ck.api("get", f"/api/checkin/checkins/{row['id']}").json()["recording"]
    assert ev["job_state"] == "done" and ev["sha256"] and ev["duration_s"] > 3
    rec = ck.api("get", f"/api/recordings/{ev['recording_id']}")  # the officer took part: may see it
    assert rec.status_code == 200, rec.text
    assert rec.json()["session_type"] == "checkin"


def _linked(ck: Checkins, checkin_id: int) -> int | None:
    r = ck.api("get", f"/api/checkin/checkins/{checkin_id}")
    return (r.json().get("recording") or {}).get("recording_id")


def test_three_wrong_pins_by_phone_are_rejected_and_alerted(ck: Checkins) -> None:
    [t] = ck.r.terminals(1)
    s = ck.subject("冯某", client=t.extension)
    ck.window(s)
    call = ck.call(t, (("pause", 1500), ("dtmf", "1111#"), ("pause", 1500), ("dtmf", "2222#"), ("pause", 1500),
                       ("dtmf", "3333#")))
    alert = ck.alert("raised", s, timeout=60)
    assert (alert.alert, alert.officer_id) == ("rejected", ck.officer_id)
    _finished(call)
    [row] = ck.checkins(s)
    assert (row["outcome"], row["passed"], row["pin_ok"]) == ("rejected", False, False)
    alerts = ck.api("get", "/api/checkin/alerts", params={"subject_id": s["id"]}).json()["items"]
    assert [a["kind"] for a in alerts] == ["rejected"]


def test_bad_input_by_phone_outside_any_window_and_an_unknown_subject(ck: Checkins) -> None:
    [t] = ck.r.terminals(1)
    s = ck.subject("褚某", client=t.extension)  # no schedule: no window
    call = ck.call(t, (("pause", 1500), ("dtmf", "2468#")))
    ck.event("outside_window", s, timeout=60)
    _finished(call)
    [row] = ck.checkins(s)
    assert (row["outcome"], row["passed"], row["recording"]) == ("outside_window", False, None)

    from huiyan.checkin.service import CheckinEvent

    stranger = ck.call(None, (("pause", 1500), ("dtmf", "99999999#")), user="stranger")
    ev = ck.h.wait_event(lambda e: isinstance(e, CheckinEvent) and e.kind == "unknown_subject"
                         and e.data.get("digits") == "99999999", 60)
    assert ev.subject_id is None
    _finished(stranger)


def test_the_page_api_from_outside_the_area_is_flagged_and_alerted(ck: Checkins) -> None:
    s = ck.subject("卫某")
    photo = ck.api("put", f"/api/checkin/subjects/{s['id']}/photo", content=enrolled_photo(),
                   headers={"Content-Type": "image/png"})
    assert photo.status_code == 200 and photo.json()["face_enrolled"], photo.text
    base = ck.h.api
    assert httpx.post(f"{base}/api/checkin/sessions", json={"subject_number": "424242", "pin": "2468"}).status_code == 404
    early = httpx.post(f"{base}/api/checkin/sessions", json={"subject_number": s["number"], "pin": "2468"})
    assert early.status_code == 409  # no window yet: an attempt, recorded
    ck.window(s)
    ck.event("window_opened", s)
    start = httpx.post(f"{base}/api/checkin/sessions", json={"subject_number": s["number"], "pin": "2468"})
    assert start.status_code == 201, start.text
    auth = {"Authorization": f"Bearer {start.json()['token']}"}
    cid = start.json()["checkin_id"]
    bad = httpx.post(f"{base}/api/checkin/sessions/{cid}/location", headers=auth, json={"latitude": 123, "longitude": 0})
    assert bad.status_code == 422
    junk = httpx.post(f"{base}/api/checkin/sessions/{cid}/snapshots", content=b"not an image",
                      headers={**auth, "Content-Type": "image/jpeg"})
    assert junk.status_code == 400 and "unreadable image" in junk.json()["detail"]
    snap = httpx.post(f"{base}/api/checkin/sessions/{cid}/snapshots", content=same_person_snapshot(),
                      headers={**auth, "Content-Type": "image/jpeg"}, timeout=60)
    assert snap.status_code == 201 and snap.json()["identity"] == "match", snap.text
    loc = httpx.post(f"{base}/api/checkin/sessions/{cid}/location", headers=auth,
                     json={"latitude": CENTRE[0] + 0.05, "longitude": CENTRE[1], "accuracy_m": 20})
    assert loc.json()["location"] == "outside_area" and loc.json()["distance_m"] > 4000
    ck.event("location", s, location="outside_area")
    fin = httpx.post(f"{base}/api/checkin/sessions/{cid}/finish", headers=auth)
    assert fin.json()["outcome"] == "outside_area" and not fin.json()["passed"]
    alert = ck.alert("raised", s)
    assert (alert.alert, alert.officer_id) == ("outside_area", ck.officer_id)
    rows = {r["id"]: r for r in ck.checkins(s)}
    assert sorted(r["outcome"] for r in rows.values()) == ["outside_area", "outside_window"]
    assert not any(r["passed"] for r in rows.values())


def test_rollcall_of_an_unreachable_subject_is_missed_alerted_escalated_and_reported(ck: Checkins) -> None:
    from openpyxl import load_workbook
    from zoneinfo import ZoneInfo

    [never] = ck.r.terminals(1)  # made in the directory, never registered: Asterisk has no contact for it
    s = ck.subject("蒋某", client=never.extension)
    r = ck.api("post", "/api/checkin/rollcalls", json={"subject_ids": [s["id"]], "ring_s": 10})
    assert r.status_code == 202, r.text
    rollcall = r.json()
    finished = ck.event("finished", s, timeout=60)
    assert finished.data["outcome"] == "missed" and "unreachable" in finished.data["reason"]
    raised = ck.alert("raised", s)
    assert (raised.alert, raised.officer_id, raised.escalated_to_id) == ("missed", ck.officer_id, None)
    escalated = ck.alert("escalated", s, timeout=30)  # the test's escalate_after_s is 3
    assert escalated.escalated_to_id == ck.head_id and escalated.alert_id == raised.alert_id

    view = ck.api("get", f"/api/checkin/rollcalls/{rollcall['id']}").json()
    for _ in range(100):
        if view["status"] == "done":
            break
        time.sleep(0.1)
        view = ck.api("get", f"/api/checkin/rollcalls/{rollcall['id']}").json()
    assert (view["status"], view["done"], view["total"], view["summary"]) == ("done", 1, 1, {"missed": 1})
    head_alerts = ck.api("get", "/api/checkin/alerts", ck.head).json()["items"]
    mine = [a for a in head_alerts if a["subject_id"] == s["id"]]
    assert len(mine) == 1 and mine[0]["escalated_to_id"] == ck.head_id and mine[0]["escalated_at"]
    notes = ck.api("get", "/api/checkin/notifications", ck.head).json()
    assert any(n["kind"] == "escalation" and n["alert_id"] == raised.alert_id for n in notes)

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    params = {"month": month, "organisation_id": ck.r.org_id}
    [row] = ck.api("get", "/api/checkin/reports", ck.head, params=params).json()["rows"]
    assert (row["subjects"], row["rollcalls"], row["rollcalls_passed"], row["misses"]) == (1, 1, 0, 1)
    assert (row["alerts"], row["alerts_escalated"], row["alerts_acknowledged"]) == (1, 1, 0)
    raw = ck.api("get", "/api/checkin/reports.csv", ck.head, params=params)
    table = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
    col = {h.split(" ", 1)[1]: i for i, h in enumerate(table[0])}
    assert (table[1][col["roll-calls"]], table[1][col["misses"]], table[1][col["escalated"]]) == ("1", "1", "1")
    xl = ck.api("get", "/api/checkin/reports.xlsx", ck.head, params=params)
    sheet = list(load_workbook(io.BytesIO(xl.content)).active.iter_rows(values_only=True))
    assert (sheet[1][col["roll-calls"]], sheet[1][col["misses"]], sheet[1][col["alerts"]]) == (1, 1, 1)
