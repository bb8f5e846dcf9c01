"""Typed AMI events: parsing, the registry, and delivery to callbacks, subscribers and the EventBus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_ami import FakeAmi, encode

from huiyan.bus import EventBus
from huiyan.pbx.ami import AmiClient, AmiTimeout
from huiyan.pbx.events import (
    AmiConnected,
    AmiDisconnected,
    AmiEvent,
    BridgeEnter,
    ConfbridgeTalking,
    ContactStatus,
    DialEnd,
    FullyBooted,
    Hangup,
    Newchannel,
    event_class,
    parse_event,
)


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as srv:
        yield srv


def test_parse_hangup() -> None:
    ev = parse_event("pbx1", {"Event": "Hangup", "Channel": "PJSIP/a-00000001", "Uniqueid": "1.1",
                              "Linkedid": "1.0", "Cause": "17", "Cause-txt": "User busy", "ChannelState": "6"})
    assert isinstance(ev, Hangup)
    assert (ev.node, ev.name, ev.channel) == ("pbx1", "Hangup", "PJSIP/a-00000001")
    assert (ev.uniqueid, ev.linkedid) == ("1.1", "1.0")
    assert ev.cause == 17 and ev.cause_txt == "User busy"


def test_parse_specific_events() -> None:
    dial = parse_event("n", {"Event": "DialEnd", "DestChannel": "PJSIP/agent1-2", "DialStatus": "ANSWER"})
    assert isinstance(dial, DialEnd) and dial.dialstatus == "ANSWER" and dial.dest_channel == "PJSIP/agent1-2"
    contact = parse_event("n", {"Event": "ContactStatus", "AOR": "agent1", "ContactStatus": "Reachable",
                                "RoundtripUsec": "1234", "EndpointName": "agent1"})
    assert isinstance(contact, ContactStatus)
    assert (contact.aor, contact.status, contact.roundtrip_usec) == ("agent1", "Reachable", 1234)
    talk = parse_event("n", {"Event": "ConfbridgeTalking", "Conference": "room7", "TalkingStatus": "on"})
    assert isinstance(talk, ConfbridgeTalking) and talk.talking and talk.conference == "room7"
    enter = parse_event("n", {"Event": "BridgeEnter", "BridgeUniqueid": "b1", "BridgeType": "basic",
                              "BridgeNumChannels": "2", "Uniqueid": "1.1", "ChannelStateDesc": "Up"})
    assert isinstance(enter, BridgeEnter)
    assert (enter.bridge_id, enter.bridge_num_channels, enter.state) == ("b1", 2, "Up")


def test_every_named_event_has_a_class() -> None:
    names = ["Newchannel", "Hangup", "Newstate", "DialBegin", "DialEnd", "BridgeCreate", "BridgeDestroy",
             "BridgeEnter", "BridgeLeave", "ContactStatus", "DeviceStateChange", "ConfbridgeJoin",
             "ConfbridgeLeave", "ConfbridgeTalking", "ConfbridgeMute", "ConfbridgeUnmute", "FullyBooted",
             "ChanSpyStart", "ChanSpyStop", "MixMonitorStart", "MixMonitorStop"]
    for name in names:
        cls = event_class(name)
        assert cls is not AmiEvent and cls.__name__ == name
    assert event_class("hangup") is Hangup  # Asterisk event names are case-insensitive


def test_unknown_event_is_a_plain_amievent_with_all_fields() -> None:
    ev = parse_event("n", {"Event": "RTCPSent", "Channel": "PJSIP/a-1", "Report0FractionLost": "0",
                           "ChanVariable": ["A=1", "B=2"]})
    assert type(ev) is AmiEvent and ev.name == "RTCPSent"
    assert ev["Report0FractionLost"] == "0" and ev.fields["ChanVariable"] == "A=1\nB=2"
    assert ev.get("channel") == "PJSIP/a-1" and ev.get("Missing") == "" and "Channel" in ev
    with pytest.raises(KeyError):
        ev["Missing"]


def test_events_are_frozen_values() -> None:
    a = parse_event("n", {"Event": "Newchannel", "Uniqueid": "1"})
    b = parse_event("n", {"Event": "Newchannel", "Uniqueid": "1"})
    assert a == b and hash(a) == hash(b) and isinstance(a, Newchannel)
    assert repr(a).startswith("Newchannel(")
    with pytest.raises(AttributeError):
        a.name = "x"  # type: ignore[misc]


async def test_events_reach_callbacks_subscribers_and_bus(server: FakeAmi) -> None:
    bus = EventBus()
    on_bus = bus.subscribe()
    client = AmiClient(server.node(), bus)
    from_callback: list[object] = []
    client.on_event(from_callback.append)
    sub = client.subscribe()
    await client.connect(timeout=2)
    try:
        channel = server.new_channel("PJSIP/caller-00000001", caller_id_num="13800000000", caller_id_name="张三")
        server.hangup(channel.uniqueid, cause=17, cause_txt="User busy")
        expected = [AmiConnected, FullyBooted, Newchannel, Hangup]
        got = [await sub.get(timeout=1) for _ in expected]
        assert [type(e) for e in got] == expected
        assert [type(await asyncio.wait_for(on_bus.get(), 1)) for _ in expected] == expected
        new, hangup = got[2], got[3]
        assert isinstance(new, Newchannel) and new.caller_id_name == "张三" and new.node == "pbx1"
        assert isinstance(hangup, Hangup) and hangup.cause == 17 and hangup.uniqueid == channel.uniqueid
        assert [type(e) for e in from_callback] == expected
    finally:
        await client.close()
    assert isinstance(await sub.get(timeout=1), AmiDisconnected)
    with pytest.raises(StopAsyncIteration):  # close() ends subscriptions
        await sub.get(timeout=1)


async def test_async_iteration_and_wait_event(server: FakeAmi) -> None:
    async with AmiClient(server.node()) as client:
        hung_up = client.wait_event(Hangup, lambda e: e.cause == 16, timeout=1)
        channel = server.new_channel("PJSIP/x-00000001")
        server.hangup(channel.uniqueid)
        assert (await hung_up).uniqueid == channel.uniqueid

        names: list[str] = []
        async with client.subscribe() as events:
            server.new_channel("PJSIP/y-00000002")
            server.set_state(next(iter(server.channels)), "Up")
            async for event in events:
                assert isinstance(event, AmiEvent)
                names.append(event.name)
                if len(names) == 2:
                    break
        assert names == ["Newchannel", "Newstate"]

        with pytest.raises(AmiTimeout, match="no ContactStatus event"):
            await client.wait_event(ContactStatus, timeout=0.05)


async def test_async_callbacks_and_broken_callbacks_do_not_break_delivery(server: FakeAmi) -> None:
    async with AmiClient(server.node()) as client:
        got: list[str] = []

        def broken(event: object) -> None:
            raise RuntimeError("listener bug")

        async def slow(event: object) -> None:
            await asyncio.sleep(0)
            if isinstance(event, AmiEvent):
                got.append(event.name)

        client.on_event(broken)
        remove = client.on_event(slow)
        waiter = client.wait_event("Newchannel", timeout=1)
        server.new_channel("PJSIP/z-00000003")
        await waiter
        await asyncio.sleep(0.01)
        assert got == ["Newchannel"]
        remove()


async def test_utf8_character_split_across_tcp_reads_survives(server: FakeAmi) -> None:
    async with AmiClient(server.node()) as client:
        fields = {"Channel": "PJSIP/caller-00000001", "Uniqueid": "9.1", "CallerIDName": "王小明律师"}
        data = encode({"Event": "Newchannel", "Privilege": "call,all", **fields})
        cut = data.index("小".encode()) + 1  # inside the 3-byte character
        waiter = client.wait_event(Newchannel, timeout=1)
        await server.emit_split("Newchannel", cut, **fields)
        assert (await waiter).caller_id_name == "王小明律师"
