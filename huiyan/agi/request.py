"""The FastAGI wire format: the `agi_*` request header block, command responses, and protocol errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, unquote

MAX_HEADER_BYTES = 64 * 1024
# Asterisk sends ~25 lines plus one per argument; a few hundred means something else is talking to us.
MAX_HEADER_LINES = 512
REQUIRED_HEADERS = ("agi_network_script", "agi_channel")


class AgiError(Exception):
    """Base class for FastAGI failures."""


class AgiProtocolError(AgiError, ValueError):
    """The peer sent something that is not FastAGI."""


class AgiHangup(AgiError):
    """The channel is gone: Asterisk sent HANGUP or answered 511, or we hung up ourselves."""


class AgiConnectionClosed(AgiHangup):
    """The FastAGI connection closed; for a handler that is the same as the caller hanging up."""


class AgiTimeout(AgiError):
    """Asterisk did not answer a command in time; the session is closed because its state is unknown."""


class AgiCommandError(AgiError):
    """Asterisk rejected a command (510 invalid command, 520 usage) or reported that it failed."""

    def __init__(self, message: str, response: "AgiResponse | None" = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """One FastAGI request, as announced by Asterisk's `agi_*` header lines."""

    network_script: str
    channel: str
    request: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    callerid: str = ""
    calleridname: str = ""
    context: str = ""
    extension: str = ""
    priority: str = ""
    language: str = ""
    type: str = ""
    args: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def script(self) -> str:
        """The route name: `selftest` for `agi://host/selftest?x=1`."""
        path = self.network_script.partition("?")[0]
        return unquote(path).strip("/")

    @property
    def params(self) -> dict[str, str]:
        """The query string of the AGI URL; a repeated key keeps its last value."""
        query = self.network_script.partition("?")[2]
        return dict(parse_qsl(query, keep_blank_values=True))

    def get(self, name: str, default: str | None = None) -> str | None:
        """Any header by name, with or without the `agi_` prefix (agi_dnid, agi_accountcode, ...)."""
        key = name if name.startswith("agi_") else f"agi_{name}"
        return self.raw.get(key, default)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "AgiRequest":
        missing = [h for h in REQUIRED_HEADERS if not headers.get(h)]
        if missing:
            raise AgiProtocolError(f"AGI request lacks required header(s): {', '.join(missing)}")
        numbered: list[tuple[int, str]] = []
        for key, value in headers.items():
            if key.startswith("agi_arg_"):
                suffix = key.removeprefix("agi_arg_")
                if not suffix.isdigit():
                    raise AgiProtocolError(f"bad AGI argument header {key!r}")
                numbered.append((int(suffix), value))
        return cls(
            network_script=headers["agi_network_script"],
            channel=headers["agi_channel"],
            request=headers.get("agi_request", ""),
            uniqueid=headers.get("agi_uniqueid", ""),
            linkedid=headers.get("agi_linkedid", ""),
            callerid=headers.get("agi_callerid", ""),
            calleridname=headers.get("agi_calleridname", ""),
            context=headers.get("agi_context", ""),
            extension=headers.get("agi_extension", ""),
            priority=headers.get("agi_priority", ""),
            language=headers.get("agi_language", ""),
            type=headers.get("agi_type", ""),
            args=tuple(value for _, value in sorted(numbered)),
            raw=MappingProxyType(dict(headers)),
        )


def parse_header_lines(lines: list[bytes]) -> dict[str, str]:
    """Decode `agi_key: value` lines (without the terminating blank line) into a dict."""
    if len(lines) > MAX_HEADER_LINES:
        raise AgiProtocolError(f"AGI header has {len(lines)} lines; at most {MAX_HEADER_LINES} allowed")
    size = sum(len(line) for line in lines)
    if size > MAX_HEADER_BYTES:
        raise AgiProtocolError(f"AGI header is {size} bytes; at most {MAX_HEADER_BYTES} allowed")
    headers: dict[str, str] = {}
    for number, raw_line in enumerate(lines, start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AgiProtocolError(f"AGI header line {number} is not UTF-8: {exc.reason}") from None
        line = line.rstrip("\r\n")
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise AgiProtocolError(f"malformed AGI header line {number}: {shown!r}")
        # Asterisk writes "key: value"; only that one space is syntax, the rest belongs to the value.
        headers[key] = value[1:] if value.startswith(" ") else value
    return headers


def parse_request(block: bytes) -> AgiRequest:
    """Parse a complete header block (lines up to, and optionally including, the blank line)."""
    if len(block) > MAX_HEADER_BYTES:
        raise AgiProtocolError(f"AGI header is {len(block)} bytes; at most {MAX_HEADER_BYTES} allowed")
    lines = block.split(b"\n")
    # Drop everything from the terminating blank line on.
    for index, line in enumerate(lines):
        if not line.strip(b"\r"):
            lines = lines[:index]
            break
    return AgiRequest.from_headers(parse_header_lines(lines))


async def read_request(reader: asyncio.StreamReader, timeout: float = 5.0) -> AgiRequest:
    """Read and parse the header block from a new connection, enforcing size, line and time limits."""

    async def read_lines() -> list[bytes]:
        lines: list[bytes] = []
        size = 0
        while True:
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError) as exc:
                raise AgiProtocolError(f"AGI header line too long: {exc}") from None
            if not line:
                raise AgiProtocolError(f"connection closed after {len(lines)} header line(s), before the blank line")
            if not line.endswith(b"\n"):
                raise AgiProtocolError("connection closed in the middle of a header line")
            if not line.strip(b"\r\n"):
                return lines
            lines.append(line)
            size += len(line)
            # Checked while reading, so a peer cannot make us buffer an unbounded header.
            if size > MAX_HEADER_BYTES:
                raise AgiProtocolError(f"AGI header exceeds {MAX_HEADER_BYTES} bytes")
            if len(lines) > MAX_HEADER_LINES:
                raise AgiProtocolError(f"AGI header exceeds {MAX_HEADER_LINES} lines")

    try:
        lines = await asyncio.wait_for(read_lines(), timeout)
    except asyncio.TimeoutError:
        raise AgiProtocolError(f"no complete AGI header within {timeout:g} s") from None
    return AgiRequest.from_headers(parse_header_lines(lines))


# ---- command responses ------------------------------------------------------------------------------

_RESULT_RE = re.compile(r"^200 result=(?P<result>\S*)(?P<rest>.*)$")
_ENDPOS_RE = re.compile(r"endpos=(-?\d+)")


@dataclass(frozen=True, slots=True)
class AgiResponse:
    """Asterisk's answer to one command. `result` stays a string: GET DATA digits may start with 0."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int:
        """`result` as a number; an empty or non-numeric result counts as 0."""
        try:
            return int(self.result)
        except ValueError:
            return 0


def parse_response(lines: list[str]) -> AgiResponse:
    """Parse one response: a single `200`/`510`/`511` line or a `520-` ... `520 ` usage block."""
    if not lines:
        raise AgiProtocolError("empty AGI response")
    first = lines[0].rstrip("\r\n")
    head = first[:3]
    if not head.isdigit():
        raise AgiProtocolError(f"unexpected line from Asterisk: {first!r}")
    code = int(head)
    if code != 200:
        text = "\n".join(line.rstrip("\r\n") for line in lines)
        return AgiResponse(code=code, data=first[4:], lines=tuple(text.split("\n")))
    match = _RESULT_RE.match(first)
    if match is None:
        raise AgiProtocolError(f"malformed AGI response: {first!r}")
    rest = match["rest"].strip()
    data: str | None = None
    if rest.startswith("("):
        # Data may itself contain parentheses (a variable's value), so take up to the last one.
        close = rest.rfind(")")
        if close == -1:
            data, rest = rest[1:], ""
        else:
            data, rest = rest[1:close], rest[close + 1 :]
    endpos_match = _ENDPOS_RE.search(rest)
    return AgiResponse(
        code=200,
        result=match["result"],
        data=data,
        endpos=int(endpos_match[1]) if endpos_match else None,
        lines=(first,),
    )
