"""Dispatch end to end against a real Asterisk: one click calls a group of ten SIPp terminals into an
emergency room. Eight are registered and answer (one SIPp shared by their registrations, to keep CPU
modest), one was never registered (unreachable, retried), one declines with 603. The commander drops a
leg and adds a party, then ends everything with one call."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import SCENARIOS, Sipp, free_port
from tests.integration.test_rooms import Rooms, Terminal, _ok, _received, recorded_seconds, rooms  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

RETRIES = 2

DECLINE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="terminal that declines">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 603 Decline
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def _register(rooms: Rooms, t: Terminal, port: int) -> None:
    """Register `t` with its contact at 127.0.0.1:`port` (several terminals may share one SIPp there).
    Ten minutes, not register.xml's two: the whole test must run within one registration."""
    path = rooms.tmp / "register-600.xml"
    if not path.exists():
        path.write_text((SCENARIOS / "register.xml").read_text().replace("Expires: 120", "Expires: 600"))
    _ok(Sipp(str(path), rooms.h.sip_target, service=t.extension, workdir=rooms.tmp, user=t.extension,
             password=t.password, port=port, timeout=10).run())


def _phone(rooms: Rooms, scenario: Path, port: int) -> Sipp:
    """A SIPp answering every call sent to `port` (whichever registered terminal it is for), logging them."""
    sipp = Sipp(str(scenario), rooms.h.sip_target, service="terminals", workdir=rooms.tmp, port=port, timeout=240,
                max_calls=None, timeout_error=False,
                extra=("-aa", "-trace_msg", "-message_file", str(rooms.tmp / f"msgs-{port}.log")))
    rooms.running.append(sipp.start())
    time.sleep(0.3)
    return sipp


def _invites(rooms: Rooms, port: int) -> list[str]:
    log = rooms.tmp / f"msgs-{port}.log"
    return [m for m in _received(log.read_text(errors="replace") if log.exists() else "") if m.startswith("INVITE ")]


def _device_ids(h: Running, terminals: list[Terminal]) -> list[int]:
    from sqlalchemy import select

    from huiyan.db.models import Device

    with h.ctl.session_factory() as s:
        ids = dict(s.execute(select(Device.extension, Device.id).where(
            Device.extension.in_([t.extension for t in terminals]))).all())
    return [ids[t.extension] for t in terminals]


class Watch:
    """The event WebSocket, as a console would watch it: every DispatchEvent frame until the dispatch ends."""

    def __init__(self, h: Running, token: str) -> None:
        self.url = f"ws://{h.settings.api_host}:{h.settings.api_port}/api/events?token={token}"
        self.frames: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the event WebSocket did not connect"

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.url) as ws:
            self.connected.set()
            deadline = time.monotonic() + 200
            while time.monotonic() < deadline:
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                except asyncio.TimeoutError:
                    continue
                if msg.get("type") == "DispatchEvent":
                    self.frames.append(msg)
                    if msg["kind"] == "ended":
                        return

    def statuses(self, leg_id: int) -> list[str]:
        out: list[str] = []
        for f in self.frames:
            if f["kind"] == "leg" and f["data"]["id"] == leg_id and (not out or out[-1] != f["data"]["status"]):
                out.append(f["data"]["status"])
        return out


@pytest.fixture
def ten(rooms: Rooms) -> Iterator[dict[str, Any]]:
    """Eleven terminals: eight answering and a spare (registered to one shared SIPp), one never registered,
    one that declines."""
    terms = rooms.terminals(11)
    answering, unreachable, decliner, spare = terms[:8], terms[8], terms[9], terms[10]
    shared = free_port()
    for t in [*answering, spare]:
        _register(rooms, t, shared)
    _phone(rooms, callflows.agent(rooms.tmp / "terminal-answers.xml", answer_after_ms=300), shared)
    declining = free_port()
    _register(rooms, decliner, declining)
    decline_xml = rooms.tmp / "terminal-declines.xml"
    decline_xml.write_text(DECLINE)
    _phone(rooms, decline_xml, declining)
    yield {"answering": answering, "unreachable": unreachable, "decliner": decliner, "spare": spare,
           "shared": shared, "declining": declining}


def test_one_click_dispatch_to_ten_terminals(rooms: Rooms, ten: dict[str, Any], huiyan: Running) -> None:
    from huiyan.pbx.events import AmiEvent

    answering: list[Terminal] = ten["answering"]
    unreachable: Terminal = ten["unreachable"]
    decliner: Terminal = ten["decliner"]
    spare: Terminal = ten["spare"]
    group_terms = [*answering, unreachable, decliner]
    ids = _device_ids(huiyan, [*group_terms, spare])
    by_ext = {t.extension: i for t, i in zip([*group_terms, spare], ids, strict=True)}

    # a custom group of the ten, and whom it resolves to
    r = rooms.api("post", "/api/dispatch/groups", json={"name": f"调度测试组{time.monotonic_ns()}", "kind": "custom",
                                                         "device_ids": ids[:10]})
    assert r.status_code == 201, r.text
    group = r.json()
    r = rooms.api("get", f"/api/dispatch/groups/{group['id']}/terminals")
    assert [x["extension"] for x in r.json()] == [t.extension for t in group_terms], r.text
    assert all(x["auto_answer"] for x in r.json())

    watch = Watch(huiyan, rooms.auth["Authorization"].split()[1])

    # one click
    r = rooms.api("post", f"/api/dispatch/groups/{group['id']}/dispatch",
                  json={"retries": RETRIES, "retry_interval_s": 1, "ring_seconds": 20})
    assert r.status_code == 201, r.text
    d = r.json()
    did, number = d["id"], d["room_number"]
    room = {"id": d["room_id"], "number": number}
    assert d["status"] == "active" and len(d["legs"]) == 10 and d["retries"] == RETRIES
    leg_of = {leg["target"]: leg["id"] for leg in d["legs"]}

    # the room: an emergency room, recorded, the commander its moderator
    info = rooms.api("get", f"/api/rooms/{room['id']}").json()
    assert info["kind"] == "dispatch" and info["record"] and info["active"], info
    me = rooms.api("get", "/api/me").json()
    assert info["moderator_user_ids"] == [me["id"]], (info, me)

    # eight answer and join the room
    joins = {t.extension: rooms.joined(room, f"PJSIP/{t.extension}-", timeout=40) for t in answering}
    assert {j.get("Uniqueid") for j in joins.values()} == {
        leg["channel_id"] for leg in rooms.api("get", f"/api/dispatch/{did}").json()["legs"]
        if leg["target"] in joins}
    rooms.ami("ConfbridgeRecord", lambda e: e.get("Conference") == number, timeout=20)

    # every status right once the unreachable one has used up its retries
    def settled() -> dict[str, Any] | None:
        v = rooms.api("get", f"/api/dispatch/{did}").json()
        by = {leg["target"]: leg for leg in v["legs"]}
        done = by[unreachable.extension]["final"] and by[decliner.extension]["final"] and all(
            by[t.extension]["status"] == "joined" for t in answering)
        return v if done else None

    view = rooms.wait_for(settled, timeout=45)
    assert view["counts"] == {"declined": 1, "joined": 8, "unreachable": 1}, view["counts"]
    by = {leg["target"]: leg for leg in view["legs"]}
    gone = by[unreachable.extension]
    assert (gone["status"], gone["retries"], gone["attempts"]) == ("unreachable", RETRIES, RETRIES + 1), gone
    no = by[decliner.extension]
    assert (no["status"], no["retries"], no["attempts"]) == ("declined", 0, 1), no
    assert all(by[t.extension]["answered_at"] and by[t.extension]["joined_at"] for t in answering)
    assert view["room"]["live"] and view["room"]["participants"] == 8 and view["room"]["recording"]

    # Asterisk saw an Originate for the unreachable one N+1 times, for the one who declined once
    def originated(t: Terminal) -> list[Any]:
        return huiyan.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "OriginateResponse"
                                  and e.get("Channel").startswith(f"PJSIP/{t.extension}"))

    assert len(originated(unreachable)) == RETRIES + 1
    assert [e.get("Response") for e in originated(decliner)] == ["Failure"]
    assert huiyan.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "Hangup"
                              and e.get("Uniqueid") == no["channel_id"] and e.get("Cause") == "21")

    # the terminals were asked to answer by themselves
    invites = _invites(rooms, ten["shared"])
    assert len(invites) == 8
    for m in [*invites, *_invites(rooms, ten["declining"])]:
        assert re.search(r"^Call-Info: <sip:[^>]+>;answer-after=0$", m, re.M), m[:1500]

    # the commander drops one: its call ends and it leaves the room
    first = answering[0]
    r = rooms.api("delete", f"/api/dispatch/{did}/legs/{leg_of[first.extension]}")
    assert r.status_code == 200 and r.json()["status"] == "dropped", r.text
    rooms.ami("ConfbridgeLeave", lambda e: e.get("Uniqueid") == joins[first.extension].get("Uniqueid"))
    assert rooms.api("delete", f"/api/dispatch/{did}/legs/{leg_of[first.extension]}").status_code == 409

    # ... and adds one: it is called (auto-answer too, being a terminal) and joins
    r = rooms.api("post", f"/api/dispatch/{did}/legs", json={"device_id": by_ext[spare.extension]})
    assert r.status_code == 202, r.text
    added = r.json()
    # the answer comes while it is being dialled: its status is whatever the PBX has reported by then
    assert added["kind"] == "device" and added["auto_answer"] and added["attempts"] == 1
    assert added["status"] in ("calling", "ringing", "answered"), added
    join = rooms.joined(room, f"PJSIP/{spare.extension}-", timeout=30)
    rooms.wait_for(lambda: next(x for x in rooms.api("get", f"/api/dispatch/{did}").json()["legs"]
                                if x["id"] == added["id"])["status"] == "joined", timeout=15)
    assert join.get("Uniqueid") == next(x for x in rooms.api("get", f"/api/dispatch/{did}").json()["legs"]
                                        if x["id"] == added["id"])["channel_id"]
    r = rooms.api("post", f"/api/dispatch/{did}/legs", json={"device_id": by_ext[spare.extension]})
    assert r.status_code == 409 and "already" in r.json()["detail"], r.text
    assert len(_invites(rooms, ten["shared"])) == 9

    # end everything with one call: every leg hung up, the room ended and closed, the recording kept
    present = [*answering[1:], spare]
    r = rooms.api("post", f"/api/dispatch/{did}/end")
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "ended" and ended["ended_at"]
    assert ended["counts"] == {"declined": 1, "dropped": 1, "left": 8, "unreachable": 1}, ended["counts"]
    assert all(leg["final"] for leg in ended["legs"])
    for t in present:
        rooms.ami("ConfbridgeLeave", lambda e, t=t: e.get("Conference") == number
                  and e.get("Channel").startswith(f"PJSIP/{t.extension}-"), timeout=20)
    rooms.ami("ConfbridgeEnd", lambda e: e.get("Conference") == number, timeout=20)
    rooms.wait_for(lambda: not huiyan.ctl.rooms.state(number).live, timeout=10)
    assert rooms.api("get", f"/api/rooms/{room['id']}").json()["active"] is False
    r = rooms.api("post", f"/api/dispatch/{did}/end")
    assert r.status_code == 409 and "already ended" in r.json()["detail"], r.text

    view = rooms.wait_for(lambda: (v := rooms.api("get", f"/api/dispatch/{did}").json())["recordings"]
                          and v["recordings"][0]["ended_at"] and v, timeout=15)
    path = Path(view["recordings"][0]["path"])
    assert "/dispatch/" in str(path) and recorded_seconds(path) > 0

    # the state that matters is in the database: a restarted controller would show the same
    from huiyan.dispatch.store import DbDispatchStore
    from huiyan.db.numbering import ExtensionPlan

    db = DbDispatchStore(huiyan.ctl.session_factory, room_plan=ExtensionPlan.from_pattern("_6XXX"),
                         internal=ExtensionPlan.from_pattern("_8XXXX"))
    stored = rooms.wait_for(lambda: (s := db.load(did)).counts() == ended["counts"] and s, timeout=10)
    assert stored.status.value == "ended"
    assert {leg.id: (leg.status.value, leg.attempts) for leg in stored.legs.values()} == {
        leg["id"]: (leg["status"], leg["attempts"]) for leg in ended["legs"]}

    # the same story, live on the event WebSocket
    watch.thread.join(20)
    assert [f["kind"] for f in watch.frames][:1] == ["started"] and watch.frames[-1]["kind"] == "ended"
    for t in answering[1:]:
        assert watch.statuses(leg_of[t.extension]) == ["calling", "ringing", "answered", "joined", "left"]
    assert watch.statuses(leg_of[first.extension]) == ["calling", "ringing", "answered", "joined", "dropped"]
    assert watch.statuses(leg_of[decliner.extension]) == ["calling", "declined"]
    assert watch.statuses(leg_of[unreachable.extension]) == ["calling", "unreachable"] * (RETRIES + 1)



def test_dispatch_api_refuses_what_it_cannot_do(rooms: Rooms, huiyan: Running) -> None:
    """Unknown groups, dispatches and legs are 404s with a reason; a group without terminals is a 409."""
    for method, path, body in [
        ("post", "/api/dispatch/groups/987654/dispatch", None),
        ("get", "/api/dispatch/987654", None),
        ("post", "/api/dispatch/987654/end", None),
        ("post", "/api/dispatch/987654/legs", {"target": "80001"}),
        ("delete", "/api/dispatch/987654/legs/1", None),
    ]:
        r = rooms.api(method, path, **({"json": body} if body is not None else {}))
        assert r.status_code == 404 and r.json()["detail"], (path, r.text)
    (t,) = rooms.terminals(1)
    (device_id,) = _device_ids(huiyan, [t])
    r = rooms.api("post", "/api/dispatch/groups", json={"name": f"空组{time.monotonic_ns()}", "kind": "custom",
                                                         "device_ids": [device_id]})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert rooms.api("patch", f"/api/devices/{device_id}", json={"active": False}).status_code == 200
    r = rooms.api("post", f"/api/dispatch/groups/{gid}/dispatch", json={})
    assert r.status_code == 409 and "no active terminal" in r.json()["detail"], r.text
    r = httpx.post(f"{huiyan.api}/api/dispatch/groups/{gid}/dispatch")
    assert r.status_code == 401
