"""FastAGI server and session against the fake Asterisk: commands, hang-ups, and every way a call can go wrong."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from huiyan.agi import (
    AgiCommandError,
    AgiConnectionClosed,
    AgiHangup,
    AgiSession,
    AgiTimeout,
    FastAgiServer,
    Handler,
)
from huiyan.agi.testing import DISCONNECT, SILENCE, FakeAsterisk

HOST = "127.0.0.1"
DONE = 'SET VARIABLE "HUIYAN_DONE" "1"'  # a route that finished on purpose tells the dialplan so
ERROR_EXIT = [
    'SET VARIABLE "HUIYAN_AGI_ERROR" "exception"',
    DONE,
    "ANSWER",
    'STREAM FILE "huiyan/unavailable" ""',
    "HANGUP",
]


def server_for(handler: Handler | None = None, **kwargs: object) -> FastAgiServer:
    routes = {"selftest": handler} if handler is not None else {}
    return FastAgiServer(routes, HOST, 0, **kwargs)  # type: ignore[arg-type]


async def answer_and_hangup(session: AgiSession) -> None:
    await session.answer()
    await session.hangup()


def errors_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_listens_on_an_ephemeral_port_and_stops() -> None:
    server = server_for(answer_and_hangup)
    assert not server.listening
    await server.start()
    assert server.listening and server.port > 0
    await server.stop()
    assert not server.listening
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, server.port)


async def test_routes_by_script_and_exposes_request() -> None:
    seen: list[AgiSession] = []

    async def handler(session: AgiSession) -> None:
        seen.append(session)
        await session.answer()

    async with server_for(handler, node_name="pbx7") as server:
        async with FakeAsterisk(HOST, server.port, headers={"agi_network_script": "/selftest?number=19999&class=citizen",
                                                          "agi_arg_1": "a", "agi_arg_2": "b"}) as fa:
            await fa.wait_closed()
    assert fa.commands == ["ANSWER", DONE]
    (session,) = seen
    assert session.node_name == "pbx7"
    assert session.request.script == "selftest"
    assert session.request.params == {"number": "19999", "class": "citizen"}
    assert session.request.args == ("a", "b")
    assert session.request.uniqueid == fa.headers["agi_uniqueid"]
    assert server.sessions_served == 1 and server.active_sessions == 0


async def test_helpers_send_the_right_commands_and_decode_answers() -> None:
    results: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        await session.answer()
        results["stream"] = await session.stream_file("/srv/sounds/zh/huiyan/menu", "123")
        results["stream_none"] = await session.stream_file("hello-world")
        results["data"] = await session.get_data("huiyan/menu", 3000, 4)
        results["no_data"] = await session.get_data("huiyan/menu", 3000, 4)
        results["exec"] = await session.exec("Dial", "PJSIP/agent1", "10", 'U(say "hi")')
        results["var"] = await session.get_variable("CHANNEL(language)")
        results["unset"] = await session.get_variable("NOPE")
        await session.set_variable("HUIYAN_CASE", 'a "quoted" \\ value')
        await session.set_music(True)
        await session.set_music(False)
        await session.set_music(True, "hotline")
        await session.verbose("hello from huiyan", 3)
        await session.hangup()
        await session.hangup()  # a second hang-up is a quiet no-op

    responses = [
        "200 result=0",
        "200 result=50 endpos=4000",
        "200 result=0 endpos=8000",
        "200 result=0123 (timeout)",
        "200 result= (timeout)",
        "200 result=0",
        "200 result=1 (zh)",
        "200 result=0",
    ]
    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses=responses) as fa:
            await fa.wait_closed()
    assert fa.commands == [
        "ANSWER",
        'STREAM FILE "/srv/sounds/zh/huiyan/menu" "123"',
        'STREAM FILE "hello-world" ""',
        'GET DATA "huiyan/menu" 3000 4',
        'GET DATA "huiyan/menu" 3000 4',
        'EXEC Dial "PJSIP/agent1,10,U(say \\"hi\\")"',
        'GET VARIABLE "CHANNEL(language)"',
        'GET VARIABLE "NOPE"',
        'SET VARIABLE "HUIYAN_CASE" "a \\"quoted\\" \\\\ value"',
        'SET MUSIC ON "default"',
        "SET MUSIC OFF",
        'SET MUSIC ON "hotline"',
        'VERBOSE "hello from huiyan" 3',
        "HANGUP",
    ]
    assert results == {
        "stream": "2",
        "stream_none": "",
        "data": "0123",
        "no_data": "",
        "exec": 0,
        "var": "zh",
        "unset": None,
    }


async def test_low_level_command_returns_error_responses_and_helpers_raise() -> None:
    outcome: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        bad = await session.command("FROB NICATE")
        outcome["510"] = (bad.code, bad.data)
        usage = await session.command("STREAM FILE")
        outcome["520"] = (usage.code, len(usage.lines))
        with pytest.raises(AgiCommandError, match="no dialplan application"):
            await session.exec("NoSuchApp")
        with pytest.raises(AgiCommandError, match="rejected"):
            await session.set_variable("X", "1")
        with pytest.raises(ValueError):
            await session.command("VERBOSE x\nHANGUP")
        outcome["after"] = await session.get_variable("X")

    responses = [
        "510 Invalid or unknown command",
        "520-Invalid command syntax.  Proper usage follows:\n"
        "Usage: STREAM FILE <filename> <escape digits> [sample offset]\n"
        " Send the given file.\n"
        "520 End of proper usage.",
        "200 result=-2",
        "510 Invalid or unknown command",
        "200 result=1 (still in step)",
    ]
    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses=responses) as fa:
            await fa.wait_closed()
    assert outcome == {"510": (510, "Invalid or unknown command"), "520": (520, 4), "after": "still in step"}
    # The command with a newline was never sent: it would have smuggled a second command.
    assert fa.commands[-2:] == ['GET VARIABLE "X"', DONE] and len(fa.commands) == 6


async def test_hangup_line_before_a_response_marks_session_hung_up() -> None:
    outcome: dict[str, object] = {}

    async def handler(session: AgiSession) -> None:
        outcome["value"] = await session.get_variable("X")
        outcome["hungup"] = session.hungup
        try:
            await session.set_variable("Y", "1")
        except AgiHangup:
            outcome["raised"] = True
        await session.hangup()  # already gone: no-op, no exception

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses=["HANGUP\n200 result=1 (x)"]) as fa:
            await fa.wait_closed()
    assert outcome == {"value": "x", "hungup": True, "raised": True}
    assert fa.commands == ['GET VARIABLE "X"']


async def test_511_marks_session_hung_up() -> None:
    outcome: list[str] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.stream_file("huiyan/welcome")
        except AgiHangup:
            outcome.append("511")
        assert session.hungup
        try:
            await session.answer()
        except AgiHangup:
            outcome.append("next")

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses=["511 Command Not Permitted on a dead channel"]) as fa:
            await fa.wait_closed()
    assert outcome == ["511", "next"]
    assert fa.commands == ['STREAM FILE "huiyan/welcome" ""']


async def test_hangup_while_idle_wakes_a_waiting_call() -> None:
    noticed = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        await session.set_music(True)
        await asyncio.wait_for(session.wait_hangup(), 5)
        noticed.set()
        await session.set_music(False)  # raises AgiHangup: the server ends the call quietly

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port) as fa:
            await fa.wait_for_command("SET MUSIC ON")
            await asyncio.sleep(0.05)
            assert not noticed.is_set()
            fa.hangup()
            await fa.wait_closed()
    assert noticed.is_set()
    assert fa.commands == ['SET MUSIC ON "default"']
    assert server.active_sessions == 0


async def test_malformed_header_is_dropped_and_server_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="huiyan.agi")
    async with server_for(answer_and_hangup) as server:
        async with FakeAsterisk(HOST, server.port, send_headers=False) as bad:
            await bad.send_raw(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
            await bad.wait_closed()
        async with FakeAsterisk(HOST, server.port, send_headers=False) as binary:
            await binary.send_raw(b"agi_network_script: selftest\nagi_channel: \xff\xfe\n\n")
            await binary.wait_closed()
        async with FakeAsterisk(HOST, server.port, headers={"agi_channel": None}) as missing:
            await missing.wait_closed()
        async with FakeAsterisk(HOST, server.port) as good:
            await good.wait_closed()
        assert server.listening
    assert bad.commands == binary.commands == missing.commands == []
    assert bad.closed_by_server and binary.closed_by_server and missing.closed_by_server
    assert good.commands == ["ANSWER", "HANGUP"]
    assert server.protocol_errors == 3 and server.sessions_served == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("malformed AGI header line 1" in w for w in warnings)
    assert any("not UTF-8" in w for w in warnings)
    assert any("agi_channel" in w for w in warnings)
    assert not errors_in(caplog)


async def test_slow_header_times_out() -> None:
    async with server_for(answer_and_hangup, header_timeout=0.1) as server:
        async with FakeAsterisk(HOST, server.port, send_headers=False) as fa:
            await fa.send_raw(b"agi_network_script: selftest\n")
            await fa.wait_closed(timeout=2)
    assert fa.closed_by_server and fa.commands == []
    assert server.protocol_errors == 1


async def test_unknown_route_apologises_and_hangs_up(caplog: pytest.LogCaptureFixture) -> None:
    async with server_for(answer_and_hangup) as server:
        async with FakeAsterisk(HOST, server.port, script="hotline") as fa:
            await fa.wait_closed()
    assert fa.commands == [
        'SET VARIABLE "HUIYAN_AGI_ERROR" "unknown-route"',
        DONE,
        "ANSWER",
        'STREAM FILE "huiyan/unavailable" ""',
        "HANGUP",
    ]
    assert any("no FastAGI route for 'hotline'" in r.getMessage() for r in caplog.records)
    assert not errors_in(caplog)


async def test_unknown_route_uses_absolute_prompt_when_sounds_dir_is_known(tmp_path: Path) -> None:
    (tmp_path / "en" / "huiyan").mkdir(parents=True)
    (tmp_path / "en" / "huiyan" / "unavailable.wav").write_bytes(b"RIFF")
    async with server_for(answer_and_hangup, sounds_dir=tmp_path) as server:
        async with FakeAsterisk(HOST, server.port, script="nope", headers={"agi_language": "zh"}) as fa:
            await fa.wait_closed()
    # zh is missing, so the English file is played rather than nothing.
    assert f'STREAM FILE "{tmp_path}/en/huiyan/unavailable" ""' in fa.commands


async def test_client_disconnect_mid_command_ends_session_quietly(caplog: pytest.LogCaptureFixture) -> None:
    reached: list[str] = []
    ended = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        try:
            await session.answer()
            reached.append("answered")
            await session.stream_file("huiyan/welcome")
            reached.append("after stream")
        finally:
            ended.set()

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses={"STREAM FILE": DISCONNECT}) as fa:
            await fa.wait_closed()
        await asyncio.wait_for(ended.wait(), 2)
        for _ in range(100):
            if server.active_sessions == 0:
                break
            await asyncio.sleep(0.01)
        assert server.active_sessions == 0
        async with FakeAsterisk(HOST, server.port) as again:
            await again.wait_closed()
        assert again.commands == ["ANSWER", 'STREAM FILE "huiyan/welcome" ""', DONE]
    # The first call never got past the broken STREAM FILE; the second (normal) one did.
    assert reached == ["answered", "answered", "after stream"]
    assert fa.commands == ["ANSWER", 'STREAM FILE "huiyan/welcome" ""']
    assert not errors_in(caplog)


async def test_disconnect_surfaces_as_connection_closed_to_the_handler() -> None:
    caught: list[BaseException] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except AgiHangup as exc:
            caught.append(exc)

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses=[DISCONNECT]) as fa:
            await fa.wait_closed()
        await asyncio.sleep(0.05)
    assert len(caught) == 1 and isinstance(caught[0], AgiConnectionClosed)


async def test_handler_exception_is_logged_then_caller_hears_apology(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("boom")

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port) as fa:
            await fa.wait_closed()
        async with FakeAsterisk(HOST, server.port) as again:
            await again.wait_closed()
        assert server.listening
    assert fa.commands == ["ANSWER", *ERROR_EXIT]
    assert again.commands == ["ANSWER", *ERROR_EXIT]
    (first, second) = errors_in(caplog)
    assert first.exc_info is not None and isinstance(first.exc_info[1], RuntimeError)
    # The per-call logger names the call.
    assert fa.headers["agi_uniqueid"] in first.getMessage()
    assert "selftest" in first.getMessage()


async def test_handler_exception_after_hangup_sends_nothing_more(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(session: AgiSession) -> None:
        await session.hangup()
        raise KeyError("late bug")

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port) as fa:
            await fa.wait_closed()
    assert fa.commands == ["HANGUP"]
    assert len(errors_in(caplog)) == 1


async def test_error_exit_survives_a_caller_who_hangs_up_during_the_apology() -> None:
    async def handler(session: AgiSession) -> None:
        raise RuntimeError("boom")

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses={"STREAM FILE": "HANGUP\n200 result=-1 endpos=0"}) as fa:
            await fa.wait_closed()
        assert server.listening
    assert fa.commands == ERROR_EXIT[:4]


async def test_response_timeout_closes_the_session(caplog: pytest.LogCaptureFixture) -> None:
    caught: list[BaseException] = []

    async def handler(session: AgiSession) -> None:
        try:
            await session.get_variable("X")
        except AgiTimeout as exc:
            caught.append(exc)
            assert session.closed
            raise

    async with server_for(handler, response_timeout=0.1) as server:
        async with FakeAsterisk(HOST, server.port, responses=[SILENCE]) as fa:
            await fa.wait_closed(timeout=2)
    assert fa.closed_by_server
    assert len(caught) == 1
    assert fa.commands == ['GET VARIABLE "X"']  # no error exit on a session in an unknown state
    assert any("no answer" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert not errors_in(caplog)


async def test_unsolicited_lines_are_not_taken_for_the_next_answer() -> None:
    gate = asyncio.Event()
    got: list[str | None] = []

    async def handler(session: AgiSession) -> None:
        await session.verbose("first")
        await gate.wait()
        got.append(await session.get_variable("X"))

    async with server_for(handler) as server:
        async with FakeAsterisk(HOST, server.port, responses={"GET VARIABLE": "200 result=1 (real)"}) as fa:
            await fa.wait_for_command("VERBOSE")
            await fa.send_raw(b"200 result=1 (stale)\n")
            await asyncio.sleep(0.05)
            gate.set()
            await fa.wait_closed()
    assert got == ["real"]


async def test_stop_cancels_running_calls_and_closes_their_connections() -> None:
    cancelled = asyncio.Event()

    async def handler(session: AgiSession) -> None:
        await session.answer()
        try:
            await session.wait_hangup()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = server_for(handler)
    await server.start()
    async with FakeAsterisk(HOST, server.port) as fa:
        await fa.wait_for_command("ANSWER")
        await asyncio.sleep(0.02)
        assert server.active_sessions == 1
        await server.stop()
        await fa.wait_closed(timeout=2)
    assert cancelled.is_set()
    assert fa.closed_by_server
    assert server.active_sessions == 0 and not server.listening


async def test_stop_with_grace_lets_a_short_call_finish() -> None:
    async def handler(session: AgiSession) -> None:
        await asyncio.sleep(0.1)
        await session.hangup()

    server = server_for(handler)
    await server.start()
    async with FakeAsterisk(HOST, server.port) as fa:
        await asyncio.sleep(0.02)
        await server.stop(grace=2)
        await fa.wait_closed()
    assert fa.commands == ["HANGUP"]


async def test_500_concurrent_calls_are_all_answered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    peak = 0

    async def handler(session: AgiSession) -> None:
        nonlocal peak
        await session.answer()
        peak = max(peak, server.active_sessions)
        caller = await session.get_variable("CALLERID(num)")
        await asyncio.sleep(0.05)  # hold the call, so they overlap
        await session.set_variable("SEEN", caller or "")
        await session.hangup()

    async def call(server: FastAgiServer, n: int) -> FakeAsterisk:
        fa = FakeAsterisk(HOST, server.port, responses={"GET VARIABLE": f"200 result=1 (1380000{n:04d})"})
        async with fa:
            await fa.wait_closed(timeout=20)
        return fa

    async with server_for(handler) as server:
        fakes = await asyncio.gather(*(call(server, n) for n in range(500)))
        assert server.listening
    assert server.sessions_served == 500
    assert server.active_sessions == 0
    for n, fa in enumerate(fakes):
        assert fa.commands == [
            "ANSWER",
            'GET VARIABLE "CALLERID(num)"',
            f'SET VARIABLE "SEEN" "1380000{n:04d}"',
            "HANGUP",
        ], fa.commands
    assert peak > 100, peak
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
