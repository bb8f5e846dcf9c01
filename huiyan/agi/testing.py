"""A fake Asterisk for FastAGI tests: sends the `agi_*` header, answers commands from a script, records them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Union

DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
DEFAULT_RESPONSE = "200 result=0"


class _Disconnect:
    def __repr__(self) -> str:
        return "DISCONNECT"


# A scripted response that closes the connection instead of answering (Asterisk crashing, network loss).
DISCONNECT = _Disconnect()
# A scripted response that sends nothing and leaves the command hanging (a wedged Asterisk).
SILENCE = object()

Response = Union[str, _Disconnect, object, None]
Responder = Union[Sequence[Response], Mapping[str, Response], Callable[[str], Response], None]

_ids = itertools.count(1)


def default_headers(host: str, port: int, script: str = "selftest") -> dict[str, str]:
    """What Asterisk 22 sends for `AGI(agi://host:port/<script>)` from a PJSIP channel."""
    n = next(_ids)
    uniqueid = f"1700000000.{n}"
    return {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://{host}:{port}/{script}",
        "agi_channel": f"PJSIP/caller-{n:08x}",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.10.1",
        "agi_callerid": "13800138000",
        "agi_calleridname": "Test Caller",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "19999",
        "agi_rdnis": "unknown",
        "agi_context": "from-citizens",
        "agi_extension": "19999",
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
        "agi_linkedid": uniqueid,
    }


class FakeAsterisk:
    """Plays Asterisk's side of one FastAGI session.

    `responses` scripts the answers: a list (the n-th command gets the n-th entry), a mapping from
    command prefix to answer (first match, case-insensitive), or a callable taking the command text.
    An entry of None, a missing entry or no match answers `200 result=0`. An answer may span lines
    (a 520 usage block) and may include a bare `HANGUP` line, sent in that order. After `hangup()`
    every command gets 511, as from a real dead channel.
    """

    def __init__(
        self,
        host: str,
        port: int,
        headers: Mapping[str, str | None] | None = None,
        responses: Responder = None,
        *,
        script: str = "selftest",
        send_headers: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.headers: dict[str, str] = default_headers(host, port, script)
        for key, value in (headers or {}).items():
            if value is None:
                self.headers.pop(key, None)  # None removes a header, to test its absence
            else:
                self.headers[key] = value
        self.responses = responses
        self.send_headers = send_headers
        self.commands: list[str] = []
        self.hungup = False
        self.closed_by_server = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> "FakeAsterisk":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        if self.send_headers:
            block = "".join(f"{key}: {value}\n" for key, value in self.headers.items()) + "\n"
            await self.send_raw(block.encode("utf-8"))
        self._task = asyncio.create_task(self._serve())

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are: malformed headers, partial lines, unsolicited text."""
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def hangup(self) -> None:
        """The caller hangs up: send a bare HANGUP line; later commands get 511."""
        self.hungup = True
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"HANGUP\n")

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the server (or we) closed the connection."""
        await asyncio.wait_for(self._closed.wait(), timeout)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_for_command(self, prefix: str, timeout: float = 5.0) -> str:
        """Wait until a command starting with `prefix` has been received; return it."""

        def find() -> str | None:
            return next((c for c in self.commands if c.upper().startswith(prefix.upper())), None)

        async def wait() -> str:
            async with self._changed:
                await self._changed.wait_for(lambda: find() is not None or self.closed)
            found = find()
            if found is None:
                raise AssertionError(f"connection closed without a {prefix!r} command; got {self.commands}")
            return found

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        await self._set_closed()

    async def _set_closed(self) -> None:
        self._closed.set()
        async with self._changed:
            self._changed.notify_all()

    def _response_for(self, index: int, command: str) -> Response:
        if self.hungup:
            return DEAD_CHANNEL
        scripted = self.responses
        if scripted is None:
            return None
        if callable(scripted):
            return scripted(command)
        if isinstance(scripted, Mapping):
            for prefix, answer in scripted.items():
                if command.upper().startswith(prefix.upper()):
                    return answer
            return None
        return scripted[index] if index < len(scripted) else None

    async def _serve(self) -> None:
        assert self._reader is not None and self._writer is not None
        try:
            while True:
                try:
                    raw = await self._reader.readline()
                except (ConnectionError, OSError):
                    raw = b""
                if not raw:
                    self.closed_by_server = True
                    break
                command = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                index = len(self.commands)
                self.commands.append(command)
                async with self._changed:
                    self._changed.notify_all()
                answer = self._response_for(index, command)
                if answer is DISCONNECT:
                    self._writer.close()
                    break
                if answer is SILENCE:
                    continue
                text = DEFAULT_RESPONSE if answer is None else str(answer)
                if any(line == "HANGUP" for line in text.splitlines()):
                    self.hungup = True
                self._writer.write(text.rstrip("\n").encode("utf-8") + b"\n")
                try:
                    await self._writer.drain()
                except ConnectionError:
                    self.closed_by_server = True
                    break
        finally:
            if not self._writer.is_closing():
                self._writer.close()
            await self._set_closed()


__all__ = ["DEAD_CHANNEL", "DISCONNECT", "SILENCE", "FakeAsterisk", "default_headers"]
