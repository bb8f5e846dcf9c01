"""The `checkin` FastAGI route against the fake Asterisk, on a real database: what a subject hears and what
is recorded - the right PIN inside a window (recorded, challenge read out, on time), three wrong PINs
(rejected, alerted), no window open (an attempt, never a pass), an unknown subject number, and a caller who
hangs up mid-way (incomplete). Asterisk itself: tests/integration/test_checkin.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.agi import FastAgiServer
from huiyan.agi.testing import DEAD_CHANNEL, FakeAsterisk
from huiyan.bus import EventBus
from huiyan.checkin import store
from huiyan.checkin.flow import checkin_route
from huiyan.checkin.service import CheckinAlertEvent, CheckinEvent, CheckinService
from huiyan.config.settings import Settings
from huiyan.db import store as directory
from huiyan.db.models import CheckIn, CheckinAlert, Role
from huiyan.db.numbering import ExtensionPlan
from huiyan.prompts import PROMPTS, prompt_file

HOST = "127.0.0.1"


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    for lang in ("zh", "en"):
        for name in PROMPTS:
            path = prompt_file(tmp_path / "sounds", name, lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    return tmp_path / "sounds"


@pytest.fixture
def rig(db_sessions: sessionmaker[Session], tmp_path: Path) -> Any:
    settings = Settings(data_dir=tmp_path / "data")
    settings.checkin.answer_s = 1
    bus = EventBus()
    seen: list[Any] = []
    bus.on(seen.append)
    svc = CheckinService("pbx1", db_sessions, settings, bus)
    with db_sessions() as s:
        office = directory.create_organisation(s, name="城南司法所", code="220102001", level="office")
        officer = directory.create_user(s, username="officer_f", password="password-123", role=Role.OFFICER,
                                        organisation_id=office.id)
        subject = store.create_subject(s, name="吴某", officer_id=officer.id, organisation_id=office.id,
                                       supervision_start=date(2026, 1, 1), supervision_end=date(2030, 1, 1),
                                       pin="2468", plan=ExtensionPlan.from_pattern("_8XXXX"), client="80601")
        s.commit()
        ids = {"subject": subject.id, "number": subject.number, "officer": officer.id}
    return svc, seen, db_sessions, ids


def _open_window(sessions: sessionmaker[Session], subject_id: int) -> None:
    now = datetime.now(UTC)
    with sessions() as s:
        store.add_schedule(s, store.get_subject(s, subject_id), kind="once", timezone="Asia/Shanghai",
                           opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(minutes=10))
        store.materialise(s, now, horizon=timedelta(hours=1), lookback=timedelta(hours=1))
        s.commit()


async def _call(svc: CheckinService, sounds: Path, *, endpoint: str, digits: list[str],
                hang_up_after: str | None = None, variables: dict[str, str] | None = None) -> tuple[list[str], Any]:
    keys = iter(digits)
    values = {"CHANNEL(endpoint)": endpoint, **(variables or {})}
    dead = False

    def respond(command: str) -> str:
        nonlocal dead
        if dead:
            return DEAD_CHANNEL
        if hang_up_after and hang_up_after in command:
            dead = True
        if command.startswith("GET DATA"):
            return f"200 result={next(keys, '')}"
        if command.startswith("GET VARIABLE"):
            value = values.get(command.split('"')[1])
            return f"200 result=1 ({value})" if value is not None else "200 result=0"
        return "200 result=0"

    async with FastAgiServer({"checkin": checkin_route(svc)}, HOST, 0, sounds_dir=sounds) as server:
        headers = {"agi_extension": "12340", "agi_uniqueid": "1700000000.77", "agi_language": "zh",
                   "agi_callerid": endpoint, "agi_network_script": "checkin",
                   "agi_request": f"agi://{HOST}/checkin?number=12340"}
        async with FakeAsterisk(HOST, server.port, headers=headers, responses=respond, script="checkin") as fa:
            await fa.wait_closed()
    base = f"{sounds}/zh/huiyan/"
    heard = []
    for c in fa.commands:
        if c.startswith(("STREAM FILE", "GET DATA")):
            heard.append(c.split('"')[1].replace(base, ""))
        elif c.startswith("EXEC MixMonitor"):
            heard.append("MixMonitor")
    return heard, fa


def _rows(sessions: sessionmaker[Session]) -> list[CheckIn]:
    with sessions() as s:
        return list(s.scalars(select(CheckIn).order_by(CheckIn.id)))


async def test_right_pin_in_a_window_is_recorded_with_a_challenge_and_on_time(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    _open_window(sessions, ids["subject"])
    heard, fa = await _call(svc, sounds, endpoint="80601", digits=["2468"])  # known by its registered extension
    [row] = _rows(sessions)
    digits = [f"digit_{d}" for d in row.challenge]
    assert heard == ["checkin_pin", "MixMonitor", "checkin_recorded", "checkin_challenge", *digits, "checkin_speak",
                     "checkin_done"]
    assert (row.outcome.value, row.kind.value, row.location, row.identity) == (
        "on_time", "phone", "no_location", "not_checked")
    assert len(row.challenge) == 4 and row.window_id is not None and row.pin_ok
    mix = next(c for c in fa.commands if c.startswith("EXEC MixMonitor"))
    assert row.recording_path and row.recording_path in mix and "/recordings/checkin/" in row.recording_path
    assert ',b' not in mix  # not bridged: both directions recorded from the start
    assert any(c.startswith("EXEC Wait") for c in fa.commands)
    [rec] = [e for e in seen if isinstance(e, CheckinEvent) and e.kind == "recorded"]
    job = rec.data["job"]
    assert job["resolved"] and job["session_type"] == "checkin" and job["inputs"] == [
        {"path": row.recording_path, "kind": "audio"}]
    assert job["output"].endswith(".m4a") and not job["output"].startswith("/")
    assert {p["role"] for p in job["participants"]} == {"subject", "officer"}


async def test_a_caller_keys_the_subject_number_when_not_calling_from_the_registered_client(
        rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    _open_window(sessions, ids["subject"])
    heard, _ = await _call(svc, sounds, endpoint="anonymous", digits=[ids["number"], "2468"])
    assert heard[:3] == ["checkin_subject", "checkin_pin", "MixMonitor"] and heard[-1] == "checkin_done"
    assert [r.outcome.value for r in _rows(sessions)] == ["on_time"]


async def test_three_wrong_pins_reject_and_alert(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    _open_window(sessions, ids["subject"])
    heard, _ = await _call(svc, sounds, endpoint="80601", digits=["1111", "2222", ""])
    assert heard == ["checkin_pin", "checkin_pin_retry", "checkin_pin_retry", "checkin_rejected"]
    [row] = _rows(sessions)
    assert row.outcome.value == "rejected" and row.recording_path is None and not row.pin_ok
    with sessions() as s:
        [alert] = s.scalars(select(CheckinAlert))
        assert (alert.kind, alert.officer_id, alert.checkin_id) == ("rejected", ids["officer"], row.id)
    assert [e.kind for e in seen if isinstance(e, CheckinAlertEvent)] == ["raised"]


async def test_no_window_open_is_told_and_recorded_as_an_attempt(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    heard, fa = await _call(svc, sounds, endpoint="80601", digits=["2468"])
    assert heard == ["checkin_pin", "checkin_no_window"]
    [row] = _rows(sessions)
    assert row.outcome.value == "outside_window" and row.window_id is None
    assert not any(c.startswith("EXEC MixMonitor") for c in fa.commands)


async def test_an_unknown_subject_number_is_told_and_nothing_is_recorded(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    heard, _ = await _call(svc, sounds, endpoint="anonymous", digits=["999999"])
    assert heard == ["checkin_subject", "checkin_unknown"]
    assert _rows(sessions) == []
    [ev] = [e for e in seen if isinstance(e, CheckinEvent)]
    assert ev.kind == "unknown_subject" and ev.data["digits"] == "999999"


async def test_hanging_up_during_the_challenge_leaves_an_incomplete_check_in(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    _open_window(sessions, ids["subject"])
    await _call(svc, sounds, endpoint="80601", digits=["2468"], hang_up_after="checkin_challenge")
    [row] = _rows(sessions)
    assert row.outcome.value == "incomplete" and row.recording_path  # what was recorded is kept as evidence
    assert [e.kind for e in seen if isinstance(e, CheckinEvent)][-2:] == ["incomplete", "recorded"]


async def test_a_rollcall_answered_skips_the_number_and_the_window(rig: Any, sounds: Path) -> None:
    svc, seen, sessions, ids = rig
    with sessions() as s:
        scope = store.scope_of(s, ids["officer"], Role.OFFICER)
        rc, [row] = store.create_rollcall(s, scope, [ids["subject"]], actor_id=ids["officer"], ring_s=20,
                                          at=datetime.now(UTC), node="pbx1")
        s.commit()
        cid = row.id
    heard, _ = await _call(svc, sounds, endpoint="80601", digits=["2468"], variables={"HUIYAN_CK_ID": str(cid)})
    assert heard[:2] == ["checkin_pin", "MixMonitor"] and heard[-1] == "checkin_done"
    [row] = _rows(sessions)
    assert (row.id, row.kind.value, row.outcome.value, row.window_id) == (cid, "rollcall", "on_time", None)
