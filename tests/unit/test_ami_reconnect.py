"""Asterisk restarts and dead peers: backoff, AmiConnected/AmiDisconnected, fail-fast actions, tracker resync."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_ami import FakeAmi

from huiyan.bus import EventBus
from huiyan.pbx.ami import AmiClient, AmiNotConnected, backoff_delays
from huiyan.pbx.events import AmiConnected, AmiDisconnected
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


def test_backoff_doubles_and_is_capped() -> None:
    assert list(itertools.islice(backoff_delays(0.5, 10.0), 8)) == [0.5, 1, 2, 4, 8, 10, 10, 10]


async def test_asterisk_restart_reconnects_and_tracker_resyncs(server: FakeAmi, client: AmiClient) -> None:
    tracker = ChannelTracker(client)
    await tracker.wait_for(lambda t: t.synced, timeout=1)
    stays = server.new_channel("PJSIP/stays-00000001", state="Up")
    goes = server.new_channel("PJSIP/goes-00000002", state="Up")
    bridge = server.create_bridge()
    server.enter_bridge(bridge.id, stays.uniqueid)
    server.enter_bridge(bridge.id, goes.uniqueid)
    await tracker.wait_for(lambda t: len(t.bridges.get(bridge.id, ()) and t.bridges[bridge.id].channels) == 2, 1)

    events = client.subscribe()
    await server.stop()
    disconnected = await events.get(timeout=1)
    assert isinstance(disconnected, AmiDisconnected) and disconnected.reason == "connection closed by Asterisk"
    assert not client.connected and not tracker.synced

    # While huiyan is blind: one call ends, another starts. No events reach us for either.
    server.hangup(goes.uniqueid, quiet=True)
    appeared = server.new_channel("PJSIP/appeared-00000003", state="Ringing", quiet=True)
    await asyncio.sleep(0.3)  # several refused attempts: 0.05, 0.1, 0.2, 0.2 ...
    await server.start()

    assert isinstance(await events.get(timeout=2), AmiConnected)
    assert client.connected and server.logins == 2
    await tracker.wait_for(lambda t: t.synced, timeout=1)
    assert set(tracker.channels) == {stays.uniqueid, appeared.uniqueid}
    assert tracker.bridges[bridge.id].channels == {stays.uniqueid}
    assert tracker.channels[appeared.uniqueid].state == "Ringing"
    assert tracker.channels[stays.uniqueid].bridge_id == bridge.id
    tracker.close()


async def test_retries_back_off_exponentially_up_to_the_cap(server: FakeAmi, client: AmiClient) -> None:
    server.reject = True  # Asterisk accepts TCP but hangs up at once, so each attempt is visible here
    await server.drop_sessions()
    await asyncio.sleep(0.75)
    server.reject = False
    await client.wait_connected(timeout=1)
    gaps = [b - a for a, b in itertools.pairwise(server.accepts[1:])]  # accepts[0] was the first login
    # 0.05 after the drop, then gaps 0.1, 0.2, 0.2, ... (plus a few ms of loop latency each)
    assert len(gaps) >= 3
    for gap, expected in zip(gaps, [0.1, 0.2, 0.2, 0.2]):
        assert expected * 0.9 <= gap <= expected + 0.1


async def test_actions_while_disconnected_fail_fast(server: FakeAmi, client: AmiClient) -> None:
    await server.stop()
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiNotConnected, match="pbx1 is not connected; Ping not sent"):
        await client.action("Ping")
    with pytest.raises(AmiNotConnected):
        await client.action_list("CoreShowChannels")
    assert loop.time() - started < 0.05
    await server.start()
    await client.wait_connected(timeout=2)
    assert (await client.action("Ping")).success


async def test_action_in_flight_fails_when_connection_drops(server: FakeAmi, client: AmiClient) -> None:
    server.silent.add("Originate")
    pending = asyncio.create_task(client.action("Originate", Channel="PJSIP/agent1", Application="Wait", Data="1"))
    await asyncio.sleep(0.05)
    await server.drop_sessions()
    with pytest.raises(AmiNotConnected, match="lost before Originate was answered"):
        await asyncio.wait_for(pending, 1)
    # panoramisk would resend it after FullyBooted on the new connection; we must not (it could dial twice).
    await client.wait_connected(timeout=2)
    await asyncio.sleep(0.05)
    assert len(server.actions("Originate")) == 1


async def test_dead_peer_is_detected_by_ping(server: FakeAmi) -> None:
    bus = EventBus()
    seen = bus.subscribe()
    client = AmiClient(server.node(), bus, ping_interval=0.1, backoff_initial=0.05)
    await client.connect(timeout=2)
    try:
        assert isinstance(await asyncio.wait_for(seen.get(), 1), AmiConnected)
        server.mute = True  # TCP stays up, nothing answers: a hung Asterisk or a silent network drop
        while not isinstance(event := await asyncio.wait_for(seen.get(), 2), AmiDisconnected):
            pass
        assert "no answer to Ping" in event.reason
        server.mute = False
        await client.wait_connected(timeout=2)
    finally:
        await client.close()


async def test_shutdown_event_counts_as_disconnect(server: FakeAmi, client: AmiClient) -> None:
    waiter = client.wait_event(AmiDisconnected, timeout=1)
    server.emit("Shutdown", Shutdown="Cleanly", Restart="True")
    assert "shutting down" in (await waiter).reason
    await client.wait_connected(timeout=2)  # the fake is still listening, so we are back at once


async def test_no_reconnect_when_disabled(server: FakeAmi) -> None:
    client = AmiClient(server.node(), reconnect=False, backoff_initial=0.01)
    await client.connect(timeout=2)
    await server.drop_sessions()
    await asyncio.sleep(0.1)
    assert not client.connected and server.logins == 1
    await client.connect(timeout=2)  # an explicit connect() works again
    assert client.connected and server.logins == 2
    await client.close()


async def test_close_while_connecting_ends_connect_at_once(server: FakeAmi) -> None:
    server.reject = True
    client = AmiClient(server.node(), backoff_initial=0.05)
    connecting = asyncio.create_task(client.connect(wait=True, timeout=5))
    await asyncio.sleep(0.1)
    await client.close()
    with pytest.raises(AmiNotConnected, match="closed while connecting"):
        await asyncio.wait_for(connecting, 0.5)


async def test_close_stops_reconnecting(server: FakeAmi, client: AmiClient) -> None:
    await server.stop()
    await asyncio.sleep(0.1)
    await client.close()
    accepts = len(server.accepts)
    await server.start()
    await asyncio.sleep(0.3)
    assert len(server.accepts) == accepts and not client.connected
