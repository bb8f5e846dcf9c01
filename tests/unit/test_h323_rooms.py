"""H.323 room systems in the rooms runtime without Asterisk: the room flow for an OOH323 channel (audio
only, no PJSIP questions), presenter refusal, and dial-out invitations (OOH323 dial strings, audio codecs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from huiyan.agi import FastAgiServer
from huiyan.agi.testing import FakeAsterisk
from huiyan.config.settings import H323Peer, H323Settings, Settings
from huiyan.rooms.control import RoomControl
from huiyan.rooms.flow import room_route
from huiyan.rooms.model import BadH323Target, Participant, RoomConflict, RoomState, VideoMode
from huiyan.rooms.service import RoomService
from tests.unit.test_rooms_service import HOST, StubAmi, _asterisk, ev, join, sounds, svc  # noqa: F401 - fixtures

LEGACY = "OOH323/ccmcu-0"


async def _run_h323(svc: RoomService, sounds: Path, number: str, respond: Any) -> list[str]:
    async with FastAgiServer({"room": room_route(svc)}, HOST, 0, sounds_dir=sounds) as server:
        headers = {"agi_extension": number, "agi_uniqueid": "pbx1-1.9", "agi_language": "zh", "agi_channel": LEGACY,
                   "agi_type": "OOH323", "agi_network_script": "room",
                   "agi_request": f"agi://{HOST}/room?number={number}"}
        async with FakeAsterisk(HOST, server.port, headers=headers, responses=respond, script="room") as fa:
            await fa.wait_closed()
    p = f"{sounds}/zh/huiyan"
    return [c.replace(p + "/", "") for c in fa.commands]


async def test_an_h323_room_system_joins_audio_only_without_pjsip_questions(svc: RoomService, sounds: Path) -> None:
    # Room 6002 has no PIN. Whatever the channel would answer about video, an OOH323 channel sends none.
    respond = _asterisk("", [], {"CHANNEL(videonativeformat)": "(h263)"})
    cmds = await _run_h323(svc, sounds, "6002", respond)
    assert not any("CHANNEL(endpoint)" in c or "PJSIP_ENDPOINT" in c or "videonativeformat" in c for c in cmds)
    assert 'EXEC ConfBridge "6002,huiyan_sfu,huiyan_user,huiyan_menu"' in cmds
    expected = svc._expected["pbx1-1.9"]
    assert expected.sends_video is False and expected.max_streams == 1
    # in an SFU room (and any other) it receives no video: it hears the mixed audio
    svc.on_event(ev("ConfbridgeJoin", Conference="6002", Channel=LEGACY, Uniqueid="pbx1-1.9", CallerIDNum="7100",
                    CallerIDName="ccmcu", BridgeUniqueid="br-6002", Admin="No", Muted="No"))
    view = svc.state("6002").participants["pbx1-1.9"].view(VideoMode.SFU, None)
    assert view["video"] == {"sends": False, "receives": "none", "presenter": False}


async def test_an_h323_room_system_keys_the_pin(svc: RoomService, sounds: Path) -> None:
    cmds = await _run_h323(svc, sounds, "6001", _asterisk("", ["1357"]))  # room 6001's PIN
    assert 'GET DATA "room_pin" 6000 12' in cmds
    assert 'EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_user,huiyan_menu"' in cmds


def test_an_audio_only_participant_cannot_present() -> None:
    s = RoomState("6001", VideoMode.FOLLOW_TALKER)
    s.join(Participant("h", LEGACY, sends_video=False), 1.0)
    s.join(Participant("t", "PJSIP/80001-1", sends_video=True), 1.0)
    with pytest.raises(RoomConflict, match="sends no video"):
        s.check_presenter("h")
    assert s.check_presenter("t").id == "t"  # type: ignore[union-attr]


@pytest_asyncio.fixture(loop_scope="function")
async def h323_ctl(svc: RoomService, tmp_path: Path) -> Any:
    h323 = H323Settings(enabled=True, peers=[H323Peer(name="ccmcu", host="10.20.0.9")])
    settings = Settings(data_dir=tmp_path, h323=h323)
    return RoomControl(svc, StubAmi(), settings)


async def test_h323_invitations_dial_ooh323_with_audio_codecs(h323_ctl: RoomControl) -> None:
    inv = await h323_ctl.invite(7, "h323:6001@10.20.0.9:1720", name="长春市局 H.323 会议室")
    name, fields = h323_ctl.ami.actions[-1]
    assert name == "Originate" and fields["Channel"] == "OOH323/6001@ccmcu" and inv.dial == "OOH323/6001@ccmcu"
    # audio only: chan_ooh323 logs translation ERRORs when it is asked for video formats
    assert fields["Codecs"] == "ulaw,alaw"
    assert fields["Variable"]["HUIYAN_ROUTE"] == "room" and fields["ChannelId"] == inv.id
    # SIP invitations keep asking for video
    await h323_ctl.invite(7, "80002")
    assert "h264" in h323_ctl.ami.actions[-1][1]["Codecs"]


async def test_an_h323_address_the_node_cannot_dial_is_refused_before_dialling(h323_ctl: RoomControl,
                                                                               tmp_path: Path) -> None:
    with pytest.raises(BadH323Target, match="not a configured H.323 room system") as e:
        await h323_ctl.invite(7, "h323:10.20.0.99")
    assert e.value.status == 422 and h323_ctl.ami.actions == []
    off = RoomControl(h323_ctl.service, StubAmi(), Settings(data_dir=tmp_path))
    with pytest.raises(BadH323Target, match="H.323 is not enabled"):
        await off.invite(7, "h323:10.20.0.9")
    assert off.ami.actions == []
