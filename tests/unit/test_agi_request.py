"""FastAGI wire format: header block parsing, limits, and command response parsing."""

from __future__ import annotations

import asyncio

import pytest

from huiyan.agi.request import (
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    AgiProtocolError,
    AgiRequest,
    parse_request,
    parse_response,
    read_request,
)

HEADER = (
    b"agi_network: yes\n"
    b"agi_network_script: hotline?number=12348&class=citizen\n"
    b"agi_request: agi://127.0.0.1:4573/hotline?number=12348&class=citizen\n"
    b"agi_channel: PJSIP/caller-00000001\n"
    b"agi_language: zh\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: 1700000000.7\n"
    b"agi_version: 22.10.1\n"
    b"agi_callerid: 13800138000\n"
    b"agi_calleridname: \xe5\xbc\xa0\xe4\xb8\x89\n"
    b"agi_context: from-citizens\n"
    b"agi_extension: 12348\n"
    b"agi_priority: 2\n"
    b"agi_accountcode: \n"
    b"agi_linkedid: 1700000000.6\n"
    b"agi_arg_2: second\n"
    b"agi_arg_1: first, with comma\n"
    b"agi_arg_10: tenth\n"
    b"\n"
)


def test_parses_all_named_fields_and_keeps_raw() -> None:
    req = parse_request(HEADER)
    assert req.channel == "PJSIP/caller-00000001"
    assert req.uniqueid == "1700000000.7"
    assert req.linkedid == "1700000000.6"
    assert req.callerid == "13800138000"
    assert req.calleridname == "张三"
    assert (req.context, req.extension, req.priority) == ("from-citizens", "12348", "2")
    assert (req.language, req.type) == ("zh", "PJSIP")
    # The value itself contains ':' and must survive whole.
    assert req.request == "agi://127.0.0.1:4573/hotline?number=12348&class=citizen"
    assert req.raw["agi_version"] == "22.10.1"
    assert req.raw["agi_accountcode"] == ""
    assert req.get("network") == "yes" and req.get("agi_network") == "yes"
    assert req.get("nope") is None


def test_script_params_and_args() -> None:
    req = parse_request(HEADER)
    assert req.script == "hotline"
    assert req.params == {"number": "12348", "class": "citizen"}
    # Numeric order, not text or arrival order.
    assert req.args == ("first, with comma", "second", "tenth")


@pytest.mark.parametrize(
    ("network_script", "script", "params"),
    [
        ("selftest", "selftest", {}),
        ("/selftest", "selftest", {}),
        ("/rooms/6001?pin=12%2034&x=", "rooms/6001", {"pin": "12 34", "x": ""}),
        ("hot%20line?a=1&a=2", "hot line", {"a": "2"}),
    ],
)
def test_script_strips_slash_and_query(network_script: str, script: str, params: dict[str, str]) -> None:
    req = AgiRequest.from_headers({"agi_network_script": network_script, "agi_channel": "PJSIP/x-1"})
    assert req.script == script
    assert req.params == params
    assert req.args == ()


def test_request_is_frozen_and_hashable() -> None:
    req = parse_request(HEADER)
    with pytest.raises(AttributeError):
        req.channel = "other"  # type: ignore[misc]
    assert hash(req) == hash(parse_request(HEADER))


def test_crlf_line_endings_are_accepted() -> None:
    req = parse_request(HEADER.replace(b"\n", b"\r\n"))
    assert req.channel == "PJSIP/caller-00000001"
    assert req.script == "hotline"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"GET / HTTP/1.1\nHost: x\n\n", "malformed AGI header line 1"),
        (b"agi_channel: PJSIP/a-1\n\n", "agi_network_script"),
        (b"agi_network_script: selftest\n\n", "agi_channel"),
        (b"agi_network_script: selftest\nagi_channel: PJSIP/a-1\n: no key\n\n", "malformed AGI header line 3"),
        (b"agi_network_script: selftest\nagi_channel: PJSIP/\xff\xfe\n\n", "not UTF-8"),
        (b"agi_network_script: selftest\nagi_channel: PJSIP/a-1\nagi_arg_x: 1\n\n", "bad AGI argument"),
    ],
)
def test_malformed_headers_raise_a_clear_error(block: bytes, message: str) -> None:
    with pytest.raises(AgiProtocolError, match=message):
        parse_request(block)


def test_header_size_limit() -> None:
    big = b"agi_network_script: selftest\nagi_channel: PJSIP/a-1\nagi_arg_1: " + b"x" * MAX_HEADER_BYTES + b"\n\n"
    with pytest.raises(AgiProtocolError, match="bytes"):
        parse_request(big)


def test_header_line_count_limit() -> None:
    lines = b"".join(b"agi_arg_%d: a\n" % i for i in range(1, MAX_HEADER_LINES + 2))
    with pytest.raises(AgiProtocolError, match="lines"):
        parse_request(b"agi_network_script: s\nagi_channel: PJSIP/a-1\n" + lines + b"\n")


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_read_request_stops_at_blank_line() -> None:
    reader = _reader(HEADER + b"200 result=0\n")
    req = await read_request(reader)
    assert req.script == "hotline"
    # What follows the header is left for the session.
    assert await reader.readline() == b"200 result=0\n"


async def test_read_request_eof_before_blank_line() -> None:
    with pytest.raises(AgiProtocolError, match="before the blank line"):
        await read_request(_reader(b"agi_network_script: selftest\nagi_channel: PJSIP/a-1\n"))


async def test_read_request_times_out() -> None:
    with pytest.raises(AgiProtocolError, match="within 0.05 s"):
        await read_request(_reader(b"agi_network_script: selftest\n", eof=False), timeout=0.05)


async def test_read_request_refuses_endless_header_without_buffering_it() -> None:
    reader = _reader(b"agi_arg_1: xxxxxxxxxxxxxxxx\n" * 5000, eof=False)
    with pytest.raises(AgiProtocolError, match="exceeds"):
        await read_request(reader, timeout=1)


# ---- responses -------------------------------------------------------------------------------------


def test_response_result_only() -> None:
    r = parse_response(["200 result=0"])
    assert (r.code, r.result, r.data, r.endpos, r.ok, r.result_int) == (200, "0", None, None, True, 0)


def test_response_with_endpos() -> None:
    r = parse_response(["200 result=49 endpos=11840"])
    assert (r.result_int, r.endpos, r.data) == (49, 11840, None)


def test_response_data_keeps_inner_parentheses() -> None:
    r = parse_response(["200 result=1 (张三 (guest) 13800138000)"])
    assert r.result_int == 1
    assert r.data == "张三 (guest) 13800138000"


def test_response_get_data_timeout_keeps_leading_zero_and_empty() -> None:
    assert parse_response(["200 result=0123 (timeout)"]).result == "0123"
    empty = parse_response(["200 result= (timeout)"])
    assert (empty.result, empty.data, empty.result_int) == ("", "timeout", 0)


def test_response_negative_result() -> None:
    r = parse_response(["200 result=-1 endpos=0"])
    assert (r.result_int, r.endpos) == (-1, 0)


def test_error_responses() -> None:
    invalid = parse_response(["510 Invalid or unknown command"])
    assert (invalid.code, invalid.ok, invalid.data) == (510, False, "Invalid or unknown command")
    dead = parse_response(["511 Command Not Permitted on a dead channel or intercept routine"])
    assert dead.code == 511
    usage = parse_response(
        [
            "520-Invalid command syntax.  Proper usage follows:",
            "Usage: STREAM FILE <filename> <escape digits> [sample offset]",
            "520 End of proper usage.",
        ]
    )
    assert usage.code == 520
    assert len(usage.lines) == 3
    assert usage.lines[1].startswith("Usage: STREAM FILE")


@pytest.mark.parametrize("line", ["HELLO", "200 ok", ""])
def test_garbage_response_raises(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_response([line] if line else [])
