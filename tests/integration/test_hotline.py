"""The 12348 hotline end to end: SIPp citizens call, the Python distributor offers them to SIPp agent
phones that registered with their own credentials, through a real Asterisk."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import Sipp, SippResult

pytestmark = pytest.mark.integration
_seq = itertools.count(1)


@dataclass
class Phone:
    user_id: int
    extension: str
    password: str
    port: int
    sipp: Sipp | None = None

    @property
    def agent_id(self) -> str:
        return str(self.user_id)


class Hotline:
    """A queue behind a fresh service number, with agents whose SIPp phones are registered."""

    def __init__(self, h: Running, tmp: Path, *, strategy: str = "longest-idle", ring_timeout: int = 4,
                 wrapup: int = 0, digits: dict[str, dict[str, int]] | None = None, autopause_after: int = 0,
                 announce_every: int = 0) -> None:
        from huiyan.db import hotline as db

        self.h = h
        self.tmp = tmp
        n = next(_seq)
        self.number = f"12348{n:02d}"
        with h.ctl.session_factory() as s:
            q = db.create_queue(s, name=f"测试队列{n}-{time.monotonic_ns()}", strategy=strategy,
                                ring_timeout_s=ring_timeout, wrapup_s=wrapup, autopause_after=autopause_after,
                                announce_every_s=announce_every)
            for digit, skills in (digits or {"1": {}}).items():
                db.create_menu_option(s, service_number=self.number, digit=digit, queue_id=q.id,
                                      label_zh=f"选项{digit}", required_skills=skills)
            s.commit()
            self.queue_id = q.id
        # the service number must exist in the dialplan: add it to the running settings and re-render
        h.settings.services[self.number] = "hotline"
        h.call(h.ctl.apply_directory())
        self.phones: list[Phone] = []

    def add_agent(self, skills: dict[str, int] | None = None) -> Phone:
        from huiyan.db import hotline as db
        from huiyan.db import store

        from tests.integration.sipp import free_port

        with self.h.ctl.session_factory() as s:
            u = store.create_user(s, username=f"agent{time.monotonic_ns()}", password="agent-password-1",
                                  role="agent", display_name="坐席")
            db.add_queue_member(s, self.queue_id, u.id)
            if skills:
                db.set_agent_skills(s, u.id, skills)
            s.commit()
            phone = Phone(u.id, u.extension, u.sip_password, free_port())
        self.phones.append(phone)
        return phone

    def start(self) -> None:
        """Render + reload (new endpoints), register every phone, reload the distributor, log agents in."""
        self.h.call(self.h.ctl.apply_directory())
        for p in self.phones:
            res = Sipp("register.xml", self.h.sip_target, service=p.extension, workdir=self.tmp, user=p.extension,
                       password=p.password, port=p.port, timeout=10).run()
            assert res.ok, res.stderr + res.errors
        self.h.call(self.h.ctl.hotline.reload())
        for p in self.phones:
            self.h.ctl.hotline.login(p.agent_id, [str(self.queue_id)])

    def phone(self, p: Phone, *, calls: int = 1, answer_after_ms: int = 300, answer: bool = True,
              timeout: float = 60) -> Sipp:
        path = self.tmp / f"agent-{p.extension}-{next(_seq)}.xml"
        callflows.agent(path, calls=calls, answer_after_ms=answer_after_ms, answer=answer)
        # No call limit: SIPp counts Asterisk's OPTIONS qualify pings as calls. The test ends the phone.
        p.sipp = Sipp(str(path), self.h.sip_target, service=p.extension, workdir=self.tmp, port=p.port,
                      timeout=timeout, max_calls=None, timeout_error=False,
                      extra=("-aa", "-trace_msg", "-message_file", str(self.tmp / f"msgs-{p.extension}.log")))
        p.sipp.start()
        time.sleep(0.2)
        return p.sipp

    def caller(self, *, digits: str = "1", hangup_after_ms: int = 9000, number: str = "13904310001",
               timeout: float = 60, video: bool = True) -> Sipp:
        path = self.tmp / f"caller-{next(_seq)}.xml"
        callflows.caller(path, digits=digits, hangup_after_ms=hangup_after_ms, number=number, video=video)
        return Sipp(str(path), self.h.sip_target, service=self.number, workdir=self.tmp, timeout=timeout).start()

    def log(self, call_id: str | None = None) -> list[tuple[str, int | None]]:
        from huiyan.db.models import QueueLogEntry
        from sqlalchemy import select

        with self.h.ctl.session_factory() as s:
            stmt = select(QueueLogEntry).where(QueueLogEntry.queue_id == self.queue_id).order_by(QueueLogEntry.id)
            if call_id:
                stmt = stmt.where(QueueLogEntry.call_id == call_id)
            return [(e.event.value if hasattr(e.event, "value") else e.event, e.agent_user_id)
                    for e in s.scalars(stmt)]

    def calls(self) -> list:
        from huiyan.db.models import HotlineCall
        from sqlalchemy import select

        with self.h.ctl.session_factory() as s:
            return list(s.scalars(select(HotlineCall).where(HotlineCall.service_number == self.number)
                                  .order_by(HotlineCall.created_at)))

    def wait_for(self, pred, timeout: float = 20.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError(f"condition not met in {timeout}s; log={self.log()}")

    def close(self) -> None:
        for p in self.phones:
            if p.sipp:
                p.sipp.kill()
            try:
                self.h.ctl.hotline.logout(p.agent_id)
            except Exception:  # noqa: BLE001 - already logged out
                pass


def _ok(res: SippResult) -> None:
    assert res.ok, res.stderr[-2000:] + res.errors[-3000:]


@pytest.fixture
def hotline(huiyan: Running, tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[Hotline] = []

    def make(**kw) -> Hotline:  # type: ignore[no-untyped-def]
        hl = Hotline(huiyan, tmp_path, **kw)
        made.append(hl)
        return hl

    yield make
    for hl in made:
        hl.close()


def test_answered_call_with_video_then_wrapup(hotline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(wrapup=2)
    agent = hl.add_agent()
    hl.start()
    phone = hl.phone(agent, answer_after_ms=300)
    caller = hl.caller(digits="1", hangup_after_ms=6000)
    _ok(caller.wait())
    call = hl.wait_for(lambda: [c for c in hl.calls() if c.ended_at is not None])[0]
    assert call.outcome.value == "completed" and call.agent_user_id == agent.user_id
    assert call.answered_at is not None and call.recording_path
    events = [e for e, _ in hl.log(call.id)]
    assert events[:4] == ["enqueue", "offer", "connect", "complete"], events
    # the agent's phone was offered the caller's H.264 video
    invite = (tmp_path / f"msgs-{agent.extension}.log").read_text()
    assert "m=video" in invite and "H264/90000" in invite
    # wrap-up, then available again
    view = hl.h.ctl.hotline.acd.agent(agent.agent_id)
    assert view.state.value in ("wrap_up", "available")
    hl.wait_for(lambda: hl.h.ctl.hotline.acd.agent(agent.agent_id).state.value == "available", timeout=5)
