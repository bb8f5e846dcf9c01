"""The meeting and dispatch console in headless Chromium against the real controller and Asterisk.

Meeting: three staff join one room from their browsers (the console's join button: a WebRTC call to the
room's number as the signed-in user); the chair sees all three live, mutes one from the console (Asterisk
mutes it: ConfbridgeMute, ConfbridgeList, and the console's row), unmutes, locks and unlocks, removes one,
and ends the meeting. Dispatch: the chair clicks a dispatch group's button; the console's roll shows the
answering terminal join and the unregistered one unreachable, then the chair ends the dispatch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huiyan.dispatch.service import DispatchEvent
from tests.e2e.conftest import DESKTOP, PHONE, Pages, wait_until
from tests.e2e.test_hotline_web import both_sizes
from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import free_port
from tests.integration.test_dispatch import _device_ids, _phone, _register
from tests.integration.test_rooms import Rooms

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PASSWORD = "meeting-password-12348"


@pytest.fixture
def rooms(huiyan: Running, tmp_path: Path) -> Iterator[Rooms]:
    r = Rooms(huiyan, tmp_path)
    try:
        yield r
    finally:
        r.close()


def staff(huiyan: Running, *people: tuple[str, str, str]) -> dict[str, dict[str, Any]]:
    """Users (username, display name, role) with browser endpoints."""
    from huiyan.db import store

    out = {}
    with huiyan.ctl.session_factory() as s:
        for username, name, role in people:
            u = store.create_user(s, username=username, password=PASSWORD, role=role, display_name=name)
            s.flush()
            out[username] = {"id": u.id, "extension": u.extension, "name": name}
        s.commit()
    huiyan.call(huiyan.ctl.apply_directory())
    return out


def console(pages: Pages, huiyan: Running, username: str, room_id: int | None, viewport: dict[str, int]) -> Any:
    page = pages.open(f"{huiyan.api}/rooms" + (f"?room={room_id}" if room_id else ""), viewport=viewport,
                      name=f"rooms-{username}")
    page.wait_for_selector("#login-form")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    wait_until(lambda: page.evaluate("window.huiyan.registered()"), 20, f"{username}'s softphone registered")
    return page


def join(page: Any) -> None:
    page.wait_for_selector("#btn-join:not([hidden])")
    page.click("#btn-join")


def test_three_browsers_meet_and_the_chair_mutes_one_in_asterisk_and_on_the_console(
        pages: Pages, huiyan: Running, rooms: Rooms) -> None:
    people = staff(huiyan, ("li.chair", "李主任", "supervisor"), ("zhao.tj", "赵调解员", "mediator"),
                   ("sun.ls", "孙律师", "lawyer"))
    chair, p2, p3 = people["li.chair"], people["zhao.tj"], people["sun.ls"]
    room = rooms.room(name="全省司法行政视频例会", moderator_user_ids=[chair["id"]])

    a = console(pages, huiyan, "li.chair", room["id"], DESKTOP)
    a.wait_for_selector("#room-body:not([hidden])")
    assert a.inner_text("#room-name") == "全省司法行政视频例会"
    wait_until(lambda: a.is_visible("#chair"), 10, "chair controls")
    both_sizes(a, "rooms-idle")
    b = console(pages, huiyan, "zhao.tj", room["id"], PHONE)
    c = console(pages, huiyan, "sun.ls", room["id"], PHONE)
    wait_until(lambda: b.is_visible("#not-chair"), 10, "non-chair notice")
    assert not b.is_visible("#chair")

    joins = {}
    for page, who in ((a, chair), (b, p2), (c, p3)):
        join(page)
        joins[who["extension"]] = rooms.joined(room, f"PJSIP/{who['extension']}-", timeout=30)
        wait_until(lambda page=page: page.evaluate("window.huiyan.joined()") == "established", 15, "joined")
    pid = {ext: e.get("Uniqueid") for ext, e in joins.items()}

    # The chair's console: all three live, the chair marked as me and as moderator.
    rows = "#participants tr[data-participant]"
    wait_until(lambda: a.locator(rows).count() == 3, 15, "three participants on the console")
    mine = a.inner_text(f"#participants tr[data-participant='{pid[chair['extension']]}']")
    assert "李主任" in mine and "我" in mine and "主持人" in mine, mine
    assert a.inner_text("#p-live") == "会议进行中"
    # Each browser hears the meeting (the conference mix).
    for page in (a, b, c):
        wait_until(lambda page=page: page.evaluate("window.huiyan.stats()")["audio"]["packetsReceived"] > 50, 20,
                   "meeting audio received")
    # The chair's browser shows the meeting's video (the talker's stream, follow_talker).
    wait_until(lambda: a.evaluate("window.huiyan.stats()")["video"]["framesDecoded"] > 0, 20, "meeting video decoded")
    both_sizes(a, "rooms-meeting")
    both_sizes(b, "rooms-participant")

    # Mute 赵调解员 from the console: Asterisk mutes that channel, and the console's row says so.
    target = f"#participants tr[data-participant='{pid[p2['extension']]}']"
    a.click(f"{target} button[data-act='mute']")
    rooms.ami("ConfbridgeMute", lambda e: e.get("Uniqueid") == pid[p2["extension"]], timeout=15)
    listed = huiyan.call(huiyan.ctl.ami.action_list("ConfbridgeList", Conference=room["number"]))
    assert {i["Uniqueid"]: i["Muted"] for i in listed} == {
        pid[chair["extension"]]: "No", pid[p2["extension"]]: "Yes", pid[p3["extension"]]: "No"}
    wait_until(lambda: a.get_attribute(target, "data-muted") == "1", 5, "muted on the console")
    assert "已静音" in a.inner_text(target)
    assert all(p["muted"] == (p["id"] == pid[p2["extension"]]) for p in rooms.live(room)["participants"])
    both_sizes(a, "rooms-muted")
    a.click(f"{target} button[data-act='unmute']")
    rooms.ami("ConfbridgeUnmute", lambda e: e.get("Uniqueid") == pid[p2["extension"]], timeout=15)
    wait_until(lambda: a.get_attribute(target, "data-muted") == "0", 5, "unmuted on the console")

    # Lock and unlock: Asterisk's room follows.
    a.click("#btn-lock")
    wait_until(lambda: a.is_visible("#p-locked"), 10, "locked pill")
    listed = huiyan.call(huiyan.ctl.ami.action_list("ConfbridgeListRooms"))
    assert next(x for x in listed if x["Conference"] == room["number"])["Locked"] == "Yes"
    a.click("#btn-unlock")
    wait_until(lambda: not a.is_visible("#p-locked"), 10, "unlocked")

    # Remove 孙律师: their browser's call ends; then end the meeting: everyone's does.
    a.click(f"#participants tr[data-participant='{pid[p3['extension']]}'] button[data-act='kick']")
    rooms.ami("ConfbridgeLeave", lambda e: e.get("Uniqueid") == pid[p3["extension"]], timeout=15)
    wait_until(lambda: c.evaluate("window.huiyan.joined()") == "ended", 15, "removed participant's call ended")
    wait_until(lambda: a.locator(rows).count() == 2, 10, "two left on the console")
    a.click("#btn-end")
    rooms.room_event(room, "ended", timeout=20)
    for page in (a, b):
        wait_until(lambda page=page: page.evaluate("window.huiyan.joined()") == "ended", 15, "meeting over")
    wait_until(lambda: a.inner_text("#p-live") == "未开始", 10, "the console shows the meeting over")
    a.click("#lang")
    assert a.inner_text("h1") == "huiyan · Meetings & dispatch"
    both_sizes(a, "rooms-en")
    a.click("#lang")


def test_one_click_dispatch_from_the_console_shows_the_live_roll(pages: Pages, huiyan: Running,
                                                                 rooms: Rooms) -> None:
    staff(huiyan, ("zhou.cmd", "周指挥", "supervisor"))
    answering, offline = rooms.terminals(2)
    port = free_port()
    _register(rooms, answering, port)
    _phone(rooms, callflows.agent(rooms.tmp / "terminal-answers.xml", answer_after_ms=300), port)
    ids = _device_ids(huiyan, [answering, offline])
    name = f"长白山应急调度组{time.monotonic_ns() % 10000}"
    r = rooms.api("post", "/api/dispatch/groups", json={"name": name, "kind": "custom", "device_ids": ids})
    assert r.status_code == 201, r.text
    group = r.json()

    page = console(pages, huiyan, "zhou.cmd", None, DESKTOP)
    button = f"#groups button[data-group='{group['id']}']"
    page.wait_for_selector(button)
    assert name in page.inner_text(button)
    seen = {id(e) for e in huiyan.find_events(lambda e: True)}
    page.click(button)
    started = huiyan.wait_event(lambda e: id(e) not in seen and isinstance(e, DispatchEvent) and e.kind == "started"
                                and e.data.get("name", "").startswith(name), timeout=20)
    roll = f"#dispatches .roll[data-dispatch='{started.dispatch_id}']"
    page.wait_for_selector(roll, timeout=10000)

    def leg_status(ext: str) -> str:
        return page.get_attribute(f"{roll} tr[data-target='{ext}']", "data-status") or ""

    wait_until(lambda: leg_status(answering.extension) == "joined", 40, "the answering terminal joined")
    wait_until(lambda: leg_status(offline.extension) == "unreachable", 40, "the offline terminal unreachable")
    assert "已入会" in page.inner_text(roll) and "不在线" in page.inner_text(roll)
    # The console opened the dispatch room: the commander sees the terminal in it.
    wait_until(lambda: page.locator("#participants tr[data-participant]").count() == 1, 15, "terminal in the room")
    view = rooms.api("get", f"/api/dispatch/{started.dispatch_id}").json()
    assert page.inner_text("#room-number") == view["room_number"]
    both_sizes(page, "rooms-dispatch")
    page.click(f"{roll} button[data-act='end-dispatch']")
    huiyan.wait_event(lambda e: isinstance(e, DispatchEvent) and e.kind == "ended"
                      and e.dispatch_id == started.dispatch_id, timeout=20)
    wait_until(lambda: page.get_attribute(roll, "data-status") == "ended", 10, "dispatch ended on the console")
    rooms.room_event({"number": view["room_number"]}, "ended", timeout=20)
