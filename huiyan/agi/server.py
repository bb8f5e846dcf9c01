"""FastAGI server: one coroutine per call, routed by script name, that never dies because one call misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from huiyan.agi.request import (
    MAX_HEADER_BYTES,
    AgiCommandError,
    AgiConnectionClosed,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    AgiResponse,
    AgiTimeout,
    parse_response,
    read_request,
)
from huiyan.prompts import prompt_language, prompt_path

log = logging.getLogger("huiyan.agi")

Handler = Callable[["AgiSession"], Awaitable[None]]

ERROR_VARIABLE = "HUIYAN_AGI_ERROR"
# Set when a route finished on purpose. The dialplan retries a route whose session ended without it:
# that is how a caller survives the controller dying mid-call (see huiyan/dialplan).
DONE_VARIABLE = "HUIYAN_DONE"
ERROR_PROMPT = "unavailable"
# Lines from Asterisk are short, but a GET VARIABLE value can be long; beyond this the peer is broken.
MAX_LINE_BYTES = 1024 * 1024


class _Default:
    """Marks "use the session's response timeout" where None already means "wait as long as it takes"."""


DEFAULT_TIMEOUT: Any = _Default()


class CallLogAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every message with node and channel uniqueid, so one call can be followed through the log."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"[{extra.get('node')} {extra.get('uniqueid')}] {msg}", kwargs


def quote(value: str) -> str:
    """Quote one AGI command argument the way res_agi's parser unquotes it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    """One FastAGI connection, i.e. one call. Commands are serialised; HANGUP is noticed even when idle."""

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        node_name: str = "pbx1",
        response_timeout: float | None = 30.0,
        sounds_dir: Path | None = None,
    ) -> None:
        self.request = request
        self.node_name = node_name
        self.response_timeout = response_timeout
        self.sounds_dir = sounds_dir
        self.log = CallLogAdapter(
            log, {"node": node_name, "uniqueid": request.uniqueid or "-", "channel": request.channel}
        )
        self._reader = reader
        self._writer = writer
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._hangup = asyncio.Event()
        self._closed = False
        self._eof = False
        self._awaiting = False
        self._reader_task: asyncio.Task[None] | None = None

    # ---- state -------------------------------------------------------------------------------------
    @property
    def hungup(self) -> bool:
        """The channel is gone (HANGUP, 511, our own hangup) or the connection closed."""
        return self._hangup.is_set()

    @property
    def closed(self) -> bool:
        return self._closed or self._eof

    async def wait_hangup(self) -> None:
        """Return when the caller hangs up or the connection closes; lets a waiting call notice it promptly."""
        await self._hangup.wait()

    def start(self) -> None:
        """Begin reading from Asterisk. Called by the server before the handler runs."""
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read_loop(), name=f"agi-read-{self.request.uniqueid}")

    async def close(self) -> None:
        """Close the connection; Asterisk then continues the dialplan after AGI() (if the channel lives)."""
        self._closed = True
        self._hangup.set()
        task, self._reader_task = self._reader_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)

    def _mark_hungup(self, why: str) -> None:
        if not self._hangup.is_set():
            self.log.info("channel hung up (%s)", why)
            self._hangup.set()

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    raw = await self._reader.readline()
                except (ConnectionError, OSError) as exc:
                    self.log.info("connection error: %s", exc)
                    break
                except ValueError:  # longer than MAX_LINE_BYTES
                    self.log.warning("line from Asterisk too long; closing the session")
                    break
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line == "HANGUP":
                    self._mark_hungup("Asterisk sent HANGUP")
                elif not line:
                    continue
                elif self._awaiting:
                    self._lines.put_nowait(line)
                else:
                    # Only a command's response may be queued, so a stray line can never be taken for
                    # the answer to the next command.
                    self.log.warning("ignoring unsolicited line from Asterisk: %r", line[:120])
        finally:
            self._eof = True
            if not self._hangup.is_set():
                self.log.info("FastAGI connection closed by Asterisk")
                self._hangup.set()
            self._lines.put_nowait(None)

    async def _next_line(self) -> str:
        line = await self._lines.get()
        if line is None:
            self._lines.put_nowait(None)  # later readers see the end too
            raise AgiConnectionClosed("FastAGI connection closed")
        return line

    async def _read_response(self) -> AgiResponse:
        first = await self._next_line()
        lines = [first]
        if first.startswith("520-"):
            # Usage text follows, one line at a time, until "520 End of proper usage."
            while not lines[-1].startswith("520 "):
                lines.append(await self._next_line())
        return parse_response(lines)

    # ---- the low-level command ---------------------------------------------------------------------
    async def command(self, text: str, timeout: float | None = DEFAULT_TIMEOUT) -> AgiResponse:
        """Send one AGI command and return Asterisk's response.

        Raises AgiHangup when the channel is gone (before sending, or when Asterisk answers 511),
        AgiConnectionClosed when the connection ends first, AgiTimeout when no answer comes in time.
        510/520 answers are returned, not raised: the helpers decide what they mean.
        """
        if "\n" in text or "\r" in text:
            raise ValueError(f"an AGI command is one line: {text!r}")
        if isinstance(timeout, _Default):
            timeout = self.response_timeout
        async with self._lock:
            if self.closed:
                raise AgiConnectionClosed(f"FastAGI connection closed; not sending {text!r}")
            if self.hungup:
                raise AgiHangup(f"channel hung up; not sending {text!r}")
            self.log.debug(">> %s", text)
            self._awaiting = True
            try:
                try:
                    self._writer.write(text.encode("utf-8") + b"\n")
                    await self._writer.drain()
                except (ConnectionError, OSError, RuntimeError) as exc:
                    self._eof = True
                    self._hangup.set()
                    raise AgiConnectionClosed(f"FastAGI connection lost: {exc}") from exc
                try:
                    response = await asyncio.wait_for(self._read_response(), timeout)
                except asyncio.TimeoutError:
                    # A late answer would be read as the next command's: the session cannot continue.
                    self.log.warning("no answer to %r within %s s; closing the session", text, timeout)
                    await self.close()
                    raise AgiTimeout(f"no answer to {text!r} within {timeout} s") from None
                except AgiProtocolError:
                    await self.close()
                    raise
            finally:
                self._awaiting = False
        self.log.debug("<< %s", " | ".join(response.lines))
        if response.code == 511:
            self._mark_hungup("511 dead channel")
            raise AgiHangup(f"{text!r}: {response.data}")
        return response

    def _check(self, text: str, response: AgiResponse) -> AgiResponse:
        if response.code != 200:
            raise AgiCommandError(f"{text!r} rejected: {' / '.join(response.lines)}", response)
        return response

    async def _run(self, text: str, timeout: float | None = DEFAULT_TIMEOUT) -> AgiResponse:
        return self._check(text, await self.command(text, timeout))

    # ---- helpers -----------------------------------------------------------------------------------
    async def answer(self) -> None:
        response = await self._run("ANSWER")
        if response.result_int == -1:
            if self.hungup:
                raise AgiHangup("ANSWER failed: channel hung up")
            raise AgiCommandError("ANSWER failed", response)

    async def hangup(self) -> None:
        """Hang up the channel. Quietly does nothing when it is already gone."""
        if self.hungup:
            return
        try:
            await self._run("HANGUP")
        except AgiHangup:
            return
        self._mark_hungup("hung up by us")

    async def stream_file(self, name: str, escape_digits: str = "", timeout: float | None = None) -> str:
        """Play a sound file (path without extension); return the escape digit pressed, or "".

        No response timeout by default: the answer comes only when playback ends.
        """
        response = await self._run(f"STREAM FILE {quote(name)} {quote(escape_digits)}", timeout)
        result = response.result_int
        if result > 0:
            return chr(result)
        if result < 0:
            if self.hungup:
                raise AgiHangup(f"caller hung up during {name}")
            # -1 without HANGUP is usually a missing file, but HANGUP may still follow: the next command
            # will tell. A call must go on either way.
            self.log.warning("could not play %s (result=-1)", name)
        return ""

    async def get_data(
        self, prompt: str, timeout_ms: int = 5000, max_digits: int = 1, timeout: float | None = None
    ) -> str:
        """Play `prompt` and collect up to `max_digits` DTMF digits; "" when nothing was pressed."""
        response = await self._run(f"GET DATA {quote(prompt)} {int(timeout_ms)} {int(max_digits)}", timeout)
        if response.result == "-1":
            if self.hungup:
                raise AgiHangup(f"caller hung up during GET DATA {prompt}")
            self.log.warning("GET DATA %s failed (result=-1)", prompt)
            return ""
        return response.result

    async def exec(self, app: str, *args: str, timeout: float | None = None) -> int:
        """Run a dialplan application (Dial, Queue, Playback, ...); return its result code.

        No response timeout by default: Dial or ConfBridge answer only when they end.
        """
        text = f"EXEC {app}" + (f" {quote(','.join(str(a) for a in args))}" if args else "")
        response = await self._run(text, timeout)
        if response.result_int == -2:
            raise AgiCommandError(f"no dialplan application named {app!r}", response)
        return response.result_int

    async def get_variable(self, name: str) -> str | None:
        """A channel variable or dialplan function value; None when it is not set."""
        response = await self._run(f"GET VARIABLE {quote(name)}")
        if response.result_int != 1:
            return None
        return response.data if response.data is not None else ""

    async def set_variable(self, name: str, value: str) -> None:
        await self._run(f"SET VARIABLE {quote(name)} {quote(str(value))}")

    async def set_music(self, on: bool, moh_class: str = "default") -> None:
        """Start or stop music on hold; it plays while the session is idle (e.g. waiting in our queue)."""
        await self._run(f"SET MUSIC ON {quote(moh_class)}" if on else "SET MUSIC OFF")

    async def verbose(self, msg: str, level: int = 1) -> None:
        """Write a line to Asterisk's console / verbose log."""
        await self._run(f"VERBOSE {quote(msg)} {int(level)}")

    def prompt(self, name: str) -> str:
        """Where prompt `name` is for this caller's language: absolute when the server knows the sounds
        directory, else relative to Asterisk's own sounds directory (which adds the language itself)."""
        if self.sounds_dir is None:
            return f"huiyan/{name}"
        return prompt_path(self.sounds_dir, name, prompt_language(self.request.language))


class FastAgiServer:
    """Accepts FastAGI connections and runs `routes[request.script]` for each; unknown scripts get an
    apology and a hang-up."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        node_name: str = "pbx1",
        *,
        sounds_dir: Path | None = None,
        header_timeout: float = 5.0,
        response_timeout: float | None = 30.0,
        error_timeout: float = 30.0,
    ) -> None:
        self.routes: dict[str, Handler] = dict(routes)
        self.host = host
        self._port = port
        self.node_name = node_name
        self.sounds_dir = sounds_dir
        self.header_timeout = header_timeout
        self.response_timeout = response_timeout
        self.error_timeout = error_timeout
        self.sessions_served = 0  # valid requests dispatched to a handler (or to not-found)
        self.protocol_errors = 0  # connections dropped for a malformed or missing header
        self._active = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port once listening (so port=0 works), else the configured one."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def active_sessions(self) -> int:
        return self._active

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self._port, limit=max(MAX_LINE_BYTES, MAX_HEADER_BYTES), backlog=1024
        )
        log.info("FastAGI for %s listening on %s:%d", self.node_name, self.host, self.port)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop listening, give running calls `grace` seconds, then cancel them and close their sockets."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
            log.info("FastAGI for %s stopped", self.node_name)

    async def __aenter__(self) -> "FastAgiServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than asyncio's: stop() can then cancel and await it without asyncio
        # reporting the cancellation as an error.
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            request = await read_request(reader, self.header_timeout)
        except AgiProtocolError as exc:
            self.protocol_errors += 1
            log.warning("dropping FastAGI connection from %s: %s", peer, exc)
            await _close_writer(writer)
            return
        except (ConnectionError, OSError) as exc:
            log.info("FastAGI connection from %s lost before its header: %s", peer, exc)
            await _close_writer(writer)
            return
        except BaseException:
            await _close_writer(writer)
            raise
        session = AgiSession(
            request,
            reader,
            writer,
            node_name=self.node_name,
            response_timeout=self.response_timeout,
            sounds_dir=self.sounds_dir,
        )
        # Counted on arrival, not on completion: whoever watches the counter (a health check, a test that
        # has just seen the call end) must not race the session's last few lines of cleanup.
        self.sessions_served += 1
        self._active += 1
        try:
            session.start()
            await self._run(session)
        finally:
            self._active -= 1
            await session.close()

    async def _run(self, session: AgiSession) -> None:
        script = session.request.script
        handler = self.routes.get(script)
        session.log.info("%s: %s from %s", script or "(no script)", session.request.channel,
                         session.request.callerid or "unknown")
        try:
            if handler is None:
                await self._not_found(session)
            else:
                await handler(session)
                if not (session.closed or session.hungup):
                    await session.set_variable(DONE_VARIABLE, "1")
        except AgiHangup:
            session.log.info("call ended by hang-up")
        except AgiTimeout as exc:
            session.log.warning("%s", exc)
        except Exception:
            session.log.exception("handler for %r failed", script)
            await self._error_exit(session, "exception")

    async def _not_found(self, session: AgiSession) -> None:
        session.log.warning("no FastAGI route for %r (known: %s)", session.request.script,
                            ", ".join(sorted(self.routes)) or "none")
        await self._error_exit(session, "unknown-route")

    async def _error_exit(self, session: AgiSession, reason: str) -> None:
        """Tell the dialplan why (HUIYAN_AGI_ERROR), apologise to the caller, hang up. Best effort only."""
        if session.closed or session.hungup:
            return
        try:
            async with asyncio.timeout(self.error_timeout):
                await session.set_variable(ERROR_VARIABLE, reason)
                await session.set_variable(DONE_VARIABLE, "1")
                # A prompt on an unanswered channel is not heard; ANSWER on an answered one is a no-op.
                await session.answer()
                await session.stream_file(session.prompt(ERROR_PROMPT))
                await session.hangup()
        except AgiHangup:
            pass
        except (AgiError, asyncio.TimeoutError) as exc:
            session.log.warning("could not finish the error exit (%s): %s", reason, exc)


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 2.0)


__all__ = ["AgiSession", "CallLogAdapter", "FastAgiServer", "Handler", "ERROR_VARIABLE", "quote"]
