"""The citizen page and the agent console in real headless Chromium (fake camera and microphone), calling
through the real Asterisk and controller: WebRTC on both legs, the hotline's queue in between.

Scenario: an agent signs in on the console and pauses; two citizens call 12348 from their phones and see
their own place in line; the agent becomes available, is rung with the first caller's name, phone and
chosen service, answers, and both sides decode each other's video and receive audio; the agent notes
the call and hangs up, which ends the citizen's call; after wrap-up the second caller is answered and
hangs up from the page, which ends the agent's call.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from huiyan.db.models import HotlineCall
from tests.e2e.conftest import DESKTOP, PHONE, Hotline12348, Pages, screenshot, wait_until
from tests.integration.conftest import Running

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def stats(page: Any) -> dict[str, Any]:
    return page.evaluate("window.huiyan.stats()")


def flowing(page: Any) -> bool:
    s = stats(page)
    return s["video"]["framesDecoded"] > 0 and s["audio"]["packetsReceived"] > 0


def both_sizes(page: Any, name: str) -> None:
    """Screenshots at phone and desktop size (the page's own size last, so it is left as it was)."""
    own = dict(page.viewport_size)
    for size in (DESKTOP, PHONE) if own == PHONE else (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # one layout pass
        screenshot(page, name)


def agent_console(pages: Pages, huiyan: Running, hotline: Hotline12348) -> Any:
    page = pages.open(f"{huiyan.api}/agent", viewport=DESKTOP, name="agent")
    page.wait_for_selector("#login-form")
    both_sizes(page, "agent-login")
    page.fill("#username", hotline.agent.username)
    page.fill("#password", hotline.agent.password)
    page.click("#login-form button[type=submit]")
    wait_until(lambda: page.evaluate("window.huiyan.registered()"), 20, "agent softphone registered")
    assert page.inner_text("#who").endswith(hotline.agent.extension)
    return page


def citizen_calls(pages: Pages, huiyan: Running, name: str, phone: str, tag: str) -> Any:
    page = pages.open(f"{huiyan.api}/call?service=12348&option=1", viewport=PHONE, name=tag)
    page.wait_for_selector("#service option", state="attached")
    assert page.input_value("#service") == "12348/1"
    page.fill("#name", name)
    page.fill("#phone", phone)
    page.check("#consent")
    if tag == "citizen-a":
        both_sizes(page, "citizen-form")
    page.click("#call")
    page.wait_for_selector("#incall:not([hidden])")
    return page


def state_of(page: Any) -> str:
    return page.get_attribute("#agent-state", "data-state") or ""


def test_citizen_page_calls_12348_and_the_agent_console_answers_with_video_both_ways(
        pages: Pages, huiyan: Running, hotline: Hotline12348) -> None:
    agent = agent_console(pages, huiyan, hotline)
    agent.click("#btn-login")
    wait_until(lambda: state_of(agent) == "available", 15, "agent available")
    agent.select_option("#pause-reason", "培训")
    agent.click("#btn-pause")
    wait_until(lambda: state_of(agent) == "paused", 15, "agent paused")
    assert "培训" in agent.inner_text("#agent-reason")

    # Two citizens call while nobody is available: each sees its own place in line, nothing else.
    a = citizen_calls(pages, huiyan, "李女士", "13904310001", "citizen-a")
    wait_until(lambda: "下一位就是您" in a.inner_text("#detail"), 30, "citizen A first in line")
    b = citizen_calls(pages, huiyan, "王先生", "13904310002", "citizen-b")
    wait_until(lambda: "您前面还有 1 位" in b.inner_text("#detail"), 30, "citizen B second in line")
    assert "李女士" not in b.content() and "13904310001" not in b.content()
    # The console's live numbers (WS /api/me/events) show both callers waiting in 法律咨询.
    row = f"#queues tr[data-queue='{hotline.queue_id}']"
    wait_until(lambda: agent.query_selector(row) and agent.inner_text(row).split("\t")[:2] == ["法律咨询", "2"],
               15, "two waiting in the console's queue table")
    both_sizes(b, "citizen-waiting")

    # Available: the first caller rings the browser softphone, with who calls and for what.
    agent.click("#btn-available")
    agent.wait_for_selector("#ringing:not([hidden])", timeout=30000)
    assert "李女士" in agent.inner_text("#ring-from")
    wait_until(lambda: agent.inner_text("#ci-phone") == "13904310001", 15, "caller details on the console")
    assert agent.inner_text("#ci-name") == "李女士"
    assert agent.inner_text("#ci-service").startswith("法律咨询 · 12348")
    wait_until(lambda: "下一位就是您" in b.inner_text("#detail"), 15, "citizen B moves up")
    agent.click("#btn-answer")
    wait_until(lambda: flowing(agent) and flowing(a), 30, "video and audio both ways (A)")
    sa, sg = stats(a), stats(agent)
    assert sa["video"]["framesDecoded"] > 0 and sa["audio"]["packetsReceived"] > 0, sa
    assert sg["video"]["framesDecoded"] > 0 and sg["audio"]["packetsReceived"] > 0, sg
    wait_until(lambda: a.inner_text("#status") == "通话中", 15, "citizen A sees the call connected")
    assert state_of(agent) == "on_call"
    both_sizes(a, "citizen-in-call")
    both_sizes(agent, "agent-in-call")

    # A note on the call, then the agent hangs up: the citizen's call ends too.
    agent.fill("#note", "咨询劳动合同纠纷，已告知仲裁时效。")
    agent.click("#btn-note")
    wait_until(lambda: "劳动合同" in agent.inner_text("#notes"), 10, "note saved")
    agent.click("#btn-hangup")
    wait_until(lambda: a.evaluate("window.huiyan.state()") == "ended", 15, "citizen A's call ended")
    assert "通话已结束" in a.inner_text("#status")
    assert a.is_visible("#again") and not a.is_visible("#hangup")
    wait_until(lambda: state_of(agent) == "wrap_up", 15, "agent in wrap-up")
    both_sizes(a, "citizen-ended")

    # Wrap-up done: the second caller is offered at once; this time the citizen hangs up.
    agent.click("#btn-wrapup")
    agent.wait_for_selector("#ringing:not([hidden])", timeout=30000)
    wait_until(lambda: agent.inner_text("#ci-phone") == "13904310002", 15, "second caller's details")
    agent.click("#btn-answer")
    wait_until(lambda: flowing(agent) and flowing(b), 30, "video and audio both ways (B)")
    b.click("#hangup")
    wait_until(lambda: agent.evaluate("window.huiyan.state()") == "ended", 15, "agent's call ended by the citizen")
    wait_until(lambda: not agent.is_visible("#btn-hangup"), 5, "hang-up button gone")
    assert b.evaluate("window.huiyan.state()") == "ended"

    # The hotline's records: both calls answered by this agent, with the numbers the citizens gave.
    def rows() -> dict[str, HotlineCall]:
        with huiyan.ctl.session_factory() as s:
            found = s.query(HotlineCall).filter(HotlineCall.agent_user_id == hotline.agent.user_id).all()
            return {c.caller_number: c for c in found if c.ended_at is not None}

    done = wait_until(lambda: (r := rows()) and {"13904310001", "13904310002"} <= set(r) and r, 15, "call rows")
    assert "已告知仲裁时效" in done["13904310001"].notes
    assert all(c.service_number == "12348" and c.menu_digit == "1" for c in done.values())


def test_citizen_page_explains_what_went_wrong_in_plain_words(pages: Pages, huiyan: Running,
                                                             hotline: Hotline12348) -> None:
    page = pages.open(f"{huiyan.api}/call", viewport=PHONE, name="citizen-errors")
    page.wait_for_selector("#service option", state="attached")
    page.click("#call")
    assert page.inner_text("#form-error") == "请填写您的称呼。"
    page.fill("#name", "赵女士")
    page.fill("#phone", "12")
    page.click("#call")
    assert "联系电话" in page.inner_text("#form-error")
    page.fill("#phone", "13904310009")
    page.click("#call")
    assert "录音录像" in page.inner_text("#form-error")
    both_sizes(page, "citizen-form-error")

    # English: the switch changes every text, and the service list keeps its choice.
    page.select_option("#service", "12348/2")
    page.click("#lang")
    assert page.inner_text("h1") == "12348 Legal Services Video Line"
    assert page.input_value("#service") == "12348/2"
    assert "Legal aid" in page.inner_text("#service")
    page.click("#call")
    assert page.inner_text("#form-error") == "Please read and accept the recording notice first."
    both_sizes(page, "citizen-form-en")
    page.click("#lang")

    # The network: the SIP WebSocket cannot be reached (the ticket points at a closed port).
    def closed_port(route: Any) -> None:
        resp = route.fetch()
        body = resp.json()
        body["sip"]["ws_url"] = re.sub(r":\d+/ws$", ":9/ws", body["sip"]["ws_url"])
        route.fulfill(response=resp, json=body)

    page.route("**/api/public/calls", closed_port)
    pages.expect_error("citizen-errors", "WebSocket connection to 'ws://")
    page.check("#consent")
    page.click("#call")
    wait_until(lambda: "无法连接到服务器" in page.inner_text("#call-error"), 20, "network failure explained")
    assert page.is_visible("#again")
    both_sizes(page, "citizen-network-error")


def test_citizen_page_explains_a_refused_camera(huiyan: Running, hotline: Hotline12348, browser_factory: Any) -> None:
    # A browser without the fake permission prompt: headless Chromium refuses camera and microphone.
    b = browser_factory(fake_ui=False)
    ctx = b.new_context(viewport=PHONE)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{huiyan.api}/call")
    page.wait_for_selector("#service option", state="attached")
    page.fill("#name", "钱先生")
    page.fill("#phone", "13904310010")
    page.check("#consent")
    page.click("#call")
    wait_until(lambda: page.inner_text("#form-error"), 20, "an explanation")
    assert "拒绝了摄像头或麦克风权限" in page.inner_text("#form-error")
    assert page.is_visible("#start") and not page.is_visible("#incall")
    both_sizes(page, "citizen-camera-refused")
    assert errors == []
    ctx.close()
