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
                 announce_every: int = 0, priorities: dict[str, int] | None = None) -> None:
        from huiyan.db import hotline as db

        self.h = h
        self.tmp = tmp
        n = next(_seq)
        self.number = f"12348{n:02d}{time.monotonic_ns() % 1000:03d}"  # unique even if imported twice
        with h.ctl.session_factory() as s:
            q = db.create_queue(s, name=f"测试队列{n}-{time.monotonic_ns()}", strategy=strategy,
                                ring_timeout_s=ring_timeout, wrapup_s=wrapup, autopause_after=autopause_after,
                                announce_every_s=announce_every)
            for digit, skills in (digits or {"1": {}}).items():
                db.create_menu_option(s, service_number=self.number, digit=digit, queue_id=q.id,
                                      label_zh=f"选项{digit}", required_skills=skills,
                                      priority=(priorities or {}).get(digit, 0))
            s.commit()
            self.queue_id = q.id
        # the service number must exist in the dialplan: add it to the running settings and re-render
        h.settings.services[self.number] = "hotline"
        h.call(h.ctl.apply_directory())
        self.phones: list[Phone] = []
        self.sipps: list[Sipp] = []  # every SIPp started here (phones not in self.phones too): killed at close

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

    def start(self, *, login: bool = True, unregistered: tuple[Phone, ...] = ()) -> None:
        """Render + reload (new endpoints), register every phone (but `unregistered`), reload the
        distributor, log agents in (in the order they were added: the first is the longest idle)."""
        self.h.call(self.h.ctl.apply_directory())
        for p in self.phones:
            if p in unregistered:
                continue
            res = Sipp("register.xml", self.h.sip_target, service=p.extension, workdir=self.tmp, user=p.extension,
                       password=p.password, port=p.port, timeout=10).run()
            assert res.ok, res.stderr + res.errors
        self.h.call(self.h.ctl.hotline.reload())
        for p in self.phones if login else ():
            self.login(p)

    def login(self, p: Phone, extension: str | None = None) -> None:
        self.h.ctl.hotline.login(p.agent_id, [str(self.queue_id)], extension)

    def phone(self, p: Phone, *, calls: int = 1, answer_after_ms: int = 300, answer: bool = True,
              timeout: float = 60, hangup_after_ms: int | None = None) -> Sipp:
        path = self.tmp / f"agent-{p.extension}-{next(_seq)}.xml"
        callflows.agent(path, calls=calls, answer_after_ms=answer_after_ms, answer=answer,
                        hangup_after_ms=hangup_after_ms)
        # No call limit: SIPp counts Asterisk's OPTIONS qualify pings as calls. The test ends the phone.
        p.sipp = Sipp(str(path), self.h.sip_target, service=p.extension, workdir=self.tmp, port=p.port,
                                  timeout=timeout, max_calls=None, timeout_error=False,
                                  extra=("-aa", "-trace_msg", "-message_file",
                                         str(self.tmp / f"msgs-{p.extension}.log")))
        p.sipp.start()
        self.sipps.append(p.sipp)
        time.sleep(0.2)
        return p.sipp

    def caller(self, *, digits: str = "1", hangup_after_ms: int = 9000, number: str = "13904310001",
               timeout: float = 60, video: bool = True, presses: tuple[tuple[int, str], ...] = (),
              far_end_hangup: bool | None = None) -> Sipp:
        path = self.tmp / f"caller-{next(_seq)}.xml"
        callflows.caller(path, digits=digits, hangup_after_ms=hangup_after_ms, number=number, video=video,
                         presses=presses, far_end_hangup=far_end_hangup)
        sipp = Sipp(str(path), self.h.sip_target, service=self.number, workdir=self.tmp,
                                timeout=timeout).start()
        self.sipps.append(sipp)
        return sipp

    def log(self, call_id: str | None = None) -> list[tuple[str, int | None]]:
        from huiyan.db.models import QueueLogEntry
        from sqlalchemy import select

        with self.h.ctl.session_factory() as s:
            stmt = select(QueueLogEntry).where(QueueLogEntry.queue_id == self.queue_id).order_by(QueueLogEntry.id)
            if call_id:
                stmt = stmt.where(QueueLogEntry.call_id == call_id)
            return [(e.event.value if hasattr(e.event, "value") else e.event, e.agent_user_id)
                    for e in s.scalars(stmt)]

    def rows(self, call_id: str | None = None, *, agent: Phone | None = None) -> list:
        """Queue log rows of this queue (or of one agent, whose state changes carry no queue), oldest first."""
        from huiyan.db.models import QueueLogEntry
        from sqlalchemy import select

        with self.h.ctl.session_factory() as s:
            stmt = select(QueueLogEntry).order_by(QueueLogEntry.id)
            if agent is not None:
                stmt = stmt.where(QueueLogEntry.agent_user_id == agent.user_id)
            else:
                stmt = stmt.where(QueueLogEntry.queue_id == self.queue_id)
            if call_id:
                stmt = stmt.where(QueueLogEntry.call_id == call_id)
            return list(s.scalars(stmt))

    def messages(self, p: Phone) -> str:
        """Everything the agent's SIPp phone sent and received (its -trace_msg log)."""
        f = self.tmp / f"msgs-{p.extension}.log"
        return f.read_text(errors="replace") if f.exists() else ""

    def call_of(self, number: str):  # type: ignore[no-untyped-def]
        return self.wait_for(lambda: [c for c in self.calls() if c.caller_number == number])[0]

    def ended(self, number: str | None = None, count: int = 1, timeout: float = 20.0) -> list:
        """Wait until `count` calls (of `number`, if given) have ended; return them."""
        def done() -> list:
            rows = [c for c in self.calls() if c.ended_at is not None and number in (None, c.caller_number)]
            return rows if len(rows) >= count else []
        return self.wait_for(done, timeout)

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
        for sipp in self.sipps:
            sipp.kill()
        for p in self.phones:
            try:
                self.h.ctl.hotline.logout(p.agent_id)
            except Exception:  # noqa: BLE001 - already logged out
                pass


def _ok(res: SippResult) -> None:
    assert res.ok, res.stderr[-2000:] + res.errors[-3000:]


@pytest.fixture
def hotline(huiyan: Running, tmp_path: Path):  # type: ignore[no-untyped-def]
    if "hotline" not in huiyan.ctl.agi.routes:
        # test_foundation's FastAGI-outage test swaps the controller's FastAGI server for one with only the
        # default routes; without this every hotline call after it would hear "unknown route".
        from huiyan.hotline.flow import hotline_route

        huiyan.ctl.agi.routes["hotline"] = hotline_route(huiyan.ctl.hotline, huiyan.settings.data_dir / "recordings")
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


def _svc(hl: Hotline):  # type: ignore[no-untyped-def]
    return hl.h.ctl.hotline


def _state(hl: Hotline, p: Phone) -> str:
    return _svc(hl).acd.agent(p.agent_id).state.value


def _invites(text: str) -> int:
    return text.count("INVITE sip:")


# ---- 1. an agent who does not answer ------------------------------------------------------------------

def test_unanswered_agent_is_cancelled_after_the_ring_timeout_and_the_next_agent_answers(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(ring_timeout=2)
    first = hl.add_agent()
    second = hl.add_agent()
    hl.start()  # `first` logs in first: longest idle, so offered first
    hl.phone(first, answer=False)
    hl.phone(second, answer_after_ms=300)
    caller = hl.caller(digits="1", hangup_after_ms=8000, number="13904310101")
    _ok(caller.wait())
    call = hl.ended("13904310101")[0]
    assert call.outcome.value == "completed" and call.agent_user_id == second.user_id
    assert call.offered_count == 2
    assert hl.log(call.id)[:6] == [
        ("enqueue", None), ("offer", first.user_id), ("noanswer", first.user_id),
        ("offer", second.user_id), ("connect", second.user_id), ("complete", second.user_id)]
    # Dial gave up on the first phone itself (its own ring timeout): that phone was sent CANCEL, and the
    # reason logged is Dial's, not the distributor's safety-net deadline.
    assert "CANCEL sip:" in hl.messages(first) and "SIP/2.0 487" in hl.messages(first)
    noanswer = [r for r in hl.rows(call.id) if r.event.value == "noanswer"][0]
    assert noanswer.data.get("result") == "no_answer", noanswer.data
    assert _invites(hl.messages(second)) == 1
    hl.wait_for(lambda: _state(hl, first) == "available" and _state(hl, second) == "available", timeout=5)


# ---- 2. abandons ------------------------------------------------------------------------------------

def test_caller_who_hangs_up_while_waiting_is_logged_as_abandoned(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline()
    hl.start()  # nobody logged in: the caller waits (join-empty = join)
    caller = hl.caller(digits="1", hangup_after_ms=6000, number="13904310201", far_end_hangup=False)
    _ok(caller.wait())
    call = hl.ended("13904310201")[0]
    assert call.outcome.value == "abandoned"
    assert call.answered_at is None and call.agent_user_id is None and call.offered_count == 0
    assert hl.log(call.id) == [("enqueue", None), ("abandon", None)]
    assert call.id not in _svc(hl).waiters


def test_caller_who_hangs_up_while_the_agent_rings_cancels_the_ringing_leg(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(ring_timeout=20)
    agent = hl.add_agent()
    hl.start()
    hl.phone(agent, answer=False)
    # "1" pressed at 1 s; the agent is free, so the phone rings at once; the caller gives up at 8 s
    caller = hl.caller(digits="1", hangup_after_ms=8000, number="13904310202", far_end_hangup=False)
    _ok(caller.wait())
    call = hl.ended("13904310202")[0]
    assert call.outcome.value == "abandoned" and call.answered_at is None
    assert hl.log(call.id) == [("enqueue", None), ("offer", agent.user_id), ("abandon", None)]
    hl.wait_for(lambda: "CANCEL sip:" in hl.messages(agent), timeout=5)
    assert "SIP/2.0 487" in hl.messages(agent)
    assert _state(hl, agent) == "available"


# ---- 3. priority -------------------------------------------------------------------------------------

def test_priority_caller_overtakes_a_normal_caller_who_waited_longer(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(digits={"1": {}, "2": {}}, priorities={"2": 5})
    agent = hl.add_agent()
    hl.start()
    _svc(hl).pause(agent.agent_id, "meeting")
    hl.phone(agent, answer_after_ms=300)
    normal = hl.caller(digits="1", number="13904310301", hangup_after_ms=16000, far_end_hangup=False)
    first_in = hl.call_of("13904310301")
    urgent = hl.caller(digits="2", number="13904310302", hangup_after_ms=9000, far_end_hangup=False)
    second_in = hl.call_of("13904310302")
    hl.wait_for(lambda: [e for e, _ in hl.log() if e == "enqueue"] == ["enqueue", "enqueue"])
    assert first_in.enqueued_at < second_in.enqueued_at and second_in.priority == 5
    assert _svc(hl).position(second_in.id) == 1 and _svc(hl).position(first_in.id) == 2
    _svc(hl).unpause(agent.agent_id)
    _ok(urgent.wait())
    _ok(normal.wait())
    calls = hl.ended(count=2)
    assert {c.outcome.value for c in calls} == {"completed"}
    offers = [r.call_id for r in hl.rows() if r.event.value == "offer"]
    assert offers == [second_in.id, first_in.id]
    assert _invites(hl.messages(agent)) == 2


# ---- 4. skills ---------------------------------------------------------------------------------------

def test_skills_routing_picks_the_skilled_agent_over_a_longer_idle_unskilled_one(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(strategy="skills", digits={"1": {}, "2": {"legal_aid": 5}})
    novice = hl.add_agent(skills={"legal_aid": 2, "consultation": 9})
    expert = hl.add_agent(skills={"legal_aid": 8})
    hl.start()
    assert _svc(hl).acd.agent(novice.agent_id).idle_since < _svc(hl).acd.agent(expert.agent_id).idle_since
    hl.phone(novice)
    hl.phone(expert)
    caller = hl.caller(digits="2", hangup_after_ms=6000, number="13904310401")
    _ok(caller.wait())
    call = hl.ended("13904310401")[0]
    assert call.outcome.value == "completed" and call.agent_user_id == expert.user_id
    assert hl.log(call.id)[:4] == [("enqueue", None), ("offer", expert.user_id), ("connect", expert.user_id),
                                        ("complete", expert.user_id)]
    assert _invites(hl.messages(novice)) == 0 and _invites(hl.messages(expert)) == 1


# ---- 5. pause / unpause ------------------------------------------------------------------------------

def test_paused_agent_is_not_offered_calls_and_gets_the_waiting_call_after_unpause(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline()
    agent = hl.add_agent()
    hl.start()
    _svc(hl).pause(agent.agent_id, "break")
    hl.phone(agent, answer_after_ms=300)
    caller = hl.caller(digits="1", hangup_after_ms=10000, number="13904310501", far_end_hangup=False)
    call = hl.call_of("13904310501")
    time.sleep(4)  # waiting with the only agent paused
    assert hl.log(call.id) == [("enqueue", None)]
    assert _svc(hl).acd.call(call.id).state.value == "waiting" and _state(hl, agent) == "paused"
    assert _invites(hl.messages(agent)) == 0
    unpaused_at = time.time()
    _svc(hl).unpause(agent.agent_id)
    _ok(caller.wait())
    call = hl.ended("13904310501")[0]
    assert call.outcome.value == "completed" and call.agent_user_id == agent.user_id
    assert [e for e, _ in hl.log(call.id)][:4] == ["enqueue", "offer", "connect", "complete"]
    offer = [r for r in hl.rows(call.id) if r.event.value == "offer"][0]
    assert offer.at.timestamp() >= unpaused_at - 0.01
    agent_log = [r.event.value for r in hl.rows(agent=agent) if r.event.value in ("pause", "unpause")]
    assert agent_log == ["pause", "unpause"]


# ---- 6. bad input and unreachable agents ------------------------------------------------------------

def _channel_of(hl: Hotline, number: str) -> str:
    """The uniqueid of the caller's channel (from AMI), for calls that never reach the queue."""
    from huiyan.pbx.events import Newchannel

    e = hl.h.wait_event(lambda e: isinstance(e, Newchannel) and e.fields.get("CallerIDNum") == number
                        and e.fields.get("Exten") == hl.number)
    return e.uniqueid


def _agi(hl: Hotline, uid: str) -> list[str]:
    """What the caller was made to hear or do on that channel, as "VERB prompt", from AMI AGIExecEnd events
    (channel variable reads and writes left out)."""
    from huiyan.pbx.events import AmiEvent

    out = []
    for e in hl.h.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "AGIExecEnd" and e.uniqueid == uid):
        cmd = e.fields.get("Command", "")
        if cmd.startswith(("GET VARIABLE", "SET VARIABLE")):
            continue
        verb = " ".join(w for w in cmd.split('"')[0].split() if w.isupper())
        prompt = cmd.split('"')[1].rsplit("/", 1)[-1] if '"' in cmd else ""
        out.append(f"{verb} {prompt}".strip())
    return out


def _menu_log(caplog, uid: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.getMessage().split("] ", 1)[1] for r in caplog.records
            if r.name == "huiyan.agi" and uid in r.getMessage() and "menu:" in r.getMessage()]


def test_unknown_digit_three_times_or_silence_gets_invalid_prompts_then_goodbye(hotline, caplog) -> None:  # type: ignore[no-untyped-def]
    """Both callers at once (the silent one takes a minute: 3 x (menu 7.3 s + 5 s timeout + invalid 3.6 s))."""
    import logging

    caplog.set_level(logging.INFO, logger="huiyan.agi")
    hl = hotline(digits={"1": {}, "2": {}})
    hl.start()
    # The menu (7.3 s, then 5 s for a digit) starts after the answer and welcome + recorded (~9.9 s); each
    # wrong digit, pressed ~2 s into the menu, is followed by "invalid" (3.6 s) and the menu again.
    wrong = hl.caller(number="13904310601", digits="", presses=((12000, "7"), (17500, "8"), (23000, "9")),
                      hangup_after_ms=45000, far_end_hangup=True, timeout=60)
    silent = hl.caller(number="13904310602", digits="", hangup_after_ms=80000, far_end_hangup=True, timeout=95)
    try:
        # Both callers receive our BYE (far_end_hangup=True fails the scenario otherwise).
        _ok(wrong.wait())
        _ok(silent.wait())
    finally:
        wrong.kill()
        silent.kill()
    menu_flow = ["ANSWER", "STREAM FILE welcome", "STREAM FILE recorded",
                 "GET DATA menu", "STREAM FILE invalid", "GET DATA menu", "STREAM FILE invalid",
                 "GET DATA menu", "STREAM FILE invalid", "STREAM FILE goodbye", "HANGUP"]
    heard = {"13904310601": [f"menu: invalid digit {d!r} (try {n})" for n, d in ((1, "7"), (2, "8"), (3, "9"))],
             "13904310602": [f"menu: silence (try {n})" for n in (1, 2, 3)]}
    for number, logged in heard.items():
        uid = _channel_of(hl, number)
        commands = _agi(hl, uid)
        assert commands[:len(menu_flow)] == menu_flow, (number, commands)
        assert not any(c.startswith("EXEC") for c in commands), commands  # never queued, never dialled
        assert _menu_log(caplog, uid) == logged
    assert hl.calls() == [] and hl.log() == []  # no queue entry at all


def test_caller_who_hangs_up_during_the_welcome_ends_the_session_cleanly(hotline, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from huiyan.pbx.events import Hangup

    caplog.set_level(logging.INFO, logger="huiyan")
    hl = hotline(digits={"1": {}, "2": {}})
    hl.start()
    caller = hl.caller(number="13904310603", digits="", hangup_after_ms=2500, far_end_hangup=False)
    _ok(caller.wait())
    uid = _channel_of(hl, "13904310603")
    hl.h.wait_event(lambda e: isinstance(e, Hangup) and e.uniqueid == uid)
    # the FastAGI session saw the hang-up and ended without an error exit
    hl.wait_for(lambda: any(uid in r.getMessage() and "call ended by hang-up" in r.getMessage()
                            for r in caplog.records), timeout=5)
    # Cut short in the greeting: never reached the menu, the queue or a Dial. (A STREAM FILE answers -1
    # just before Asterisk's HANGUP line arrives, so the next greeting prompt may still be attempted.)
    heard = _agi(hl, uid)
    assert heard[:2] == ["ANSWER", "STREAM FILE welcome"], heard
    assert set(heard[2:]) <= {"STREAM FILE recorded"}, heard
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert hl.calls() == [] and hl.log() == []


def test_unreachable_agents_fail_at_once_and_the_call_goes_to_the_next_agent(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(ring_timeout=3)
    offline = hl.add_agent()  # a real endpoint whose phone never registered
    ghost = hl.add_agent()  # logged in at an extension no endpoint has
    real = hl.add_agent()
    hl.start(login=False, unregistered=(offline,))
    hl.login(offline)
    hl.login(ghost, extension="70000")
    hl.login(real)
    hl.phone(ghost)  # registered at its own extension, which is not where its calls go now
    hl.phone(real, answer_after_ms=300)
    caller = hl.caller(digits="1", hangup_after_ms=6000, number="13904310604")
    _ok(caller.wait())
    call = hl.ended("13904310604")[0]
    assert call.outcome.value == "completed" and call.agent_user_id == real.user_id
    assert hl.log(call.id)[:8] == [
        ("enqueue", None), ("offer", offline.user_id), ("noanswer", offline.user_id),
        ("offer", ghost.user_id), ("noanswer", ghost.user_id),
        ("offer", real.user_id), ("connect", real.user_id), ("complete", real.user_id)]
    failed = [r.data.get("result") for r in hl.rows(call.id) if r.event.value == "noanswer"]
    assert failed == ["failed", "failed"]  # Dial's CHANUNAVAIL, reported at once (not a ring timeout)
    assert _invites(hl.messages(ghost)) == 0
    for p in (offline, ghost, real):
        assert _state(hl, p) == "available"


def test_caller_keeps_waiting_when_the_only_agent_is_unreachable(hotline) -> None:  # type: ignore[no-untyped-def]
    hl = hotline(autopause_after=2)
    offline = hl.add_agent()
    hl.start(unregistered=(offline,))
    caller = hl.caller(digits="1", hangup_after_ms=8000, number="13904310605", far_end_hangup=False)
    _ok(caller.wait())  # not dropped: the caller hung up by themselves
    call = hl.ended("13904310605")[0]
    assert call.outcome.value == "abandoned"
    assert hl.log(call.id) == [("enqueue", None), ("offer", offline.user_id), ("noanswer", offline.user_id),
                                    ("offer", offline.user_id), ("noanswer", offline.user_id), ("abandon", None)]
    view = _svc(hl).acd.agent(offline.agent_id)
    assert (view.state.value, view.reason) == ("paused", "auto-pause")


def test_unreachable_only_agent_without_auto_pause_is_retried_calmly(hotline) -> None:  # type: ignore[no-untyped-def]
    """Auto-pause off: the distributor offers the call to the same unreachable agent again and again. The
    caller's coroutine waits a moment between two Dials that failed at once, instead of spinning."""
    from huiyan.hotline.flow import REDIAL_AFTER_FAILURE_S

    hl = hotline(autopause_after=0)
    offline = hl.add_agent()
    hl.start(unregistered=(offline,))
    caller = hl.caller(digits="1", hangup_after_ms=8000, number="13904310606", far_end_hangup=False)
    _ok(caller.wait())  # waited with music until they gave up
    call = hl.ended("13904310606")[0]
    assert call.outcome.value == "abandoned"
    events = hl.log(call.id)
    offers = [e for e, _ in events if e == "offer"]
    # ~7 s in line: the first offer, one per pause, and the one pending when they hung up (spinning: ~2000)
    assert 2 <= len(offers) <= 2 + 7 / REDIAL_AFTER_FAILURE_S, events
    assert events[-1] == ("abandon", None)
    assert _state(hl, offline) == "available"
