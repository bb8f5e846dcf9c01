"""The dialplan's caller classes are a security boundary: check what each class can reach."""

from __future__ import annotations

import dataclasses
import re

import pytest

from huiyan.dialplan import REACH, DialplanInput, context_for, render_extensions

D = DialplanInput(
    agi_url="agi://127.0.0.1:4573",
    services={"12348": "hotline", "12349": "mediation", "19999": "selftest"},
    internal_pattern="_8XXXX",
    room_pattern="_6XXX",
    trunk_prefix="9",
    trunk_endpoint="legacy",
    unavailable_prompt="/srv/huiyan/sounds/zh/huiyan/unavailable",
)


def _contexts(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            cur = m.group(1)
            out[cur] = []
        elif cur:
            out[cur].append(line)
    return out


def _pattern_matches(pattern: str, number: str) -> bool:
    """Asterisk's extension pattern semantics, enough for the patterns huiyan renders."""
    if not pattern.startswith("_"):
        return pattern == number
    rx = ""
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "X":
            rx += "[0-9]"
        elif c == "Z":
            rx += "[1-9]"
        elif c == "N":
            rx += "[2-9]"
        elif c == ".":
            rx += ".+"
        elif c == "!":
            rx += ".*"
        elif c == "[":
            j = pattern.index("]", i)
            rx += "[" + re.escape(pattern[i + 1:j]).replace("\\-", "-") + "]"
            i = j
        else:
            rx += re.escape(c)
        i += 1
    return re.fullmatch(rx, number) is not None


def reachable(text: str, caller_class: str, number: str) -> bool:
    ctx = _contexts(text)

    def search(name: str, seen: set[str]) -> bool:
        if name in seen:
            return False
        seen.add(name)
        for line in ctx.get(name, []):
            m = re.match(r"^exten => ([^,]+),", line)
            if m and _pattern_matches(m.group(1), number):
                return True
            m = re.match(r"^include => (\S+)", line)
            if m and search(m.group(1), seen):
                return True
        return False

    return search(context_for(caller_class), set())


TEXT = render_extensions(D)
NOT_PUBLIC = ["80001", "81234", "6001", "913800138000", "9", "0043123456", "13800138000", "1234", "123480",
              "*97", "h", "i", "s", "o", "t", "112"]


@pytest.mark.parametrize("cls", ["guest", "citizen"])
@pytest.mark.parametrize("number", NOT_PUBLIC)
def test_public_classes_reach_nothing_but_services(cls: str, number: str) -> None:
    assert not reachable(TEXT, cls, number)


@pytest.mark.parametrize("cls", list(REACH))
@pytest.mark.parametrize("number", ["12348", "12349", "19999"])
def test_every_class_reaches_the_services(cls: str, number: str) -> None:
    assert reachable(TEXT, cls, number)


@pytest.mark.parametrize("cls", ["terminal", "staff"])
def test_internal_classes_reach_extensions_rooms_and_trunk(cls: str) -> None:
    assert reachable(TEXT, cls, "80001")
    assert reachable(TEXT, cls, "6001")
    assert reachable(TEXT, cls, "9075512345")


def test_trunk_callers_reach_rooms_not_extensions_or_the_trunk() -> None:
    assert reachable(TEXT, "trunk", "6001")
    assert not reachable(TEXT, "trunk", "80001")
    assert not reachable(TEXT, "trunk", "9075512345")


def test_services_run_their_route_with_hold_and_retry() -> None:
    ctx = _contexts(TEXT)
    assert "same => n,Set(HUIYAN_ROUTE=hotline)" in ctx["huiyan-public"]
    run = ctx["huiyan-run"]
    assert any("AGI(${HUIYAN_AGI}/${HUIYAN_ROUTE}?number=${EXTEN}" in ln for ln in run)
    # finished on purpose -> hang up; otherwise music, then the same route again, at most max_tries times
    assert any('${HUIYAN_DONE}" = "1"]?end' in ln for ln in run)
    assert any("MusicOnHold(default,5)" in ln for ln in run)
    assert any(ln.endswith("Goto(run)") for ln in run)
    assert any("> 60]?giveup" in ln for ln in run)
    # the run context is never included by a caller class: it is only reached by Goto from a route
    assert not any("include => huiyan-run" in ln for lines in ctx.values() for ln in lines)


def test_no_trunk_route_without_trunk() -> None:
    text = render_extensions(dataclasses.replace(D, trunk_endpoint=None))
    assert not reachable(text, "staff", "9075512345")


@pytest.mark.parametrize("bad", [{"12a48": "hotline"}, {"": "x"}, {"12348": "bad route;"}])
def test_bad_service_definitions_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        render_extensions(dataclasses.replace(D, services=bad))
