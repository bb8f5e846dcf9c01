"""H.323 interop end to end: a second Asterisk plays a legacy H.323 room system (legacy_h323.py) and talks
to huiyan's Asterisk through chan_ooh323 in both directions: it calls a room number and joins the
meeting, huiyan's dial-out invitation reaches it and brings it in, and what huiyan cannot do is refused.

huiyan runs here with H.323 enabled (its own controller and Asterisk for this module, the legacy system
configured as its peer `legacyroom`), so the session's shared Asterisk is left as it is."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from huiyan.config.settings import H323Peer, H323Settings, Settings
from tests.integration.conftest import REPO, Running
from tests.integration.legacy_h323 import LegacyH323
from tests.integration.sipp import free_port
from tests.integration.test_rooms import Rooms

pytestmark = pytest.mark.integration
PEER = "legacyroom"  # the legacy system's name in huiyan's h323.peers: its channels are OOH323/legacyroom-N


class H323World:
    def __init__(self, huiyan: Running, legacy: LegacyH323) -> None:
        self.huiyan = huiyan
        self.legacy = legacy


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[H323World]:
    from huiyan.pbx.install import main_progress
    from huiyan.setup import run_setup

    root = Path(os.environ.get("HUIYAN_ASTERISK_ROOT", REPO / "var" / "asterisk-root"))
    huiyan_port, legacy_port = free_port(), free_port()
    legacy = LegacyH323(tmp_path_factory.mktemp("legacy-h323"), root, huiyan_port=huiyan_port, port=legacy_port)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("huiyan-h323"), asterisk_root=root, sip_port=free_port(),
        http_port=free_port(), ami_port=free_port(), agi_port=free_port(), api_port=free_port(),
        rtp_start=free_port() // 2 * 2, database_url=None, ami_all_events=True,
        h323=H323Settings(enabled=True, port=huiyan_port, e164="6000",
                          peers=[H323Peer(name=PEER, host="127.0.0.1", port=legacy_port)]),
    )
    settings = settings.model_copy(update={"rtp_end": settings.rtp_start + 400})
    run_setup(settings, main_progress, host_packages=False)
    running = Running(settings)
    legacy.start()
    try:
        running.start()
        yield H323World(running, legacy)
    finally:
        try:
            running.stop()
        finally:
            legacy.stop()


@pytest.fixture
def rooms(world: H323World, tmp_path: Path) -> Iterator[Rooms]:
    r = Rooms(world.huiyan, tmp_path)
    try:
        yield r
    finally:
        r.close()
        world.legacy.hangup_all()


def _errors_after(world: H323World, marks: tuple[int, int]) -> list[str]:
    """ERROR lines both Asterisks logged since `marks` (from `_marks`)."""
    return world.huiyan.ctl.pbx.errors_in_log()[marks[0]:] + world.legacy.errors()[marks[1]:]


def _marks(world: H323World) -> tuple[int, int]:
    return len(world.huiyan.ctl.pbx.errors_in_log()), len(world.legacy.errors())


def _media_flows_both_ways(h: Running, since: float, timeout: float = 30) -> None:
    """Audio went both ways on an H.323 call that joined at `since` (the only call on this node then).

    chan_ooh323 does not tie its RTP session to the channel, so the RTCP events carry no channel name;
    two sender reports huiyan sent on one RTP session tell it all: its own packet count grows (it sends),
    and so does the highest sequence number it received from the room system, which only echoes what
    reaches it (Echo writes back the frames it reads)."""
    from huiyan.pbx.events import AmiEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = h.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "RTCPSent"
                                and h.arrived.get(id(e), 0) >= since and e.get("ReportCount", "0") != "0")
        sessions: dict[str, list[Any]] = {}
        for e in reports:
            sessions.setdefault(e.get("From"), []).append(e)
        for evs in sessions.values():
            first, last = evs[0], evs[-1]
            if (int(last.get("SentPackets")) > int(first.get("SentPackets"))
                    and int(last.get("Report0HighestSequence")) > int(first.get("Report0HighestSequence"))):
                return
        time.sleep(0.5)
    raise AssertionError(f"no RTCP reports showing audio both ways within {timeout}s")


# ---- start -------------------------------------------------------------------------------------------


def test_chan_ooh323_starts_clean_on_both_sides(world: H323World) -> None:
    h = world.huiyan
    assert h.errors_at_start == [], h.errors_at_start  # huiyan's Asterisk with chan_ooh323 loaded
    assert "chan_ooh323.so" in h.ctl.pbx.rx("module show like chan_ooh323")
    config = h.ctl.pbx.rx("ooh323 show config")
    assert f"127.0.0.1:{h.settings.h323.port}" in config and "h245alphanumeric" in config
    assert "(ulaw|alaw)" in config  # never h263: it breaks every call (see huiyan/rooms/h323.py)
    peers = h.ctl.pbx.rx("ooh323 show peers")
    assert PEER in peers and f"127.0.0.1:{world.legacy.port}" in peers
    assert world.legacy.errors() == []


# ---- dial-in -----------------------------------------------------------------------------------------


def test_legacy_h323_room_calls_a_room_number_and_joins(world: H323World, rooms: Rooms) -> None:
    marks = _marks(world)
    room = rooms.room()
    world.legacy.call(room["number"])
    join = rooms.joined(room, f"OOH323/{PEER}-", timeout=30)
    assert join.get("CallerIDNum") == world.legacy.e164  # the legacy system's E.164 alias
    # it went through the room route like any trunk caller, with its own caller class
    rooms.ami("VarSet", lambda e: e.get("Channel") == join.get("Channel") and e.get("Value") == "h323"
              and e.get("Variable", "").endswith("HUIYAN_CLASS"), timeout=5)
    live = rooms.live(room)
    [p] = [p for p in live["participants"] if p["channel"] == join.get("Channel")]
    # audio only: it sends no video and receives none, whatever the room's video mode
    assert p["video"] == {"sends": False, "receives": "none", "presenter": False}
    # and it cannot be made presenter (everyone would watch nothing)
    r = rooms.api("put", f"/api/rooms/{room['id']}/presenter", json={"participant": p["id"]})
    assert r.status_code == 409 and "sends no video" in r.text
    # audio flows both ways (what the room system hears, it echoes back)
    _media_flows_both_ways(world.huiyan, world.huiyan.arrived[id(join)])
    # the legacy side sees its call connected
    world.legacy.wait_channel(lambda c: c.channel.startswith("OOH323/huiyan-") and c.state == "Up")
    # hanging up on the legacy side leaves the room
    world.legacy.hangup_all()
    rooms.ami("ConfbridgeLeave", lambda e: e.get("Channel") == join.get("Channel"))
    assert _errors_after(world, marks) == []


def test_legacy_h323_room_keys_the_room_pin(world: H323World, rooms: Rooms) -> None:
    """DTMF from an H.323 room system (H.245 user input) reaches the PIN prompt."""
    room = rooms.room(pin="2468")
    world.legacy.call(room["number"], pin="2468")
    rooms.joined(room, f"OOH323/{PEER}-", timeout=40)


def test_h323_calls_to_anything_but_a_room_are_refused(world: H323World, rooms: Rooms) -> None:
    from huiyan.pbx.events import AmiEvent

    h = world.huiyan
    world.legacy.call("12348")  # the hotline: not for H.323 room systems
    # "unavailable", then released as an unallocated number; never the room route
    ev = rooms.ami("Newexten", lambda e: e.get("Context") == "from-h323" and e.get("Exten") == "12348"
                   and e.get("Application") == "Playback" and "/unavailable" in e.get("AppData", ""), timeout=20)
    channel = ev.get("Channel")
    assert channel.startswith(f"OOH323/{PEER}-")
    hangup = rooms.ami("Hangup", lambda e: e.get("Channel") == channel, timeout=20)
    assert hangup.get("Cause") == "1"  # unallocated number
    assert not h.find_events(lambda e: isinstance(e, AmiEvent) and e.get("Channel") == channel
                             and e.name in ("AGIExecStart", "ConfbridgeJoin"))
    ran = [e.get("Application") for e in h.find_events(lambda e: isinstance(e, AmiEvent) and e.name == "Newexten"
                                                        and e.get("Channel") == channel)]
    assert ran == ["NoOp", "Progress", "Playback", "Hangup"], ran  # once, and nothing again at hang-up


# ---- dial-out ----------------------------------------------------------------------------------------


def test_dial_out_invitation_reaches_the_legacy_h323_room_and_it_joins(world: H323World, rooms: Rooms) -> None:
    marks = _marks(world)
    room = rooms.room()
    target = f"h323:127.0.0.1:{world.legacy.port}"
    r = rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": target})
    assert r.status_code == 202, r.text
    inv = r.json()
    assert inv["dial"] == f"OOH323/{PEER}"
    # the room system sees huiyan's call arrive and answers it
    incoming = world.legacy.wait_channel(lambda c: c.context == "from-huiyan" and c.state == "Up", timeout=30)
    assert incoming.channel.startswith("OOH323/huiyan-")
    join = rooms.joined(room, f"OOH323/{PEER}-", timeout=30)
    assert join.get("Uniqueid") == inv["id"]
    rooms.room_event(room, "invitation", lambda e: e.data["id"] == inv["id"] and e.data["status"] == "joined")
    live = rooms.live(room)
    [p] = [p for p in live["participants"] if p["id"] == inv["id"]]
    assert p["invited"] is True and p["video"]["sends"] is False
    _media_flows_both_ways(world.huiyan, world.huiyan.arrived[id(join)])
    # chan_ooh323 logs translation-path ERRORs when asked for video formats: huiyan asks for audio only
    assert _errors_after(world, marks) == []


def test_dial_out_to_an_alias_at_the_room_system(world: H323World, rooms: Rooms) -> None:
    """h323:<alias>@<ip>:<port> calls that alias there (an MCU's conference number)."""
    room = rooms.room()
    r = rooms.api("post", f"/api/rooms/{room['id']}/invitations",
                  json={"target": f"h323:7788@127.0.0.1:{world.legacy.port}"})
    assert r.status_code == 202, r.text
    incoming = world.legacy.wait_channel(lambda c: c.context == "from-huiyan" and c.exten == "7788", timeout=30)
    assert incoming.channel.startswith("OOH323/huiyan-")
    rooms.joined(room, f"OOH323/{PEER}-", timeout=30)


def test_a_room_system_added_to_the_settings_is_live_after_a_render(world: H323World, rooms: Rooms) -> None:
    """New peers reach the running Asterisk by reload (`huiyan render` or the controller's re-render), no
    restart: chan_ooh323 knows it, and an invitation to it is dialled (and, nobody being there, fails)."""
    h = world.huiyan
    peers = h.settings.h323.peers
    port = free_port()
    peers.append(H323Peer(name="newroom", host="127.0.0.1", port=port))
    try:
        assert "ooh323.conf" in h.call(h.ctl.apply_directory())
        assert "newroom" in h.ctl.pbx.rx("ooh323 show peers")
        room = rooms.room()
        r = rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": f"h323:127.0.0.1:{port}"})
        assert r.status_code == 202 and r.json()["dial"] == "OOH323/newroom", r.text
        rooms.room_event(room, "invitation", lambda e: e.data["id"] == r.json()["id"] and e.data["status"] == "failed",
                         timeout=40)
    finally:
        peers.pop()
        h.call(h.ctl.apply_directory())
    assert "newroom" not in h.ctl.pbx.rx("ooh323 show peers")


@pytest.mark.parametrize(("target", "reason"), [
    ("h323:127.0.0.1:1", "not a configured H.323 room system"),  # chan_ooh323 dials configured peers only
    ("h323:10.9.9.9", "not a configured H.323 room system"),
    ("h323:999.1.1.1", "not a valid IP address"),
    ("h323:127.0.0.1:99999", "out of range"),
    ("h323:nosuchroom", "no H.323 room system named"),
    ("h323:6001@gk", "no H.323 gatekeeper"),
    ("h323:", "pattern"),  # not even the syntax: the schema refuses it
    ("h323:a b@127.0.0.1", "pattern"),
])
def test_bad_h323_targets_are_refused_with_a_reason(world: H323World, rooms: Rooms, target: str, reason: str) -> None:
    room = rooms.room()
    r = rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": target})
    assert r.status_code == 422 and reason in r.text, r.text
    assert world.legacy.channels() == []  # nothing was dialled
