"""The agent console's call control in real headless Chromium, through the real Asterisk and controller:
inviting a third party (a lawyer's SIPp phone) into a citizen's call and removing them again, then a blind
transfer of the caller to another agent, whose console rings and answers.

Scenario: a citizen calls 12348 (法律咨询) from the citizen page; the agent console answers. The agent first
mistypes the lawyer's extension (the dialog says so in plain words), then invites the lawyer: the lawyer's
phone answers, Asterisk's bridge holds caller, agent and lawyer, and the console lists the lawyer with a
remove button. Removed, the lawyer's phone gets its BYE and the bridge is back to two, the caller still on.
Then the agent transfers the caller, blind, to a colleague's extension; the second agent's console rings,
answers, and the citizen (whose call never ended) now decodes the second agent's video; the first agent is
off the call, in wrap-up, and the call row says transferred.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from huiyan.db.models import HotlineCall, Queue
from tests.e2e.conftest import AGENT_PASSWORD, Agent, Hotline12348, Pages, wait_until
from tests.e2e.test_hotline_web import agent_console, both_sizes, citizen_calls, flowing, state_of, stats
from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import Sipp, free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _user(huiyan: Running, username: str, role: str, name: str, queue_id: int | None = None) -> tuple[Agent, str]:
    """A new user (in `queue_id` if given) with their endpoint live in Asterisk; with their SIP password."""
    from huiyan.db import hotline as db
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        u = store.create_user(s, username=username, password=AGENT_PASSWORD, role=role, display_name=name)
        if queue_id is not None:
            db.add_queue_member(s, queue_id, u.id)
        s.commit()
        made = Agent(u.id, u.username, AGENT_PASSWORD, u.extension)
        sip_password = u.sip_password
    huiyan.call(huiyan.ctl.apply_directory())
    if queue_id is not None:
        huiyan.call(huiyan.ctl.hotline.reload())
    return made, sip_password


def _lawyer_phone(huiyan: Running, lawyer: Agent, sip_password: str, tmp: Path) -> Sipp:
    """The lawyer's desk phone: registered at their extension, answers an invitation, waits for the BYE."""
    port = free_port()
    reg = Sipp("register.xml", huiyan.sip_target, service=lawyer.extension, workdir=tmp, user=lawyer.extension,
               password=sip_password, port=port, timeout=10).run()
    assert reg.ok, reg.stderr[-2000:] + reg.errors[-2000:]
    flow = callflows.agent(tmp / "lawyer.xml", answer_after_ms=300)
    # No call limit: Asterisk's OPTIONS pings count as calls for SIPp (-aa answers them); the test ends it.
    phone = Sipp(str(flow), huiyan.sip_target, service=lawyer.extension, workdir=tmp, port=port, timeout=120,
                 max_calls=None, timeout_error=False,
                 extra=("-aa", "-trace_msg", "-message_file", str(tmp / "lawyer-msgs.log")))
    return phone.start()


def _bridge(huiyan: Running, call_id: str) -> set[str]:
    t = huiyan.ctl.tracker
    ch = t.channels.get(call_id)
    if ch is None or ch.bridge_id is None:
        return set()
    return {c.name for c in t.channels_in_bridge(ch.bridge_id)}


def _logout(huiyan: Running, agent_id: int) -> None:
    """Leave the shared hotline as the other e2e tests expect it: this agent logged out (once off any call)."""
    from huiyan.acd.errors import InvalidTransition

    svc = huiyan.ctl.hotline

    async def out() -> bool:
        if svc.acd.agent(str(agent_id)).state.value == "logged_out":
            return True
        try:
            svc.logout(str(agent_id))
        except InvalidTransition:  # still on a call that is ending
            return False
        return True

    wait_until(lambda: huiyan.call(out()), 20, f"agent {agent_id} logged out")


def test_agent_invites_a_lawyer_removes_them_and_transfers_the_caller_to_a_colleague(
        pages: Pages, huiyan: Running, hotline: Hotline12348, tmp_path: Path) -> None:
    with huiyan.ctl.session_factory() as s:
        aid_queue = s.query(Queue).filter(Queue.name == "法律援助").one().id
    second, _ = _user(huiyan, f"wang.agent{time.monotonic_ns()}", "agent", "王坐席", aid_queue)
    lawyer, lawyer_sip = _user(huiyan, f"chen.lawyer{time.monotonic_ns()}", "lawyer", "陈律师")
    phone = _lawyer_phone(huiyan, lawyer, lawyer_sip, tmp_path)
    try:
        _scenario(pages, huiyan, hotline, second, lawyer, phone)
    finally:
        phone.kill()
        pages.close()  # the browsers hang up, so the agents can log out
        _logout(huiyan, hotline.agent.user_id)
        _logout(huiyan, second.user_id)


def _scenario(pages: Pages, huiyan: Running, hotline: Hotline12348, second: Agent, lawyer: Agent,
              phone: Sipp) -> None:
    agent = agent_console(pages, huiyan, hotline)
    agent.click("#btn-login")
    wait_until(lambda: state_of(agent) == "available", 15, "agent available")
    assert not agent.is_visible("#call-tools"), "call tools shown without a call"

    citizen = citizen_calls(pages, huiyan, "周女士", "13904310021", "citizen-ctl")
    agent.wait_for_selector("#ringing:not([hidden])", timeout=30000)
    agent.click("#btn-answer")
    wait_until(lambda: flowing(agent) and flowing(citizen), 30, "video and audio both ways")
    agent.wait_for_selector("#call-tools:not([hidden])", timeout=10000)
    call_id = agent.evaluate("window.huiyan.callId()")
    assert call_id and len(_bridge(huiyan, call_id)) == 2

    # ---- invite a lawyer: a wrong extension is explained, the right one joins the call --------------
    agent.click("#btn-invite")
    agent.wait_for_selector("#dlg-invite[open]")
    agent.fill("#inv-target", "8001")
    agent.click("#inv-go")
    assert agent.inner_text("#inv-error") == "分机号是以 8 开头的 5 位数字，例如 80012。"
    agent.select_option("#inv-type", "sip")
    agent.fill("#inv-target", "lawyer@example")
    agent.click("#inv-go")
    assert "sip:名称@地址" in agent.inner_text("#inv-error")
    agent.select_option("#inv-type", "ext")
    agent.fill("#inv-target", lawyer.extension)
    both_sizes(agent, "agent-invite-dialog")
    agent.click("#inv-go")
    agent.wait_for_selector("#dlg-invite", state="hidden")

    row = f"#parties li[data-state=joined]:has-text('{lawyer.extension}')"
    agent.wait_for_selector(row, timeout=20000)
    names = _bridge(huiyan, call_id)
    assert len(names) == 3 and any(n.startswith(f"PJSIP/{lawyer.extension}-") for n in names), names
    assert "已加入通话" in agent.inner_text(row)
    agent.locator("#parties-box").scroll_into_view_if_needed()
    both_sizes(agent, "agent-three-way")

    agent.click(f"{row} button")
    wait_until(lambda: not agent.query_selector("#parties li"), 15, "the lawyer gone from the console")
    assert agent.is_hidden("#parties-box")
    wait_until(lambda: len(_bridge(huiyan, call_id)) == 2, 10, "bridge back to caller and agent")
    assert not any(n.startswith(f"PJSIP/{lawyer.extension}-") for n in _bridge(huiyan, call_id))
    assert citizen.evaluate("window.huiyan.state()") == "established", "the caller was dropped"
    log = Path(phone.args[phone.args.index("-message_file") + 1])
    wait_until(lambda: log.exists() and "BYE sip:" in log.read_text(errors="replace"), 10, "the lawyer's BYE")

    # ---- blind transfer to a colleague: the second agent's console rings and answers ----------------
    other = agent_console(pages, huiyan, SimpleNamespace(agent=second))
    other.click("#btn-login")
    wait_until(lambda: state_of(other) == "available", 15, "second agent available")

    agent.click("#btn-transfer")
    agent.wait_for_selector("#dlg-transfer[open]")
    # An agent may not read /api/queues or /api/agents (supervisors do): the queue list comes from the
    # console's live numbers, and a colleague is reached by extension.
    assert agent.is_hidden("#tr-agent-row")
    assert agent.input_value("#tr-type") == "queue"
    assert agent.inner_text("#tr-queue").split("\n") == ["法律咨询", "法律援助"]
    agent.select_option("#tr-type", "ext")
    agent.fill("#tr-ext", "12348")
    agent.click("#tr-go")
    assert agent.inner_text("#tr-error") == "分机号是以 8 开头的 5 位数字，例如 80012。"
    agent.fill("#tr-ext", second.extension)
    both_sizes(agent, "agent-transfer-dialog")
    before = stats(citizen)["video"]["framesDecoded"]
    agent.click("#tr-go")

    other.wait_for_selector("#ringing:not([hidden])", timeout=30000)
    wait_until(lambda: agent.evaluate("window.huiyan.state()") == "ended", 15, "first agent off the call")
    wait_until(lambda: agent.inner_text("#call-state") == f"已转接至 {second.extension}", 5, "transfer shown")
    assert not agent.is_visible("#call-tools") and not agent.is_visible("#dlg-transfer")
    other.click("#btn-answer")
    wait_until(lambda: flowing(other), 30, "second agent decodes the caller")
    # The citizen's own call never ended: it now decodes the second agent's picture.
    wait_until(lambda: stats(citizen)["video"]["framesDecoded"] > before + 30, 20, "citizen sees the new agent")
    assert citizen.evaluate("window.huiyan.state()") == "established"
    names = _bridge(huiyan, call_id)
    assert any(n.startswith(f"PJSIP/{second.extension}-") for n in names), names
    assert not any(n.startswith(f"PJSIP/{hotline.agent.extension}-") for n in names), names
    wait_until(lambda: state_of(agent) == "wrap_up", 15, "first agent in wrap-up")
    both_sizes(agent, "agent-transferred")
    both_sizes(other, "agent-after-transfer")

    citizen.click("#hangup")
    wait_until(lambda: other.evaluate("window.huiyan.state()") == "ended", 15, "second agent's call ended")

    def row_of(user_id: int) -> HotlineCall | None:
        with huiyan.ctl.session_factory() as s:
            return s.query(HotlineCall).filter(HotlineCall.caller_number == "13904310021",
                                               HotlineCall.agent_user_id == user_id).one_or_none()

    first_row = wait_until(lambda: row_of(hotline.agent.user_id), 10, "first agent's call row")
    assert first_row.outcome == "transferred" and second.extension in first_row.notes
    agent.click("#btn-wrapup")
    wait_until(lambda: state_of(agent) == "available", 10, "first agent available again")
