"""The rooms runtime without Asterisk: live state from AMI events, resync, sessions and recordings in the
store, meeting control's AMI actions and error mapping, and the `room` FastAGI flow (PIN, admission,
profiles) against the fake Asterisk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from huiyan.agi import FastAgiServer
from huiyan.agi.testing import FakeAsterisk
from huiyan.bus import EventBus
from huiyan.config.settings import Settings, TrunkSettings
from huiyan.pbx.ami import AmiActionError, AmiResponse
from huiyan.pbx.events import parse_event
from huiyan.prompts import PROMPTS, prompt_file
from huiyan.rooms.control import RoomControl
from huiyan.rooms.flow import room_route
from huiyan.rooms.model import (
    Invitee,
    ParticipantLeft,
    ParticipantNotFound,
    Role,
    RoomConflict,
    RoomNotFound,
    RoomNotLive,
    RoomSpec,
    VideoMode,
)
from huiyan.rooms.service import RoomEvent, RoomService, RoomsChanged

HOST = "127.0.0.1"


class FakeStore:
    def __init__(self, specs: list[RoomSpec]) -> None:
        self.specs = specs
        self.sessions: dict[int, dict[str, Any]] = {}
        self.recordings: dict[int, dict[str, Any]] = {}
        self.open: dict[int, int] = {}

    def load(self) -> list[RoomSpec]:
        return list(self.specs)

    def session_started(self, room_id: int, node: str, bridge_id: str, at: float) -> int:
        sid = len(self.sessions) + 1
        self.sessions[sid] = {"room_id": room_id, "bridge_id": bridge_id, "started": at, "ended": None, "peak": 0}
        return sid

    def session_ended(self, session_id: int, at: float, peak: int) -> None:
        self.sessions[session_id].update(ended=at, peak=peak)

    def open_sessions(self, node: str) -> dict[int, int]:
        return dict(self.open)

    def recording_started(self, room_id: int, session_id: int | None, path: str, at: float) -> int:
        rid = len(self.recordings) + 1
        self.recordings[rid] = {"room_id": room_id, "session_id": session_id, "path": path, "ended": None}
        return rid

    def recording_stopped(self, recording_id: int, at: float) -> None:
        self.recordings[recording_id]["ended"] = at


class StubAmi:
    """Records actions; `errors` maps an action name to Asterisk's error message."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []
        self.errors: dict[str, str] = {}
        self.lists: dict[str, list[dict[str, str]]] = {}

    async def action(self, name: str, **fields: Any) -> AmiResponse:
        self.actions.append((name, fields))
        if name in self.errors:
            resp = AmiResponse("pbx1", name, {"Response": "Error", "Message": self.errors[name]})
            raise AmiActionError(f"{name} failed on node pbx1: {self.errors[name]}", resp)
        return AmiResponse("pbx1", name, {"Response": "Success"})

    async def action_list(self, name: str, **fields: Any) -> list[dict[str, str]]:
        self.actions.append((name, fields))
        if name in self.errors:
            resp = AmiResponse("pbx1", name, {"Response": "Error", "Message": self.errors[name]})
            raise AmiActionError(self.errors[name], resp)
        key = f"{name}:{fields.get('Conference', '')}"
        return self.lists.get(key, self.lists.get(name, []))


ROOM = RoomSpec(id=7, number="6001", name="周例会", pin="1357", moderator_pin="8642",
                moderator_extensions=frozenset({"80001"}), invitees=(Invitee("80002"),))
SFU = RoomSpec(id=8, number="6002", name="调解", video_mode=VideoMode.SFU, record=True)


def ev(name: str, **fields: str) -> Any:
    return parse_event("pbx1", {"Event": name, **fields})


def join(number: str, uid: str, *, admin: str = "No", muted: str = "No") -> Any:
    return ev("ConfbridgeJoin", Conference=number, Channel=f"PJSIP/{uid}-00000001", Uniqueid=uid,
              CallerIDNum=uid, CallerIDName="<unknown>", BridgeUniqueid=f"br-{number}", Admin=admin, Muted=muted)


@pytest_asyncio.fixture(loop_scope="function")
async def svc() -> Any:
    bus = EventBus()
    events: list[Any] = []
    bus.on(events.append)
    store = FakeStore([ROOM, SFU])
    s = RoomService("pbx1", store, bus, clock=lambda: 1000.0)
    await s.start()
    s.test_events = events  # type: ignore[attr-defined]
    yield s
    await s.stop()


def room_events(svc: RoomService, kind: str | None = None) -> list[RoomEvent]:
    return [e for e in svc.test_events if isinstance(e, RoomEvent) and kind in (None, e.kind)]  # type: ignore[attr-defined]


async def settle(svc: RoomService) -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert svc._jobs is not None
    while not svc._jobs.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


# ---- live state from AMI events -----------------------------------------------------------------------


async def test_events_build_the_live_room_and_a_session(svc: RoomService) -> None:
    svc.expect("a", role=Role.MODERATOR, sends_video=True, max_streams=16)
    svc.on_event(ev("ConfbridgeStart", Conference="6001", BridgeUniqueid="br-6001"))
    svc.on_event(join("6001", "a", admin="Yes"))
    svc.on_event(join("6001", "b", muted="Yes"))
    svc.on_event(ev("ConfbridgeJoin", Conference="6001", Channel="CBRec/conf-6001-1", Uniqueid="rec"))
    svc.on_event(join("6999", "x"))  # not one of our rooms
    svc.on_event(ev("ConfbridgeTalking", Conference="6001", Uniqueid="a", TalkingStatus="on"))
    svc.on_event(ev("ConfbridgeUnmute", Conference="6001", Uniqueid="b"))
    view = svc.view(7)
    assert view["live"] and view["name"] == "周例会" and [p["id"] for p in view["participants"]] == ["a", "b"]
    a, b = view["participants"]
    assert a["role"] == "moderator" and a["talking"] and a["video"]["sends"] is True
    assert b["role"] == "participant" and not b["muted"] and b["video"]["sends"] is None and b["name"] == ""
    assert "6999" not in svc.live
    await settle(svc)
    assert svc.store.sessions[1]["room_id"] == 7  # type: ignore[attr-defined]
    svc.on_event(ev("ConfbridgeLeave", Conference="6001", Uniqueid="b"))
    svc.on_event(ev("ConfbridgeLeave", Conference="6001", Uniqueid="a"))
    svc.on_event(ev("ConfbridgeEnd", Conference="6001"))
    await settle(svc)
    assert svc.store.sessions[1]["ended"] == 1000.0 and svc.store.sessions[1]["peak"] == 2  # type: ignore[attr-defined]
    assert [e.kind for e in room_events(svc)] == [
        "started", "joined", "joined", "talking", "unmuted", "left", "left", "ended"]
    assert all(e.room_id == 7 and e.number == "6001" for e in room_events(svc))


async def test_presenter_follows_bridge_video_source_updates_of_our_conferences(svc: RoomService) -> None:
    svc.on_event(join("6001", "a"))
    svc.on_event(join("6001", "b"))
    svc.presenter("6001", "a")
    svc.on_event(ev("BridgeVideoSourceUpdate", BridgeName="6001", BridgeCreator="ConfBridge",
                    BridgeVideoSource="b", BridgePreviousVideoSource="a"))
    svc.on_event(ev("BridgeVideoSourceUpdate", BridgeName="6001", BridgeCreator="other", BridgeVideoSource="a"))
    assert svc.state("6001").presenter == "b"
    assert [e.data["id"] for e in room_events(svc, "presenter")] == ["a", "b"]


async def test_invitations_follow_originate_and_join(svc: RoomService) -> None:
    from huiyan.rooms.service import Invitation

    svc.add_invitation(Invitation("inv1", 7, "6001", "80005", "PJSIP/80005", Role.PARTICIPANT))
    svc.add_invitation(Invitation("inv2", 7, "6001", "80006", "PJSIP/80006", Role.MODERATOR))
    assert svc.invitation_role("inv2") == Role.MODERATOR
    svc.on_event(ev("OriginateResponse", Response="Success", Uniqueid="inv1", Reason="4"))
    # busy: the phone answered 486 (its channel hangs up with cause 17, here before the OriginateResponse)
    svc.on_event(ev("Newchannel", Uniqueid="inv2"))
    svc.on_event(ev("Hangup", Uniqueid="inv2", Cause="17"))
    svc.on_event(ev("OriginateResponse", Response="Failure", Uniqueid="inv2", Reason="0"))
    svc.on_event(join("6001", "inv1"))
    svc.on_event(ev("ConfbridgeLeave", Conference="6001", Uniqueid="inv1"))
    statuses = [(e.data["id"], e.data["status"], e.data["reason"]) for e in room_events(svc, "invitation")]
    assert statuses == [("inv1", "dialling", ""), ("inv2", "dialling", ""), ("inv1", "answered", ""),
                        ("inv2", "failed", "busy"), ("inv1", "joined", ""), ("inv1", "left", "")]
    assert svc.invitation_role("inv2") is None
    assert room_events(svc, "joined")[0].data["invited"] is True


async def test_a_failed_invitation_says_why_declined_is_not_unreachable(svc: RoomService) -> None:
    """On Asterisk 22 a 603 and an unregistered phone both end the Originate with Reason 0: the channel's
    existence and its Hangup cause (which may come after the OriginateResponse) tell them apart."""
    import asyncio

    from huiyan.rooms.service import Invitation

    for inv_id in ("dec", "off", "out"):
        svc.add_invitation(Invitation(inv_id, 7, "6001", "8000" + inv_id, "PJSIP/x", Role.PARTICIPANT))
    # declined: rang, then 603 → cause 21, the Hangup arriving after the OriginateResponse
    svc.on_event(ev("Newchannel", Uniqueid="dec"))
    svc.on_event(ev("Newstate", Uniqueid="dec", ChannelStateDesc="Ringing"))
    svc.on_event(ev("OriginateResponse", Response="Failure", Uniqueid="dec", Reason="0"))
    assert svc.invitations["dec"].status == "dialling"  # waiting for the cause
    svc.on_event(ev("Hangup", Uniqueid="dec", Cause="21"))
    # unregistered: no channel ever existed
    svc.on_event(ev("OriginateResponse", Response="Failure", Uniqueid="off", Reason="0"))
    # rang out: Reason 3 (ringing was the last thing seen), and no Hangup within the grace period
    svc.on_event(ev("Newchannel", Uniqueid="out"))
    svc.on_event(ev("Newstate", Uniqueid="out", ChannelStateDesc="Ringing"))
    svc.on_event(ev("OriginateResponse", Response="Failure", Uniqueid="out", Reason="3"))
    await asyncio.sleep(1.2)
    failed = {e.data["id"]: e.data["reason"] for e in room_events(svc, "invitation") if e.data["status"] == "failed"}
    assert failed == {"dec": "declined", "off": "unreachable", "out": "no_answer"}


async def test_resync_replaces_the_live_state(svc: RoomService) -> None:
    from huiyan.rooms.model import Participant

    svc.on_event(join("6001", "gone"))
    svc.on_event(join("6002", "old"))
    svc.resynced({"6001": ("", True, [Participant("a", "PJSIP/a-1", muted=True),
                                      Participant("b", "PJSIP/b-1")])})
    s1, s2 = svc.state("6001"), svc.state("6002")
    assert set(s1.participants) == {"a", "b"} and s1.locked and s1.participants["a"].muted
    assert not s2.live
    with pytest.raises(Exception, match="already left"):
        s1.participant("gone")


async def test_reload_on_rooms_changed(svc: RoomService) -> None:
    svc.store.specs.append(RoomSpec(id=9, number="6003", name="新会议室"))  # type: ignore[attr-defined]
    svc.on_event(RoomsChanged("created", 9))
    await settle(svc)
    assert svc.room_by_number("6003") is not None and svc.spec(9).name == "新会议室"
    with pytest.raises(RoomNotFound):
        svc.spec(99)


# ---- meeting control -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")
async def ctl(svc: RoomService, tmp_path: Path) -> Any:
    settings = Settings(data_dir=tmp_path, trunk=TrunkSettings(host="10.20.0.5"))
    c = RoomControl(svc, StubAmi(), settings)
    svc.on_event(join("6001", "a"))
    svc.on_event(join("6001", "b"))
    return c


async def test_control_acts_on_the_participants_channel(ctl: RoomControl) -> None:
    svc = ctl.service
    ctl.service.on_event(ev("ConfbridgeMute", Conference="6001", Uniqueid="a"))  # as Asterisk would report
    p = await ctl.mute(7, "a", True)
    assert p.muted and ctl.ami.actions[-1] == ("ConfbridgeMute", {"Conference": "6001", "Channel": "PJSIP/a-00000001"})
    await ctl.lock(7, True)
    assert svc.state("6001").locked and room_events(svc, "locked")
    await ctl.set_presenter(7, "b")
    assert ctl.ami.actions[-1] == ("ConfbridgeSetSingleVideoSrc", {"Conference": "6001", "Channel": "PJSIP/b-00000001"})
    await ctl.release_presenter(7)
    assert [a for a in ctl.ami.actions[-2:]] == [
        ("PlayDTMF", {"Channel": "PJSIP/b-00000001", "Digit": "*", "Receive": "true"}),
        ("PlayDTMF", {"Channel": "PJSIP/b-00000001", "Digit": "6", "Receive": "true"})]
    assert svc.state("6001").presenter is None
    path = await ctl.start_recording(7)
    assert "/recordings/meeting/" in path and path.endswith("-6001.wav")
    assert ctl.ami.actions[-1] == ("ConfbridgeStartRecord", {"Conference": "6001", "RecordFile": path})
    with pytest.raises(RoomConflict, match="already being recorded"):
        await ctl.start_recording(7)
    assert await ctl.stop_recording(7) == path
    await settle(svc)
    rec = svc.store.recordings[1]  # type: ignore[attr-defined]
    assert rec["path"] == path and rec["ended"] is not None and rec["session_id"] == 1
    assert await ctl.end(7) == 2 and ctl.ami.actions[-1][1]["Channel"] == "all" and "6001" in svc.ending


async def test_control_errors_are_clear(ctl: RoomControl) -> None:
    with pytest.raises(RoomNotFound):
        await ctl.mute(99, "a", True)
    with pytest.raises(RoomNotLive):
        await ctl.lock(8, True)  # the SFU room has no meeting now
    with pytest.raises(ParticipantNotFound):
        await ctl.kick(7, "nobody")
    ctl.service.on_event(ev("ConfbridgeLeave", Conference="6001", Uniqueid="b"))
    with pytest.raises(ParticipantLeft, match="already left"):
        await ctl.mute(7, "b", True)
    # left between our check and Asterisk's action: still a 409 with the reason
    ctl.ami.errors["ConfbridgeKick"] = "No Channel by that name found in Conference."
    with pytest.raises(ParticipantLeft, match="no longer in room 6001"):
        await ctl.kick(7, "a")
    ctl.ami.errors["ConfbridgeLock"] = "No Conference by that name found."
    with pytest.raises(RoomNotLive):
        await ctl.lock(7, True)


async def test_invitations_originate_into_the_room_flow(ctl: RoomControl) -> None:
    inv = await ctl.invite(7, "sip:6001@10.20.0.5", name="老会议室")
    name, fields = ctl.ami.actions[-1]
    assert name == "Originate" and fields["Channel"] == "PJSIP/legacy/sip:6001@10.20.0.5"
    assert fields["Context"] == "huiyan-run" and fields["Exten"] == "6001" and fields["ChannelId"] == inv.id
    assert fields["Variable"] == {"HUIYAN_ROUTE": "room", "HUIYAN_CLASS": "invited"} and "h264" in fields["Codecs"]
    assert fields["CallerID"] == '"周例会" <6001>'
    assert ctl.service.invitation_role(inv.id) == Role.PARTICIPANT
    ctl.ami.errors["Originate"] = "Originate failed"
    with pytest.raises(RoomConflict, match="could not dial"):
        await ctl.invite(7, "80009")
    assert [i.status for i in ctl.service.invitations.values()] == ["dialling", "failed"]
    del ctl.ami.errors["Originate"]
    invs = await ctl.invite_all(7)  # the room's invitee list: 80002
    assert [i.target for i in invs] == ["80002"]


async def test_a_meeting_start_applies_the_rooms_standing_settings(ctl: RoomControl) -> None:
    ctl.service.on_event(join("6002", "m"))  # the SFU room records every session
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert [a[0] for a in ctl.ami.actions if a[1].get("Conference") == "6002"] == ["ConfbridgeStartRecord"]
    assert ctl.service.state("6002").recording


async def test_resync_from_asterisk(ctl: RoomControl) -> None:
    ctl.ami.lists["ConfbridgeListRooms"] = [{"Conference": "6001", "Locked": "Yes"}, {"Conference": "9999"}]
    ctl.ami.lists["ConfbridgeList:6001"] = [
        {"Uniqueid": "a", "Channel": "PJSIP/a-00000001", "Admin": "Yes", "Muted": "No"},
        {"Uniqueid": "c", "Channel": "PJSIP/c-00000001", "Admin": "No", "Muted": "Yes", "CallerIDNum": "80003"},
        {"Uniqueid": "r", "Channel": "CBRec/conf-6001", "Admin": "No"},
    ]
    await ctl.resync()
    s = ctl.service.state("6001")
    assert set(s.participants) == {"a", "c"} and s.locked and s.participants["c"].muted
    ctl.ami.errors["ConfbridgeListRooms"] = "No active conferences."
    await ctl.resync()
    assert not ctl.service.state("6001").live


# ---- the room flow over FastAGI ----------------------------------------------------------------------


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    for lang in ("zh", "en"):
        for name in PROMPTS:
            path = prompt_file(tmp_path / "sounds", name, lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    return tmp_path / "sounds"


def _asterisk(endpoint: str, digits: list[str], variables: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    pins = iter(digits)
    variables = {"CHANNEL(endpoint)": endpoint, "CHANNEL(videonativeformat)": "(h264)", **(variables or {})}

    def respond(command: str) -> str:
        if command.startswith("GET DATA"):
            return f"200 result={next(pins)}"
        if command.startswith("GET VARIABLE"):
            name = command.split('"')[1]
            value = variables.get(name)
            return f"200 result=1 ({value})" if value is not None else "200 result=0"
        return "200 result=0"

    return respond


async def _run(svc: RoomService, sounds: Path, number: str, respond: Any, uid: str = "1700000000.5",
               query: str = "") -> list[str]:
    async with FastAgiServer({"room": room_route(svc)}, HOST, 0, sounds_dir=sounds) as server:
        script = f"room?number={number}{query}"
        headers = {"agi_extension": number, "agi_uniqueid": uid, "agi_language": "zh",
                   "agi_network_script": script, "agi_request": f"agi://{HOST}/{script}"}
        async with FakeAsterisk(HOST, server.port, headers=headers, responses=respond, script="room") as fa:
            await fa.wait_closed()
    p = f"{sounds}/zh/huiyan"
    return [c.replace(p + "/", "") for c in fa.commands]


async def test_three_wrong_pins_hear_invalid_then_goodbye(svc: RoomService, sounds: Path) -> None:
    cmds = await _run(svc, sounds, "6001", _asterisk("80009", ["1111", "", "2468"]))
    plays = [c for c in cmds if c.startswith(("GET DATA", "STREAM FILE"))]
    assert plays == ['GET DATA "room_pin" 6000 12', 'STREAM FILE "invalid" ""'] * 3 + ['STREAM FILE "goodbye" ""']
    assert cmds[-1] == "HANGUP" and not any("ConfBridge" in c for c in cmds)
    assert room_events(svc, "refused")[0].data["reason"] == "pin"


async def test_the_moderator_pin_joins_with_the_moderator_profiles(svc: RoomService, sounds: Path) -> None:
    cmds = await _run(svc, sounds, "6001", _asterisk("80009", ["8642"]))
    assert 'EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_moderator,huiyan_moderator_menu"' in cmds
    assert cmds.index('SET VARIABLE "HUIYAN_DONE" "1"') < cmds.index(
        'EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_moderator,huiyan_moderator_menu"')
    assert 'STREAM FILE "room_joining" ""' in cmds
    assert svc._expected["1700000000.5"].role == Role.MODERATOR and svc._expected["1700000000.5"].sends_video


async def test_moderator_users_and_invitees_skip_the_pin(svc: RoomService, sounds: Path) -> None:
    cmds = await _run(svc, sounds, "6001", _asterisk("80001", []))
    assert not any(c.startswith("GET DATA") for c in cmds)
    assert any(c.startswith('EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_moderator,') for c in cmds)
    cmds = await _run(svc, sounds, "6001", _asterisk("80002", []), uid="1700000000.6")
    assert any(c.startswith('EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_user,huiyan_menu"') for c in cmds)


async def test_a_locked_room_refuses_participants(svc: RoomService, sounds: Path) -> None:
    svc.on_event(join("6002", "someone"))
    respond = _asterisk("80009", [], {"CONFBRIDGE_INFO(locked,6002)": "1"})  # locked from a keypad
    cmds = await _run(svc, sounds, "6002", respond)
    assert 'STREAM FILE "room_locked" ""' in cmds and cmds[-1] == "HANGUP"
    assert not any("ConfBridge" in c for c in cmds if c.startswith("EXEC"))
    assert room_events(svc, "refused")[-1].data["reason"] == "locked"


async def test_an_unknown_room_is_unavailable(svc: RoomService, sounds: Path) -> None:
    cmds = await _run(svc, sounds, "6999", _asterisk("80009", []))
    assert cmds == ["ANSWER", 'STREAM FILE "unavailable" ""', "HANGUP"]


async def test_a_recorded_room_says_so_and_the_end_of_the_meeting_is_announced(svc: RoomService, sounds: Path) -> None:
    svc.ending.add("6002")
    cmds = await _run(svc, sounds, "6002", _asterisk("80009", [], {"CONFBRIDGE_RESULT": "KICKED"}))
    plays = [c for c in cmds if c.startswith("STREAM FILE")]
    assert plays == ['STREAM FILE "room_joining" ""', 'STREAM FILE "room_recorded" ""',
                     'STREAM FILE "room_ended" ""']
    assert 'EXEC ConfBridge "6002,huiyan_sfu,huiyan_user,huiyan_menu"' in cmds


# What the huiyan-rooms dialplan puts in the request (huiyan.dialplan: HUIYAN_ARGS).
DIALPLAN_FACTS = "&endpoint={ep}&video=(vp8|h264)&streams=4&locked={locked}"


async def test_a_join_from_the_rooms_dialplan_asks_asterisk_nothing(svc: RoomService, sounds: Path) -> None:
    # The dialplan answered and sent the caller's endpoint, video formats, stream count and the lock state:
    # the only commands of a join are the prompt, the done flag and ConfBridge (Asterisk would answer
    # otherwise, so the fake's variables must not be what decides).
    svc.on_event(join("6001", "someone"))  # the meeting is live: the lock state matters
    respond = _asterisk("wrong", [], {"CHANNEL(videonativeformat)": "(nothing)"})
    cmds = await _run(svc, sounds, "6001", respond, query=DIALPLAN_FACTS.format(ep="80002", locked="0"))
    assert cmds[:3] == ['STREAM FILE "room_joining" ""', 'SET VARIABLE "HUIYAN_DONE" "1"',
                        'EXEC ConfBridge "6001,huiyan_follow_talker,huiyan_user,huiyan_menu"']
    assert not any(c.startswith(("ANSWER", "GET DATA")) for c in cmds)
    assert not any(c.startswith("GET VARIABLE") and "CONFBRIDGE_RESULT" not in c for c in cmds)
    expected = svc._expected["1700000000.5"]
    assert expected.sends_video is True and expected.max_streams == 4 and expected.role == Role.PARTICIPANT


async def test_the_lock_state_from_the_dialplan_refuses_and_a_pin_makes_the_flow_ask_again(
        svc: RoomService, sounds: Path) -> None:
    svc.on_event(join("6002", "someone"))
    cmds = await _run(svc, sounds, "6002", _asterisk("80009", []), query=DIALPLAN_FACTS.format(ep="80009", locked="1"))
    assert 'STREAM FILE "room_locked" ""' in cmds and not any(c.startswith("GET VARIABLE") for c in cmds)
    # Room 6001 has a PIN: keying it takes time, so the lock state the call arrived with is asked again.
    svc.on_event(join("6001", "someone"))
    cmds = await _run(svc, sounds, "6001", _asterisk("80009", ["1357"], {"CONFBRIDGE_INFO(locked,6001)": "1"}),
                      uid="1700000000.6", query=DIALPLAN_FACTS.format(ep="80009", locked="0"))
    assert 'GET VARIABLE "CONFBRIDGE_INFO(locked,6001)"' in cmds and 'STREAM FILE "room_locked" ""' in cmds


def test_caller_facts_from_the_request() -> None:
    from huiyan.rooms.flow import CallerFacts

    assert CallerFacts.from_params({"number": "6001"}) is None  # not from the rooms dialplan: ask
    f = CallerFacts.from_params({"endpoint": "", "video": "(nothing)", "streams": "x", "locked": ""})
    assert f == CallerFacts(endpoint=None, sends_video=False, max_streams=1, locked=False)
    f = CallerFacts.from_params({"endpoint": "80001", "video": "(h264)", "streams": "0", "locked": "1"})
    assert f == CallerFacts(endpoint="80001", sends_video=True, max_streams=1, locked=True)
