"""The recording notice: everyone joining a mediation room hears it before entering the conference (after
the PIN, or straight away when dialled in), in their language; other rooms are unchanged. Run through the
real `room` FastAGI flow against the fake Asterisk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from huiyan.agi import FastAgiServer
from huiyan.agi.testing import FakeAsterisk
from huiyan.bus import EventBus
from huiyan.prompts import PROMPTS, prompt_file
from huiyan.mediation.flow import mediation_route
from huiyan.rooms.flow import room_route
from huiyan.rooms.model import Role, RoomKind, RoomSpec
from huiyan.rooms.service import Invitation, RoomService

HOST = "127.0.0.1"
MEDIATION = RoomSpec(id=1, number="6101", name="远程调解 2026-00001", kind=RoomKind.MEDIATION, pin="135790",
                     record=True, moderator_extensions=frozenset({"80005"}))
MEETING = RoomSpec(id=2, number="6102", name="周例会", record=True, pin="135791")
# A case between sessions: its room is closed (inactive) until the mediator starts the next one.
CLOSED = RoomSpec(id=3, number="6103", name="远程调解 2026-00002", kind=RoomKind.MEDIATION, pin="246802",
                  record=True, active=False)


class Store:
    def load(self) -> list[RoomSpec]:
        return [MEDIATION, MEETING, CLOSED]

    def open_sessions(self, node: str) -> dict[int, int]:
        return {}


@pytest_asyncio.fixture(loop_scope="function")
async def svc() -> Any:
    s = RoomService("pbx1", Store(), EventBus())  # type: ignore[arg-type]
    await s.reload()
    return s


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    for lang in ("zh", "en"):
        for name in PROMPTS:
            path = prompt_file(tmp_path / "sounds", name, lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    return tmp_path / "sounds"


async def _played(svc: RoomService, sounds: Path, number: str, *, endpoint: str, pins: list[str],
                  uid: str = "1700000000.9", lang: str = "zh") -> list[str]:
    digits = iter(pins)
    variables = {"CHANNEL(endpoint)": endpoint, "CHANNEL(videonativeformat)": "(h264)"}

    def respond(command: str) -> str:
        if command.startswith("GET DATA"):
            return f"200 result={next(digits)}"
        if command.startswith("GET VARIABLE"):
            value = variables.get(command.split('"')[1])
            return f"200 result=1 ({value})" if value is not None else "200 result=0"
        return "200 result=0"

    routes = {"room": room_route(svc), "mediation": mediation_route(svc)}
    route = "mediation" if number == "12349" else "room"
    async with FastAgiServer(routes, HOST, 0, sounds_dir=sounds) as server:
        headers = {"agi_extension": number, "agi_uniqueid": uid, "agi_language": lang,
                   "agi_network_script": route, "agi_request": f"agi://{HOST}/{route}?number={number}"}
        async with FakeAsterisk(HOST, server.port, headers=headers, responses=respond, script=route) as fa:
            await fa.wait_closed()
    if route == "mediation":
        confbridges = [c for c in fa.commands if c.startswith("EXEC ConfBridge")]
        assert all("6101" in c for c in confbridges), confbridges  # the case's own room, no other
    base = f"{sounds}/{lang}/huiyan/"
    out = []
    for c in fa.commands:
        if c.startswith(("STREAM FILE", "GET DATA")):
            out.append(c.split('"')[1].replace(base, ""))
        elif c.startswith("EXEC ConfBridge"):
            out.append("ConfBridge")
    return out


async def test_a_party_keys_the_case_pin_then_hears_the_notice_before_the_conference(
        svc: RoomService, sounds: Path) -> None:
    assert await _played(svc, sounds, "6101", endpoint="80009", pins=["135790"]) == [
        "room_pin", "room_joining", "mediation_notice", "ConfBridge"]


async def test_the_mediator_and_a_dialled_lawyer_hear_it_too_and_in_english_when_that_is_their_language(
        svc: RoomService, sounds: Path) -> None:
    assert await _played(svc, sounds, "6101", endpoint="80005", pins=[]) == [
        "room_joining", "mediation_notice", "ConfBridge"]
    svc.add_invitation(Invitation(id="inv-1", room_id=1, number="6101", target="80031", dial="PJSIP/80031",
                                  role=Role.PARTICIPANT, name="律师"))
    assert await _played(svc, sounds, "6101", endpoint="80031", pins=[], uid="inv-1", lang="en") == [
        "room_joining", "mediation_notice", "ConfBridge"]


async def test_a_wrong_pin_never_reaches_the_notice_and_other_rooms_keep_their_own_prompt(
        svc: RoomService, sounds: Path) -> None:
    assert await _played(svc, sounds, "6101", endpoint="80009", pins=["111111", "222222", "333333"]) == [
        "room_pin", "invalid", "room_pin", "invalid", "room_pin", "invalid", "goodbye"]
    assert await _played(svc, sounds, "6102", endpoint="80009", pins=["135791"]) == [
        "room_pin", "room_joining", "room_recorded", "ConfBridge"]


def test_the_notice_is_in_the_catalogue_in_both_languages() -> None:
    zh, en = PROMPTS["mediation_notice"]
    assert "调解" in zh and "录音录像" in zh and "文明" in zh
    assert "mediation" in en and "recorded" in en and en.isascii()


async def test_a_tourist_dials_12349_keys_the_case_pin_and_enters_that_cases_room(
        svc: RoomService, sounds: Path) -> None:
    # An anonymous caller: no endpoint of ours, so no PIN-less role; the case PIN picks the room.
    assert await _played(svc, sounds, "12349", endpoint="anonymous", pins=["", "999999", "135790"]) == [
        "mediation_pin", "invalid", "mediation_pin", "invalid", "mediation_pin",
        "room_joining", "mediation_notice", "ConfBridge"]
    joining = svc._expected  # noqa: SLF001 - the flow told the service who is about to join, as what
    assert [e.role for e in joining.values()] == [Role.PARTICIPANT]


async def test_12349_refuses_a_meeting_pin_three_wrong_pins_and_a_case_between_sessions(
        svc: RoomService, sounds: Path) -> None:
    # A meeting room's PIN is not a case PIN: 12349 only ever leads into mediation rooms.
    assert await _played(svc, sounds, "12349", endpoint="anonymous", pins=["135791", "1", "2"]) == [
        "mediation_pin", "invalid", "mediation_pin", "invalid", "mediation_pin", "invalid", "goodbye"]
    assert await _played(svc, sounds, "12349", endpoint="anonymous", pins=["246802"]) == [
        "mediation_pin", "unavailable"]
