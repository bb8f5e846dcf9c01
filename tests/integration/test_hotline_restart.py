"""The controller dies (SIGKILL) while hotline callers wait: nobody is dropped, and a restarted controller
serves them all, in their original order. A controller of its own in a subprocess (`huiyan up`), because
the session's controller runs inside pytest and cannot be killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import callflows
from tests.integration.conftest import REPO
from tests.integration.sipp import Sipp, SippResult, free_port
from tests.integration.test_cli import _env, _huiyan

pytestmark = pytest.mark.integration

CALLERS = 5
AGENT_PASSWORD = "agent-password-1"


def _configure(db_url: str) -> dict[str, Any]:
    """Before `huiyan up`: a queue behind digit 1 of 12348, one agent in it (a SIP endpoint of their own)."""
    from huiyan.db import hotline as db
    from huiyan.db import make_engine, session_factory, store

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            q = db.create_queue(s, name="法律咨询", strategy="longest-idle", ring_timeout_s=5, wrapup_s=0,
                                autopause_after=0, announce_every_s=0)
            db.create_menu_option(s, service_number="12348", digit="1", queue_id=q.id, label_zh="法律咨询")
            db.create_menu_option(s, service_number="12348", digit="2", queue_id=q.id, label_zh="法律援助")
            u = store.create_user(s, username="agent-restart", password=AGENT_PASSWORD, role="agent",
                                  display_name="坐席")
            db.add_queue_member(s, q.id, u.id)
            s.commit()
            return {"queue_id": q.id, "user_id": u.id, "extension": u.extension, "sip_password": u.sip_password,
                    "username": u.username}
    finally:
        engine.dispose()


def _rows(db_url: str) -> tuple[list[Any], list[Any], Any]:
    """(hotline calls by enqueue time, queue log, the agent's AgentStatus rows) as the database has them."""
    from sqlalchemy import select

    from huiyan.db import hotline as db
    from huiyan.db import make_engine, session_factory
    from huiyan.db.models import HotlineCall, QueueLogEntry

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as s:
            calls = list(s.scalars(select(HotlineCall).order_by(HotlineCall.enqueued_at)))
            log = list(s.scalars(select(QueueLogEntry).order_by(QueueLogEntry.id)))
            statuses = db.agent_statuses(s)
            s.expunge_all()
            return calls, log, statuses
    finally:
        engine.dispose()


def _up(env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "huiyan", "up"], env=env, cwd=REPO, stdout=f,
                                stderr=subprocess.STDOUT)


def _healthy(api: str, proc: subprocess.Popen[bytes], out: Path, timeout: float = 60) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            r = httpx.get(f"{api}/healthz", timeout=2)
            if r.status_code == 200 and r.json()["ok"]:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, out.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    raise AssertionError("huiyan up never became healthy:\n" + out.read_text(errors="replace")[-3000:])


def _alive(pid: int) -> bool:
    from huiyan.pbx.process import _alive as alive

    return alive(pid)


def _wait(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def _ok(res: SippResult) -> None:
    assert res.ok, res.stderr[-2000:] + res.errors[-3000:]


def test_callers_survive_a_killed_controller_and_are_served_in_order_after_restart(tmp_path: Path) -> None:
    """Five callers wait (the only agent is paused) when the controller is killed with SIGKILL.

    What each caller experiences: welcome (they press 1 during it), "please wait", music on hold. The kill
    closes their FastAGI connections; Asterisk, in its own session, lives on, and its dialplan (huiyan-run)
    takes over the call on the spot: "please wait" once more, then music on hold for 5 s, then it runs the
    hotline route again. By then the new controller is up (it adopted the running Asterisk instead of
    restarting it): the route finds HUIYAN_HL_DIGIT and HUIYAN_HL_QUEUED_AT on the channel, so there is no
    greeting and no menu again, and the caller re-joins the queue at their original place. Still nobody
    free: "please wait" and music again. So a caller hears, without a gap or a dropped call, about 9 s of
    "please wait" + music + "please wait" + music instead of plain music, and is then put through to the
    agent in the order they first called. No SIP message reaches them in between (no re-INVITE, no BYE).
    """
    data = tmp_path / "data"
    env = _env(data)
    setup = _huiyan("setup", "--no-host-packages", env=env)
    assert setup.returncode == 0, setup.stderr
    from huiyan.config.settings import Settings

    settings = Settings(data_dir=data, database_url=None)
    db_url = settings.db_url
    agent = _configure(db_url)
    agent_id = agent["user_id"]
    sip = f"127.0.0.1:{env['HUIYAN_SIP_PORT']}"
    api = f"http://127.0.0.1:{env['HUIYAN_API_PORT']}"
    pid_file = settings.pbx_dir / "run" / "asterisk.pid"
    out1, out2 = tmp_path / "up-1.log", tmp_path / "up-2.log"
    sipps: list[Sipp] = []
    first = _up(env, out1)
    second: subprocess.Popen[bytes] | None = None
    asterisk_pid: int | None = None
    try:
        _healthy(api, first, out1)
        asterisk_pid = int(pid_file.read_text())

        # The agent's phone registers, the agent logs in (API, as themselves) and goes into a meeting.
        phone_port = free_port()
        reg = Sipp("register.xml", sip, service=agent["extension"], workdir=tmp_path, user=agent["extension"],
                   password=agent["sip_password"], port=phone_port, timeout=10).run()
        _ok(reg)
        token = httpx.post(f"{api}/api/auth/login",
                           json={"username": agent["username"], "password": AGENT_PASSWORD}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{api}/api/agents/{agent_id}/login", headers=auth, json={"queues": [agent["queue_id"]]})
        assert r.status_code == 200, r.text
        r = httpx.post(f"{api}/api/agents/{agent_id}/pause", headers=auth, json={"reason": "会议"})
        assert r.status_code == 200 and r.json()["state"] == "paused", r.text
        _wait(lambda: (st := _rows(db_url)[2].get(agent_id)) is not None and st.state.value == "paused", 5,
              "the agent's pause reaches the database")

        script = callflows.agent(tmp_path / "agent.xml", answer_after_ms=200, hangup_after_ms=1000)
        phone = Sipp(str(script), sip, service=agent["extension"], workdir=tmp_path, port=phone_port,
                                 timeout=120, max_calls=None, timeout_error=False,
                                 extra=("-aa", "-trace_msg", "-message_file", str(tmp_path / "agent-msgs.log")))
        sipps.append(phone.start())

        # Five callers, one after the other (each is in line before the next dials).
        numbers = [f"1390431070{i}" for i in range(CALLERS)]
        callers: dict[str, Sipp] = {}
        for n in numbers:
            path = callflows.caller(tmp_path / f"caller-{n}.xml", digits="1", hangup_after_ms=90000,
                                    number=n, far_end_hangup=True)
            callers[n] = Sipp(str(path), sip, service="12348", workdir=tmp_path, timeout=100).start()
            sipps.append(callers[n])
            _wait(lambda n=n: any(c.caller_number == n for c in _rows(db_url)[0]), 10, f"{n} queued")
        calls = _rows(db_url)[0]
        assert [c.caller_number for c in calls] == numbers
        assert {c.outcome.value for c in calls} == {"waiting"}
        queued_at = {c.id: c.enqueued_at for c in calls}

        # kill -9 the controller.
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(1.0)
        assert _alive(asterisk_pid), "Asterisk died with its controller"
        for n, c in callers.items():
            assert c.proc is not None and c.proc.poll() is None, f"caller {n} was dropped"

        # A new controller adopts the running Asterisk (same pid) and restores the agent (paused) from the DB.
        second = _up(env, out2)
        restarted_in = _healthy(api, second, out2)
        print(f"\nrestarted controller healthy in {restarted_in:.2f}s")
        assert int(pid_file.read_text()) == asterisk_pid and _alive(asterisk_pid), "Asterisk was restarted"
        assert "adopted the running Asterisk" in out2.read_text(errors="replace")
        r = httpx.get(f"{api}/api/agents/{agent_id}", headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "paused", r.text

        # Every caller comes back through the dialplan's retry and re-joins the queue.
        def rejoined() -> bool:
            log = _rows(db_url)[1]
            return all(sum(1 for e in log if e.call_id == cid and e.event.value == "enqueue") >= 2
                       for cid in queued_at)
        _wait(rejoined, 30, "all five callers back in the queue")
        for n, c in callers.items():
            assert c.proc is not None and c.proc.poll() is None, f"caller {n} was dropped"

        r = httpx.post(f"{api}/api/agents/{agent_id}/unpause", headers=auth)
        assert r.status_code == 200, r.text
        for n, c in callers.items():
            _ok(c.wait())  # each one got our BYE only after the agent hung up (far_end_hangup=True)
    finally:
        for sp in sipps:
            sp.kill()
        if first.poll() is None:
            first.kill()
            first.wait(10)
        if second is not None and second.poll() is None:
            second.send_signal(signal.SIGINT)
            try:
                second.wait(60)
            except subprocess.TimeoutExpired:
                second.kill()
        if asterisk_pid is not None and _alive(asterisk_pid):
            os.kill(asterisk_pid, signal.SIGKILL)

    assert second is not None and second.returncode == 0, out2.read_text(errors="replace")[-3000:]
    assert not _alive(asterisk_pid), "Ctrl-C on the new controller stops the adopted Asterisk too"
    calls, log, _ = _rows(db_url)
    assert [c.caller_number for c in calls] == numbers
    for c in calls:
        assert c.outcome.value == "completed" and c.agent_user_id == agent_id, (c.caller_number, c.outcome)
        # the original time in line, carried on the channel (HUIYAN_HL_QUEUED_AT, to the millisecond)
        assert abs((c.enqueued_at - queued_at[c.id]).total_seconds()) < 0.01, "the caller's place in line changed"
        assert c.answered_at is not None and c.ended_at is not None
    # served in the order they first called: offers and answers in that order, one offer each
    offers = [e.call_id for e in log if e.event.value == "offer"]
    assert offers == [c.id for c in calls], offers
    assert sorted(calls, key=lambda c: c.answered_at) == calls
    assert sum(1 for e in log if e.event.value == "abandon") == 0
