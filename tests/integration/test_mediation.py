"""Remote mediation end to end against a real Asterisk: a mediator opens a case and starts its session; two
parties (SIPp terminals) dial the room number and key in the case PIN, a tourist (an anonymous SIP caller)
dials the public mediation number 12349 and keys the same PIN; a lawyer (a SIPp phone) is dialled
in through the case API; everyone hears the recording notice before joining; the mediator ends the
session; the room's recording is on the case, and the room no longer admits anyone."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Running
from tests.integration.test_rooms import Rooms, _ok, _played, _prefix, rooms  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _mediator(rooms: Rooms) -> dict[str, str]:
    """A mediator of the test bureau, signed in: the case API is used as a mediator would use it."""
    from huiyan.db import store

    name = f"mediator{time.monotonic_ns()}"
    with rooms.h.ctl.session_factory() as s:
        store.create_user(s, username=name, password="mediator-password", role="mediator",
                          organisation_id=rooms.org_id, display_name="长白山调解员")
        s.commit()
    r = httpx.post(f"{rooms.h.api}/api/auth/login", json={"username": name, "password": "mediator-password"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_case_session_two_parties_and_a_lawyer_join_and_the_recording_is_on_the_case(
        rooms: Rooms, huiyan: Running) -> None:
    from huiyan.mediation.service import MediationEvent

    auth = _mediator(rooms)

    def api(method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method.upper(), f"{huiyan.api}/api/mediation{path}", headers=auth, timeout=30, **kw)

    r = api("post", "/cases", json={
        "title": "游客与景区酒店退订纠纷", "type": "tourism", "summary": "旺季预订被单方取消",
        "parties": [{"name": "王游客", "phone": "13904351234", "role": "applicant"},
                    {"name": "某酒店", "phone": "0433-5751234", "role": "respondent"}]})
    assert r.status_code == 201, r.text
    case = r.json()
    pin = case["pin"]

    r = api("post", f"/cases/{case['id']}/session")
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["join"]["pin"] == pin and started["status"] == "in_session"
    room = {"id": started["room_id"], "number": started["join"]["room_number"]}
    huiyan.wait_event(lambda e: isinstance(e, MediationEvent) and e.case_id == case["id"]
                      and e.kind == "session_started")

    # the two parties dial the room number and key in the case PIN
    applicant, respondent, lawyer = rooms.terminals(3)
    for t in (applicant, respondent):
        rooms.dial(t, room["number"], steps=(("pause", 800), ("dtmf", f"{pin}#")), hold_ms=90000)
    join_a = rooms.joined(room, _prefix(applicant), timeout=30)
    join_r = rooms.joined(room, _prefix(respondent), timeout=30)
    assert join_a.get("Admin") == "No" and join_r.get("Admin") == "No"
    # a tourist with no terminal of ours (an anonymous SIP caller, class guest) dials the public mediation
    # number 12349 and keys the same case PIN: it leads into this case's room
    tourist = rooms.dial(None, "12349", steps=(("pause", 800), ("dtmf", f"{pin}#")), hold_ms=90000, user="tourist")
    join_t = rooms.joined(room, "PJSIP/anonymous-", timeout=30)
    assert join_t.get("Admin") == "No"
    # the session is recorded from its start, without anyone asking
    rec_event = rooms.room_event(room, "recording_started", timeout=20)
    path = Path(rec_event.data["path"])
    assert "/mediation/" in str(path)

    # a lawyer is dialled in mid-session through the case, and joins without the PIN
    rooms.answerer(t=lawyer)
    r = api("post", f"/cases/{case['id']}/lawyer", json={"target": lawyer.extension, "name": "值班律师"})
    assert r.status_code == 202, r.text
    inv = r.json()
    assert inv["dial"] == f"PJSIP/{lawyer.extension}"
    join_l = rooms.ami("ConfbridgeJoin", lambda e: e.get("Uniqueid") == inv["id"], timeout=30)
    assert join_l.get("Conference") == room["number"] and join_l.get("Channel").startswith(_prefix(lawyer))
    rooms.room_event(room, "invitation", lambda e: e.data["id"] == inv["id"] and e.data["status"] == "joined")
    live = rooms.wait_for(lambda: (v := rooms.live(room)) and len(v["participants"]) == 4 and v, timeout=15)
    assert live["recording"] and live["kind"] == "mediation"
    assert sorted(p["invited"] for p in live["participants"]) == [False, False, False, True]

    # every joiner's call flow played the recording notice before the conference
    assert _played(huiyan, _prefix(applicant)) == ["room_pin", "room_joining", "mediation_notice"]
    assert _played(huiyan, _prefix(respondent)) == ["room_pin", "room_joining", "mediation_notice"]
    assert _played(huiyan, _prefix(lawyer)) == ["room_joining", "mediation_notice"]
    # (this exact channel: other tests' anonymous callers are in the same log)
    log = (huiyan.settings.pbx_dir / "log" / "full.log").read_text(errors="replace")
    tourist_played = re.findall(rf"<{re.escape(join_t.get('Channel'))}> ?Playing '[^']*/huiyan/([a-z_0-9]+)\.", log)
    assert tourist_played == ["mediation_pin", "room_joining", "mediation_notice"]

    time.sleep(2)  # some conversation in the recording
    r = api("post", f"/cases/{case['id']}/session/end")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["participants_ended"] == 4
    rooms.room_event(room, "ended", timeout=20)
    for t in (applicant, respondent):
        assert t.sipp is not None
        _ok(t.sipp.wait())  # hung up by us (the BYE came from Asterisk)
    _ok(tourist.wait())

    # the recording exists, is not empty, and is linked to the case and its session
    got = rooms.wait_for(lambda: (c := api("get", f"/cases/{case['id']}").json())["recordings"]
                         and c["recordings"][0]["ended_at"] and c, timeout=15)
    assert got["status"] == "open" and not got["session_open"]
    [rec] = got["recordings"]
    assert rec["path"] == str(path) and rec["session_id"] == started["session"]["id"] and rec["room_session_id"]
    assert got["sessions"][0]["recordings"] == [rec] and got["sessions"][0]["ended_at"]
    # ... and is finalised into evidence (M4A, hash-chained; the raw WAV goes once that is verified), which
    # the mediator may fetch because it is their case
    done = rooms.wait_for(lambda: (e := api("get", f"/cases/{case['id']}/recordings").json()[0]["evidence"])
                          and e["job_state"] == "done" and e, timeout=90)
    assert done["job_state"] == "done" and done["duration_s"] > 1.0 and len(done["sha256"]) == 64
    r = httpx.get(f"{huiyan.api}/api/recordings/{done['recording_id']}", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    final = r.json()
    assert final["case_id"] == case["id"] and final["session_type"] == "mediation" and final["sha256"] == done["sha256"]
    assert final["codecs"] and final["container"] == "m4a"
    r = httpx.get(f"{huiyan.api}{done['download_url']}", headers=auth, timeout=30)
    assert r.status_code == 200 and len(r.content) == final["size_bytes"]

    # between sessions the room admits nobody, PIN or not
    late = rooms.dial(applicant, room["number"], steps=(("pause", 800), ("dtmf", f"{pin}#")), hold_ms=15000)
    rooms.room_event(room, "refused", lambda e: e.data["reason"] == "unavailable", timeout=20)
    _ok(late.wait())
