"""Meeting control (会控) through AMI on the node that hosts the room: mute/unmute one or everyone, kick,
lock/unlock, set/release the presenter, start/stop recording, end the meeting, and invite by dial-out.

Every operation checks the room's live state first (a clear 404/409 instead of a PBX error), then acts;
Asterisk's own answer is still mapped (the participant may leave between the check and the action).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huiyan.config.render import TRUNK_ENDPOINT
from huiyan.config.settings import Settings
from huiyan.db.numbering import ExtensionPlan
from huiyan.dialplan import RUN
from huiyan.recordings import target as recording_target
from huiyan.pbx.ami import AmiActionError, AmiError
from huiyan.rooms.h323 import H323Plan
from huiyan.rooms.model import (
    RELEASE_PRESENTER_KEYS,
    Participant,
    ParticipantLeft,
    Role,
    RoomConflict,
    RoomError,
    RoomNotLive,
    RoomSpec,
    RoomState,
    dial_target,
)
from huiyan.rooms.service import INTERNAL_CHANNELS, Invitation, RoomService

log = logging.getLogger(__name__)

INVITE_CODECS = "ulaw,alaw,g722,h264,vp8,opus"  # without Codecs an originated channel carries no video
# chan_ooh323 is audio only, and a video format among the requested ones makes it log translation-path
# ERRORs ("Could not return write format to its original state") at dial time.
H323_INVITE_CODECS = "ulaw,alaw"
CONFIRM_TIMEOUT = 3.0  # how long an operation waits to see Asterisk's event before answering


def _ami_error(exc: Exception, number: str, what: str) -> RoomError:
    """Asterisk's refusal as a room error with a clear reason."""
    msg = str(exc)
    if "No Channel by that name" in msg or "Channel not found" in msg:
        return ParticipantLeft(f"{what}: that participant is no longer in room {number}")
    if "No Conference by that name" in msg or "No active conferences" in msg:
        return RoomNotLive(f"{what}: room {number} has no meeting in progress")
    if "already being recorded" in msg:
        return RoomConflict(f"room {number} is already being recorded")
    return RoomConflict(f"{what} in room {number} refused by the PBX: {msg}")


class RoomControl:
    def __init__(self, service: RoomService, ami: Any, settings: Settings, *,
                 recordings_dir: Path | None = None) -> None:
        self.service = service
        self.ami = ami
        self.settings = settings
        self.recordings_dir = recordings_dir or settings.data_dir / "recordings"
        self.internal = ExtensionPlan.from_pattern(settings.internal_extension_pattern)
        service.pbx = self

    # ---- helpers -------------------------------------------------------------------------------------
    def _live(self, room_id: int) -> tuple[RoomSpec, RoomState]:
        spec = self.service.spec(room_id)
        state = self.service.state(spec.number)
        state.require_live()
        return spec, state

    async def _act(self, action: str, number: str, what: str, **fields: Any) -> None:
        try:
            await self.ami.action(action, **fields)
        except AmiError as exc:
            raise _ami_error(exc, number, what) from exc

    async def _confirm(self, check: Callable[[], bool]) -> bool:
        """Wait (briefly) until Asterisk's event has updated the live state."""
        deadline = asyncio.get_running_loop().time() + CONFIRM_TIMEOUT
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # ---- participants ------------------------------------------------------------------------------
    async def mute(self, room_id: int, pid: str, on: bool) -> Participant:
        spec, state = self._live(room_id)
        p = state.participant(pid)
        await self._act("ConfbridgeMute" if on else "ConfbridgeUnmute", spec.number, "mute" if on else "unmute",
                        Conference=spec.number, Channel=p.channel)
        await self._confirm(lambda: p.muted == on or p.id not in state.participants)
        return p

    async def mute_all(self, room_id: int, on: bool, *, moderators_too: bool = False) -> int:
        """Mute (or unmute) every participant; moderators keep their voice unless `moderators_too`."""
        spec, state = self._live(room_id)
        await self._act("ConfbridgeMute" if on else "ConfbridgeUnmute", spec.number, "mute all",
                        Conference=spec.number, Channel="all" if moderators_too else "participants")
        targets = [p for p in state.participants.values() if moderators_too or p.role != Role.MODERATOR]
        await self._confirm(lambda: all(p.muted == on or p.id not in state.participants for p in targets))
        return len(targets)

    async def kick(self, room_id: int, pid: str) -> None:
        spec, state = self._live(room_id)
        p = state.participant(pid)
        await self._act("ConfbridgeKick", spec.number, "kick", Conference=spec.number, Channel=p.channel)
        await self._confirm(lambda: p.id not in state.participants)

    # ---- the room --------------------------------------------------------------------------------
    async def lock(self, room_id: int, on: bool) -> None:
        """While locked nobody new joins but moderators. ConfBridge reports no event: we publish one."""
        spec, _ = self._live(room_id)
        await self._act("ConfbridgeLock" if on else "ConfbridgeUnlock", spec.number, "lock" if on else "unlock",
                        Conference=spec.number)
        self.service.locked(spec.number, on)

    async def set_presenter(self, room_id: int, pid: str) -> Participant:
        """Make a participant the single video source everyone sees (a terminal sharing its PPT)."""
        spec, state = self._live(room_id)
        p = state.check_presenter(pid)
        assert p is not None
        await self._act("ConfbridgeSetSingleVideoSrc", spec.number, "set presenter", Conference=spec.number,
                        Channel=p.channel)
        self.service.presenter(spec.number, p.id)
        return p

    async def release_presenter(self, room_id: int) -> None:
        """Back to following the talker (or, in a presenter room, to the chair). There is no AMI action for
        it: we play the release keys of the DTMF menu into the presenter's channel."""
        spec, state = self._live(room_id)
        p = state.check_presenter(None)
        assert p is not None
        for digit in RELEASE_PRESENTER_KEYS:
            await self._act("PlayDTMF", spec.number, "release presenter", Channel=p.channel, Digit=digit,
                            Receive="true")
        self.service.presenter(spec.number, None)

    async def start_recording(self, room_id: int) -> str:
        """Record the room's mixed audio (video recording: issue 5) into the recordings directory."""
        spec, state = self._live(room_id)
        if state.recording is not None:
            raise RoomConflict(f"room {spec.number} is already being recorded")
        rec = recording_target(self.recordings_dir, spec.kind.value, spec.number)
        path = str(rec.wav)
        self.service.pending_recording[spec.number] = path
        try:
            await self._act("ConfbridgeStartRecord", spec.number, "start recording", Conference=spec.number,
                            RecordFile=path)
        finally:
            self.service.pending_recording.pop(spec.number, None)
        self.service.recording(spec.number, path)
        return path

    async def stop_recording(self, room_id: int) -> str:
        spec, state = self._live(room_id)
        if state.recording is None:
            raise RoomConflict(f"room {spec.number} is not being recorded")
        path = state.recording
        await self._act("ConfbridgeStopRecord", spec.number, "stop recording", Conference=spec.number)
        self.service.recording(spec.number, None)
        return path

    async def end(self, room_id: int) -> int:
        """End the meeting: everyone hears "the meeting has ended" and is hung up."""
        spec, state = self._live(room_id)
        count = len(state.participants)
        self.service.ending.add(spec.number)
        try:
            await self._act("ConfbridgeKick", spec.number, "end the meeting", Conference=spec.number, Channel="all")
        except RoomError:
            self.service.ending.discard(spec.number)
            raise
        return count

    # ---- invitations -------------------------------------------------------------------------------
    async def invite(self, room_id: int, target: str, *, moderator: bool = False, name: str = "",
                     ring_seconds: int = 30, invitation_id: str | None = None,
                     variables: dict[str, str] | None = None) -> Invitation:
        """Dial a party (an extension, a SIP URI, a phone number via the trunk); when it answers it runs
        the room flow as an invited party: no PIN, straight into the meeting.

        `invitation_id` (the new channel's uniqueid) lets a caller know the invitation before any event
        about it arrives; `variables` are set on the new channel before it dials, e.g.
        `PJSIP_HEADER(add,Call-Info)` for auto-answer (dispatch)."""
        spec = self.service.spec(room_id)
        if not spec.active:
            raise RoomConflict(f"room {spec.number} is deactivated")
        trunk = self.settings.trunk
        dial = dial_target(target, internal=self.internal, trunk_endpoint=TRUNK_ENDPOINT if trunk.host else None,
                           trunk_host=trunk.host, h323=H323Plan.from_settings(self.settings.h323))
        inv = Invitation(id=invitation_id or f"{self.service.node}-room{spec.number}-{uuid.uuid4().hex[:12]}",
                         room_id=spec.id,
                         number=spec.number, target=target.strip(), dial=dial,
                         role=Role.MODERATOR if moderator else Role.PARTICIPANT, name=name)
        self.service.add_invitation(inv)
        try:
            await self.ami.action(
                "Originate", Channel=dial, Context=RUN, Exten=spec.number, Priority=1, Async="true",
                ChannelId=inv.id, CallerID=f'"{spec.name}" <{spec.number}>', Timeout=str(ring_seconds * 1000),
                Codecs=H323_INVITE_CODECS if dial.startswith("OOH323/") else INVITE_CODECS,
                Variable={**(variables or {}), "HUIYAN_ROUTE": "room", "HUIYAN_CLASS": "invited"},
            )
        except AmiError as exc:
            self.service.invitation_failed(inv.id, str(exc))
            raise RoomConflict(f"could not dial {target}: {exc}") from exc
        return inv

    async def invite_all(self, room_id: int, ring_seconds: int = 30) -> list[Invitation]:
        """Dial every invitee of the room at once (those already in the meeting are skipped)."""
        spec = self.service.spec(room_id)
        state = self.service.state(spec.number)
        present = {p.number for p in state.participants.values()}
        out = []
        for invitee in spec.invitees:
            if invitee.target in present:
                continue
            out.append(await self.invite(room_id, invitee.target, moderator=invitee.moderator, name=invitee.name,
                                         ring_seconds=ring_seconds))
        return out

    # ---- hooks the service calls -------------------------------------------------------------------
    async def conference_started(self, number: str) -> None:
        """A meeting began: apply the room's standing settings (lock, automatic recording)."""
        spec = self.service.room_by_number(number)
        if spec is None:
            return
        try:
            if spec.locked:
                await self.lock(spec.id, True)
            if spec.record and self.service.state(number).recording is None:
                await self.start_recording(spec.id)
        except RoomError as exc:
            log.warning("room %s: could not apply its settings at start: %s", number, exc)

    async def resync(self) -> None:
        """Rebuild every room's live state from Asterisk (after a controller restart or AMI reconnect)."""
        try:
            try:
                listed = await self.ami.action_list("ConfbridgeListRooms")
            except AmiActionError:
                listed = []  # "No active conferences."
            rooms: dict[str, tuple[str, bool, list[Participant]]] = {}
            for row in listed:
                number = row.get("Conference", "")
                if self.service.room_by_number(number) is None:
                    continue
                try:
                    items = await self.ami.action_list("ConfbridgeList", Conference=number)
                except AmiActionError:
                    continue  # ended meanwhile
                people = [
                    Participant(id=i.get("Uniqueid", ""), channel=i.get("Channel", ""),
                                number=i.get("CallerIDNum", "").replace("<unknown>", ""),
                                name=i.get("CallerIDName", "").replace("<unknown>", ""),
                                role=Role.MODERATOR if i.get("Admin") == "Yes" else Role.PARTICIPANT,
                                muted=i.get("Muted") == "Yes", talking=i.get("Talking") == "Yes")
                    for i in items if i.get("Uniqueid") and not i.get("Channel", "").startswith(INTERNAL_CHANNELS)
                ]
                rooms[number] = ("", row.get("Locked") == "Yes", people)
        except AmiError as exc:
            log.warning("rooms: resync failed: %s", exc)
            return
        self.service.resynced(rooms)
        log.info("rooms: resynced %d live room(s)", len(rooms))
