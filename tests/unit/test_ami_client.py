"""AmiClient against the fake AMI server: login, actions, lists, CLI commands, timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_ami import FakeAmi

from huiyan.pbx.ami import (
    AmiActionError,
    AmiAuthError,
    AmiClient,
    AmiConnectError,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from huiyan.pbx.events import AmiConnected, OriginateResponse
from huiyan.pbx.node import PbxNode


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_login_success(server: FakeAmi) -> None:
    c = AmiClient(server.node())
    seen = []
    c.on_event(seen.append)
    await c.connect(timeout=2)
    try:
        assert c.connected
        assert server.logins == 1
        login = server.actions("Login")[0]
        assert login["Username"] == "huiyan" and login["Secret"] == "s3cret" and login["Events"] == "on"
        assert AmiConnected("pbx1") in seen
    finally:
        await c.close()
    assert not c.connected


async def test_bad_secret_raises_auth_error_without_retrying(server: FakeAmi) -> None:
    c = AmiClient(server.node(secret="wrong"), backoff_initial=0.01)
    with pytest.raises(AmiAuthError, match="refused: Authentication failed"):
        await c.connect(wait=True, timeout=2)
    assert not c.connected
    await asyncio.sleep(0.05)
    assert len(server.accepts) == 1  # no background retry loop left behind
    await c.close()


async def test_unreachable_without_wait_fails_at_once() -> None:
    node = PbxNode("pbx1", "127.0.0.1", _free_port(), "huiyan", "x", "127.0.0.1", 5060)
    c = AmiClient(node)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiConnectError, match="cannot reach AMI of node pbx1"):
        await c.connect(wait=False)
    assert loop.time() - started < 1
    await c.close()


async def test_unreachable_with_wait_times_out_then_connects_when_asterisk_appears() -> None:
    port = _free_port()
    node = PbxNode("pbx1", "127.0.0.1", port, "huiyan", "s3cret", "127.0.0.1", 5060)
    c = AmiClient(node, backoff_initial=0.02, backoff_max=0.05)
    with pytest.raises(AmiTimeout, match="not reachable within 0.2s"):
        await c.connect(wait=True, timeout=0.2)

    srv = FakeAmi()
    srv.port = port

    async def boot_later() -> None:
        await asyncio.sleep(0.2)
        await srv.start()

    booting = asyncio.create_task(boot_later())
    try:
        await c.connect(wait=True, timeout=3)  # retries while "Asterisk" boots
        assert c.connected
    finally:
        await booting
        await c.close()
        await srv.stop()


async def test_action_round_trip_echoes_action_id(server: FakeAmi, client: AmiClient) -> None:
    resp = await client.action("Ping")
    assert resp.success and resp["Ping"] == "Pong" and resp.node == "pbx1" and resp.action == "Ping"
    sent = server.actions("Ping")[-1]
    assert sent["ActionID"] == resp["ActionID"]


async def test_action_error_carries_asterisk_message(client: AmiClient) -> None:
    with pytest.raises(AmiActionError, match="No such channel") as err:
        await client.action("Hangup", Channel="PJSIP/nobody-00000001")
    assert err.value.response.response == "Error"


async def test_unknown_action_is_an_action_error(client: AmiClient) -> None:
    with pytest.raises(AmiActionError, match="Invalid/unknown command: NoSuchThing"):
        await client.action("NoSuchThing")


async def test_timeout_then_client_still_usable(server: FakeAmi, client: AmiClient) -> None:
    server.silent.add("Originate")
    with pytest.raises(AmiTimeout, match="Originate on node pbx1: no answer within 0.1s"):
        await client.action("Originate", timeout=0.1, Channel="PJSIP/agent1", Application="Wait", Data="1")
    assert isinstance(AmiTimeout("x"), TimeoutError)
    assert (await client.action("Ping")).success
    # the timed-out action no longer sits in panoramisk's response table
    assert not client._manager.protocol.responses


async def test_header_values_are_encoded_and_crlf_rejected(server: FakeAmi, client: AmiClient) -> None:
    server.silent.add("Setvar")
    with pytest.raises(AmiTimeout):
        await client.action("Setvar", timeout=0.05, Channel="PJSIP/a-1", Variable={"A": 1, "B": "x"}, Flag=True)
    sent = server.actions("Setvar")[-1]
    assert sent["Variable"] == ["A=1", "B=x"] and sent["Flag"] == "true"
    with pytest.raises(ValueError, match="CR or LF"):
        await client.action("Originate", CallerID="evil\r\nAction: Command\r\nCommand: core stop now")
    assert not server.actions("Command")


async def test_action_list_returns_items(server: FakeAmi, client: AmiClient) -> None:
    a = server.new_channel("PJSIP/a-00000001", state="Up", caller_id_num="1001")
    server.new_channel("PJSIP/b-00000002")
    items = await client.action_list("CoreShowChannels")
    assert [i["Event"] for i in items] == ["CoreShowChannel", "CoreShowChannel"]
    assert items[0]["Uniqueid"] == a.uniqueid and items[0]["CallerIDNum"] == "1001"
    assert await client.action_list("BridgeList") == []


async def test_action_list_error_fails_instead_of_hanging(client: AmiClient) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiActionError, match="No active conferences"):
        await client.action_list("ConfbridgeList", Conference="1001")
    assert loop.time() - started < 0.5


async def test_command_returns_output_lines(server: FakeAmi, client: AmiClient) -> None:
    table = "Endpoint:  agent1  Not in use\nEndpoint:  agent2  Unavailable"
    server.commands["pjsip show endpoints"] = table
    assert await client.command("pjsip show endpoints") == table
    assert await client.command("core show uptime") == "System uptime: 1 minute, 2 seconds"
    with pytest.raises(AmiActionError, match="No such command 'foo bar'"):
        await client.command("foo bar")


async def test_async_originate_returns_at_once_and_result_arrives_as_event(server: FakeAmi, client: AmiClient) -> None:
    result = client.wait_event(OriginateResponse, timeout=2)
    resp = await client.action("Originate", timeout=1, Channel="PJSIP/agent1", Context="acd", Exten="s",
                               Priority=1, Async="true", ChannelId="chan-1")
    assert resp.message == "Originate successfully queued"
    event = await result
    assert event.action_id == resp["ActionID"] and event.response == "Success" and event.uniqueid == "chan-1"


async def test_actions_before_connect_fail_fast(server: FakeAmi) -> None:
    c = AmiClient(server.node())
    with pytest.raises(AmiNotConnected, match="pbx1 is not connected; Ping not sent"):
        await c.action("Ping")
    await c.close()
    with pytest.raises(AmiError, match="closed"):
        await c.connect()


async def test_context_manager(server: FakeAmi) -> None:
    async with AmiClient(server.node()) as c:
        assert (await c.action("Ping")).success
    assert not c.connected
    assert server.actions("Logoff")


async def test_event_whitelist_is_installed_at_every_login(server: FakeAmi) -> None:
    c = AmiClient(server.node(), events=("Newchannel", "Bridge[A-Za-z]*"), backoff_initial=0.05, backoff_max=0.2)
    await c.connect(timeout=2)
    try:
        (f,) = server.actions("Filter")
        assert f["Operation"] == "Add"
        assert f["Filter"] == "Event: (Newchannel|Bridge[A-Za-z]*)[[:space:]]"
    finally:
        await c.close()
    plain = AmiClient(server.node())
    await plain.connect(timeout=2)
    try:
        assert len(server.actions("Filter")) == 1  # no filter when every event is wanted
    finally:
        await plain.close()
