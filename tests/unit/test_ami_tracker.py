"""ChannelTracker: live channels and bridges from AMI events, and the snapshot it takes on connect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_ami import FakeAmi

from huiyan.pbx.ami import AmiClient, AmiTimeout
from huiyan.pbx.events import AmiEvent, parse_event
from huiyan.pbx.tracker import ChannelTracker


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="function")
async def client(server: FakeAmi) -> AsyncIterator[AmiClient]:
    c = AmiClient(server.node(), backoff_initial=0.05, backoff_max=0.2, action_timeout=2.0)
    await c.connect(timeout=2)
    yield c
    await c.close()


@pytest_asyncio.fixture(loop_scope="function")
async def tracker(client: AmiClient) -> AsyncIterator[ChannelTracker]:
    t = ChannelTracker(client)
    await t.wait_for(lambda t: t.synced, timeout=2)
    yield t
    t.close()


async def test_builds_state_from_events(server: FakeAmi, tracker: ChannelTracker) -> None:
    caller = server.new_channel("PJSIP/caller-00000001", caller_id_num="13800000000", caller_id_name="李四",
                                context="from-public", exten="12348")
    agent = server.new_channel("PJSIP/agent1-00000002", state="Down", linkedid=caller.uniqueid)
    await tracker.wait_for(lambda t: len(t.channels) == 2, timeout=1)
    ch = tracker.channels[caller.uniqueid]
    assert (ch.name, ch.state, ch.caller_id_num, ch.caller_id_name, ch.context, ch.exten, ch.bridge_id) == (
        "PJSIP/caller-00000001", "Ring", "13800000000", "李四", "from-public", "12348", None)
    assert tracker.channels[agent.uniqueid].linkedid == caller.uniqueid
    assert tracker.channels[agent.uniqueid].caller_id_num == ""  # "<unknown>" from Asterisk

    server.set_state(agent.uniqueid, "Up")
    await tracker.wait_for(lambda t: t.channels[agent.uniqueid].state == "Up", timeout=1)

    bridge = server.create_bridge()
    server.enter_bridge(bridge.id, caller.uniqueid)
    server.enter_bridge(bridge.id, agent.uniqueid)
    b = await tracker.wait_for(lambda t: (b := t.bridges.get(bridge.id)) and len(b.channels) == 2 and b, timeout=1)
    assert b.channels == {caller.uniqueid, agent.uniqueid}
    assert (b.type, b.technology) == ("basic", "simple_bridge")
    assert tracker.channel_by_name("PJSIP/agent1-00000002").bridge_id == bridge.id  # type: ignore[union-attr]
    assert {c.uniqueid for c in tracker.channels_in_bridge(bridge.id)} == {caller.uniqueid, agent.uniqueid}

    server.hangup(agent.uniqueid)  # BridgeLeave then Hangup, as Asterisk sends them
    await tracker.wait_for(lambda t: agent.uniqueid not in t.channels, timeout=1)
    assert tracker.bridges[bridge.id].channels == {caller.uniqueid}
    assert tracker.channel_by_name("PJSIP/agent1-00000002") is None

    server.destroy_bridge(bridge.id)
    await tracker.wait_for(lambda t: bridge.id not in t.bridges, timeout=1)
    assert tracker.channels[caller.uniqueid].bridge_id is None


async def test_hangup_alone_removes_channel_from_its_bridge(tracker: ChannelTracker) -> None:
    # Drive the tracker directly with events, as a unit, to cover a Hangup with no BridgeLeave before it.
    def ev(name: str, **fields: str) -> AmiEvent:
        return parse_event("pbx1", {"Event": name, **fields})

    snap = {"Channel": "PJSIP/a-1", "ChannelState": "6", "ChannelStateDesc": "Up", "Uniqueid": "u1", "Linkedid": "u1"}
    tracker._on_event(ev("Newchannel", **snap))
    tracker._on_event(ev("BridgeEnter", BridgeUniqueid="b1", BridgeType="basic", BridgeTechnology="simple_bridge",
                         **snap))
    assert tracker.bridges["b1"].channels == {"u1"} and tracker.channels["u1"].bridge_id == "b1"
    tracker._on_event(ev("Rename", **snap, Newname="PJSIP/a-1<ZOMBIE>"))
    assert tracker.channels["u1"].name == "PJSIP/a-1<ZOMBIE>"
    tracker._on_event(ev("Hangup", **snap, Cause="16"))
    assert "u1" not in tracker.channels and tracker.bridges["b1"].channels == frozenset()


async def test_initial_snapshot_includes_existing_calls(server: FakeAmi, client: AmiClient) -> None:
    # Calls already up when huiyan starts: only CoreShowChannels/BridgeList/BridgeInfo can tell us.
    a = server.new_channel("PJSIP/a-00000001", state="Up", quiet=True)
    b = server.new_channel("PJSIP/b-00000002", state="Up", quiet=True)
    lone = server.new_channel("PJSIP/c-00000003", quiet=True)
    bridge = server.create_bridge(technology="native_rtp", quiet=True)
    server.enter_bridge(bridge.id, a.uniqueid, quiet=True)
    server.enter_bridge(bridge.id, b.uniqueid, quiet=True)
    empty = server.create_bridge(type="holding", quiet=True)

    tracker = ChannelTracker(client)
    await tracker.resync()
    assert tracker.synced
    assert set(tracker.channels) == {a.uniqueid, b.uniqueid, lone.uniqueid}
    assert tracker.bridges[bridge.id].channels == {a.uniqueid, b.uniqueid}
    assert tracker.bridges[bridge.id].technology == "native_rtp"
    assert tracker.bridges[empty.id].channels == frozenset() and tracker.bridges[empty.id].type == "holding"
    assert tracker.channels[a.uniqueid].bridge_id == bridge.id and tracker.channels[lone.uniqueid].bridge_id is None
    assert len(server.actions("BridgeInfo")) == 2
    tracker.close()


async def test_events_during_resync_are_replayed_on_the_snapshot(server: FakeAmi, client: AmiClient) -> None:
    early = server.new_channel("PJSIP/early-00000001", quiet=True)
    tracker = ChannelTracker(client)
    await tracker.resync()

    # Make BridgeList slow and hang up a channel while the tracker waits for it: the Hangup must win.
    async def slow_bridge_list(srv: FakeAmi, request: dict) -> list[dict]:
        srv.hangup(early.uniqueid)
        srv.new_channel("PJSIP/late-00000002")
        await asyncio.sleep(0.05)
        return srv._action_bridgelist(request)

    server.handle("BridgeList", slow_bridge_list)
    await tracker.resync()
    assert [c.name for c in tracker.channels.values()] == ["PJSIP/late-00000002"]
    tracker.close()


async def test_wait_for_times_out(tracker: ChannelTracker) -> None:
    with pytest.raises(AmiTimeout, match="condition not met within 0.05s"):
        await tracker.wait_for(lambda t: t.channel_by_name("PJSIP/nobody"), timeout=0.05)
