"""The supervisor wall in headless Chromium against the real controller and Asterisk: a citizen's browser call
waits in 12348's queue and the wall shows it (with its wait time) within 2 s of the distributor's event; the
agent's state changes show within 2 s too; when the agent (on the agent console) has the call, the wall's
barge button rings the wall's own softphone, which answers by itself, and Asterisk runs ChanSpy in barge
mode on the agent's channel."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from huiyan.hotline.service import HotlineEvent
from huiyan.pbx.events import AmiEvent
from tests.e2e.conftest import DESKTOP, Hotline12348, Pages, wait_until
from tests.e2e.test_hotline_web import agent_console, both_sizes, citizen_calls, flowing, state_of
from tests.integration.conftest import Running

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SUPERVISOR_PASSWORD = "supervisor-password-12348"


def supervisor(huiyan: Running) -> tuple[str, str]:
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        u = store.create_user(s, username="wang.banzhang", password=SUPERVISOR_PASSWORD, role="supervisor",
                              display_name="王班长")
        s.commit()
        out = (u.username, u.extension)
    huiyan.call(huiyan.ctl.apply_directory())  # the supervisor's endpoint, for the wall's softphone
    return out


def token(huiyan: Running, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{huiyan.api}/api/auth/login", json={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def after(huiyan: Running) -> Any:
    """A filter for events published from now on (the package's controller keeps every earlier test's)."""
    seen = {id(e) for e in huiyan.find_events(lambda e: True)}
    return lambda e: id(e) not in seen


def shown_within(page: Any, selector: str, attr: str, event: Any, seconds: float = 2.0) -> float:
    """How long after the bus event the wall showed it (the page stamps the moment it drew the row)."""
    stamp = page.get_attribute(selector, attr)
    assert stamp, f"{selector} has no {attr}"
    delay = int(stamp) / 1000 - event.at
    assert delay < seconds, f"{selector} shown {delay:.2f}s after the event"
    return delay


def test_wall_shows_the_waiting_call_and_agent_states_live_and_barges_into_the_call(
        pages: Pages, huiyan: Running, hotline: Hotline12348) -> None:
    username, sup_ext = supervisor(huiyan)
    agent_id = str(hotline.agent.user_id)

    # The agent signs in on the console and is paused (whatever an earlier test left).
    agent = agent_console(pages, huiyan, hotline)
    auth = token(huiyan, hotline.agent.username, hotline.agent.password)
    httpx.post(f"{huiyan.api}/api/agents/{agent_id}/logout", headers=auth)
    r = httpx.post(f"{huiyan.api}/api/agents/{agent_id}/login", json={}, headers=auth)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{huiyan.api}/api/agents/{agent_id}/pause", json={"reason": "会议"}, headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "paused", r.text
    wait_until(lambda: state_of(agent) == "paused", 15, "agent console paused")

    # An agent is told the wall is for supervisors (and the page asks the API for nothing it would refuse).
    denied = pages.open(f"{huiyan.api}/wall", viewport=DESKTOP, name="wall-agent")
    denied.wait_for_selector("#login-form")
    denied.fill("#username", hotline.agent.username)
    denied.fill("#password", hotline.agent.password)
    denied.click("#login-form button[type=submit]")
    wait_until(lambda: "班长或管理员" in denied.inner_text("#board-error"), 10, "the role explained")
    assert denied.locator("#agents tr").count() == 0

    # The wall, signed in as the supervisor: its softphone registers as the supervisor's extension.
    wall = pages.open(f"{huiyan.api}/wall", viewport=DESKTOP, name="wall")
    wall.wait_for_selector("#login-form")
    both_sizes(wall, "wall-login")
    wall.fill("#username", username)
    wall.fill("#password", SUPERVISOR_PASSWORD)
    wall.click("#login-form button[type=submit]")
    wait_until(lambda: wall.evaluate("window.huiyan.registered()"), 20, "wall softphone registered")
    assert wall.inner_text("#who").endswith(sup_ext)
    row = f"#agents tr[data-agent='{agent_id}']"
    wait_until(lambda: wall.get_attribute(row, "data-state") == "paused", 10, "the agent shown paused")
    assert "会议" in wall.inner_text(row) and "张坐席" in wall.inner_text(row)
    wait_until(lambda: wall.get_attribute("#live", "data-on") == "1", 10, "the wall's event stream")

    # A citizen calls: the waiting call is on the wall (within 2 s), with its caller and a ticking wait.
    new = after(huiyan)
    citizen = citizen_calls(pages, huiyan, "陈女士", "13904310041", "citizen-wall")
    queued = huiyan.wait_event(lambda e: new(e) and isinstance(e, HotlineEvent) and e.kind == "CallQueued"
                               and e.data.get("queue_id") == str(hotline.queue_id), timeout=30)
    call_id = queued.data["call_id"]
    waiting = f"#waiting tr[data-call='{call_id}']"
    wall.wait_for_selector(waiting, timeout=5000)
    shown_within(wall, waiting, "data-shown-at", queued)
    wait_until(lambda: "13904310041" in wall.inner_text(waiting), 10, "the caller's number")
    cells = wall.inner_text(waiting).split("\t")
    assert cells[0] == "1" and cells[2] == "法律咨询", cells
    wait_until(lambda: re.fullmatch(r"00:0[1-9]|00:[1-5][0-9]", wall.inner_text(f"{waiting} td.tick")), 10, "wait time")
    q_row = f"#queues tr[data-queue='{hotline.queue_id}']"
    wait_until(lambda: wall.inner_text(q_row).split("\t")[1] == "1", 10, "one waiting in the queue table")
    assert wall.locator("#sl-chart polyline, #sl-chart line.target").count() >= 1
    both_sizes(wall, "wall-waiting")

    # The agent becomes available: offered the call at once; the wall shows each change within 2 s.
    agent.click("#btn-available")
    offered = huiyan.wait_event(lambda e: new(e) and isinstance(e, HotlineEvent) and e.kind == "AgentStateChanged"
                                and e.data.get("agent_id") == agent_id and e.data.get("new") == "offered", timeout=20)
    wait_until(lambda: wall.get_attribute(row, "data-state") in ("offered", "on_call"), 5, "agent ringing on the wall")
    if wall.get_attribute(row, "data-state") == "offered":
        shown_within(wall, row, "data-changed-at", offered)
    agent.wait_for_selector("#ringing:not([hidden])", timeout=30000)
    agent.click("#btn-answer")
    on_call = huiyan.wait_event(lambda e: new(e) and isinstance(e, HotlineEvent) and e.kind == "AgentStateChanged"
                                and e.data.get("agent_id") == agent_id and e.data.get("new") == "on_call", timeout=30)
    wait_until(lambda: wall.get_attribute(row, "data-state") == "on_call", 5, "agent on call on the wall")
    shown_within(wall, row, "data-changed-at", on_call)
    wait_until(lambda: flowing(agent) and flowing(citizen), 30, "the call's media both ways")
    live = f"#calls tr[data-call='{call_id}']"
    wall.wait_for_selector(live, timeout=10000)
    assert wall.query_selector(waiting) is None
    assert "张坐席" in wall.inner_text(live)

    # Barge: the spy API rings the wall's softphone, which answers; Asterisk runs ChanSpy with B.
    wall.click(f"{live} button[data-spy='barge']")
    start = huiyan.wait_event(lambda e: new(e) and isinstance(e, AmiEvent) and e.name == "ChanSpyStart"
                              and e.get("SpyerChannel").startswith(f"PJSIP/{sup_ext}-"), timeout=30)
    assert start.get("SpyeeChannel").startswith(f"PJSIP/{hotline.agent.extension}-"), start.fields
    channels = huiyan.call(huiyan.ctl.ami.action_list("CoreShowChannels"))
    spyer = next(c for c in channels if c.get("Channel") == start.get("SpyerChannel"))
    assert spyer.get("Application") == "ChanSpy", spyer
    spyee, options = spyer.get("ApplicationData").split(",")
    assert spyee == start.get("SpyeeChannel") and "B" in options and "q" in options, spyer
    wait_until(lambda: wall.evaluate("window.huiyan.spy()")["state"] == "established", 15, "spy call answered")
    assert wall.get_attribute("#spy-mode", "data-mode") == "barge" and wall.is_visible("#spy")
    assert "张坐席" in wall.inner_text("#spy-who")
    both_sizes(wall, "wall-barge")

    # Back to listening without redialling (the wall learnt its spy channel from ChanSpyStart).
    wait_until(lambda: wall.evaluate("window.huiyan.spy()")["channel"] == start.get("SpyerChannel"), 10,
               "spy channel known to the wall")
    wall.click("#spy [data-spy-switch='listen']")
    wait_until(lambda: wall.get_attribute("#spy-mode", "data-mode") == "listen", 10, "listening")
    assert not wall.is_visible("#board-error")

    # The supervisor stops; the agent hangs up; the call leaves the wall.
    wall.click("#spy-hangup")
    huiyan.wait_event(lambda e: isinstance(e, AmiEvent) and e.name == "ChanSpyStop"
                      and e.get("SpyerChannel") == start.get("SpyerChannel"), timeout=15)
    wait_until(lambda: not wall.is_visible("#spy"), 10, "spy bar gone")
    agent.click("#btn-hangup")
    wait_until(lambda: wall.query_selector(live) is None, 15, "the call off the wall")
    wait_until(lambda: wall.get_attribute(row, "data-state") == "wrap_up", 15, "agent in wrap-up on the wall")
    wait_until(lambda: citizen.evaluate("window.huiyan.state()") == "ended", 15, "citizen's call ended")
    wall.click("#lang")
    assert wall.inner_text("h1") == "huiyan · Supervisor wall"
    both_sizes(wall, "wall-en")
    wall.click("#lang")
    r = httpx.post(f"{huiyan.api}/api/agents/{agent_id}/wrapup-done", headers=auth)
    assert r.status_code == 200, r.text
