"""The rooms at run time on one PBX node: configuration from the database, live state from AMI.

Live state (who is in which room, muted, talking, presenting, recording) is kept from AMI Confbridge*
events and BridgeVideoSourceUpdate, enriched with what the `room` FastAGI flow learnt before the join
(role, video), and rebuilt from ConfbridgeListRooms/ConfbridgeList after every AMI (re)connect, so a
controller restart loses no meeting. Every change goes on the bus as a `RoomEvent`; sessions and
recordings go, in order and off the event loop, to the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from huiyan.aio import BackgroundTasks
from huiyan.bus import EventBus
from huiyan.pbx.outcome import dial_failure
from huiyan.rooms.model import (
    Participant,
    Refusal,
    Role,
    RoomChange,
    RoomNotFound,
    RoomSpec,
    RoomState,
    VideoMode,
)

log = logging.getLogger(__name__)

# Channels ConfBridge adds on its own (the recorder, the announcer): never participants.
INTERNAL_CHANNELS = ("CBRec/", "CBAnn/")
EXPECT_TTL = 120.0  # seconds a flow's note about a joining channel is kept


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """Published on the bus: something happened in a room (joined, left, muted, presenter, ...)."""

    node: str
    room_id: int | None
    number: str
    kind: str
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class RoomsChanged:
    """A room was created, changed or deleted (published by the API after the commit): reload."""

    action: Literal["created", "updated", "deleted"]
    id: int


InvitationStatus = Literal["dialling", "answered", "joined", "left", "failed"]
# OriginateResponse Reason (the AST_CONTROL_* the dial ended with) -> why an invitation failed.
FAILURE_GRACE = 1.0  # seconds a failed Originate waits for its channel's Hangup cause (see _on_originate)


@dataclass
class Invitation:
    """One dial-out into a room. Its id is the uniqueid the invited channel gets (Originate ChannelId)."""

    id: str
    room_id: int
    number: str
    target: str
    dial: str
    role: Role
    name: str = ""
    status: InvitationStatus = "dialling"
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    # What the dial went through, for telling a 603 from an unregistered phone (huiyan.pbx.outcome).
    channel_created: bool = False
    rang: bool = False
    cause: int | None = None
    pending_reason: int | None = None  # a failed Originate waiting for the Hangup cause
    pending: Any = None  # its timer

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "room_id": self.room_id, "number": self.number, "target": self.target,
                "dial": self.dial, "role": self.role.value, "name": self.name, "status": self.status,
                "reason": self.reason, "created_at": self.created_at, "updated_at": self.updated_at}


class RoomStore(Protocol):
    """Persistence, called from worker threads (never on the event loop)."""

    def load(self) -> list[RoomSpec]: ...
    def session_started(self, room_id: int, node: str, bridge_id: str, at: float) -> int: ...
    def session_ended(self, session_id: int, at: float, peak: int) -> None: ...
    def open_sessions(self, node: str) -> dict[int, int]: ...
    def recording_started(self, room_id: int, session_id: int | None, path: str, at: float) -> int: ...
    def recording_stopped(self, recording_id: int, at: float) -> None: ...


class PbxHooks(Protocol):
    """What the service asks of the PBX side (RoomControl): act when a meeting starts, resync."""

    async def conference_started(self, number: str) -> None: ...
    async def resync(self) -> None: ...


@dataclass
class _Expected:
    role: Role
    sends_video: bool | None
    max_streams: int
    invited: bool
    at: float


class RoomService:
    def __init__(self, node_name: str, store: RoomStore, bus: EventBus, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node_name
        self.store = store
        self.bus = bus
        self.clock = clock
        self.rooms: dict[int, RoomSpec] = {}
        self.by_number: dict[str, RoomSpec] = {}
        self.live: dict[str, RoomState] = {}
        self.invitations: dict[str, Invitation] = {}
        self.ending: set[str] = set()  # rooms whose meeting is being ended by a moderator
        self.pending_recording: dict[str, str] = {}  # number -> file of a recording being started
        self.pbx: PbxHooks | None = None
        self._expected: dict[str, _Expected] = {}
        self._sessions: dict[str, int] = {}  # number -> open room_sessions id (written by the writer thread)
        self._recordings: dict[str, int] = {}  # number -> open room_recordings id
        self._jobs: asyncio.Queue[Callable[[], None]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(log, "rooms")

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reload()
        self._jobs = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="rooms-writer")
        open_sessions = await asyncio.to_thread(self.store.open_sessions, self.node)
        by_id = {spec.id: spec.number for spec in self.rooms.values()}
        # Sessions left open by a previous controller: kept if the meeting is still on (resync decides).
        self._sessions = {by_id[r]: s for r, s in open_sessions.items() if r in by_id}

    async def stop(self) -> None:
        self._tasks.cancel_all()
        if self._writer is not None:
            if self._jobs is not None:
                for _ in range(50):  # let queued writes finish (briefly)
                    if self._jobs.empty():
                        break
                    await asyncio.sleep(0.02)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def reload(self) -> None:
        specs = await asyncio.to_thread(self.store.load)
        self.rooms = {s.id: s for s in specs}
        self.by_number = {s.number: s for s in specs}

    # ---- lookups ---------------------------------------------------------------------------------
    def spec(self, room_id: int) -> RoomSpec:
        spec = self.rooms.get(room_id)
        if spec is None:
            raise RoomNotFound(f"no room {room_id}")
        return spec

    def room_by_number(self, number: str) -> RoomSpec | None:
        return self.by_number.get(number)

    def state(self, number: str) -> RoomState:
        spec = self.by_number.get(number)
        state = self.live.get(number)
        if state is None:
            state = self.live[number] = RoomState(number, spec.video_mode if spec else VideoMode.FOLLOW_TALKER)
        elif spec is not None and not state.live:
            state.mode = spec.video_mode  # a meeting keeps the mode it started with; the next one takes the new
        return state

    def view(self, room_id: int) -> dict[str, Any]:
        spec = self.spec(room_id)
        out = self.state(spec.number).view()
        out.update(room_id=spec.id, name=spec.name, kind=spec.kind.value,
                   invitations=[i.view() for i in self.invitations.values() if i.room_id == room_id])
        return out

    # ---- what the flow tells us ------------------------------------------------------------------
    def expect(self, uniqueid: str, *, role: Role, sends_video: bool | None, max_streams: int,
               invited: bool = False) -> None:
        """The flow is about to put this channel into a room: remember what it learnt for the join."""
        now = self.clock()
        self._expected = {k: v for k, v in self._expected.items() if now - v.at < EXPECT_TTL}
        self._expected[uniqueid] = _Expected(role, sends_video, max_streams, invited, now)

    def refused(self, number: str, uniqueid: str, reason: Refusal, caller: str = "") -> None:
        spec = self.by_number.get(number)
        self._publish(spec.id if spec else None, number,
                      [RoomChange("refused", {"id": uniqueid, "reason": reason.value, "caller": caller})])
        inv = self.invitations.get(uniqueid)
        if inv is not None:
            self._invitation(inv, "failed", reason.value)

    def invitation_role(self, uniqueid: str) -> Role | None:
        inv = self.invitations.get(uniqueid)
        return inv.role if inv is not None and inv.status in ("dialling", "answered") else None

    def add_invitation(self, inv: Invitation) -> None:
        self.invitations[inv.id] = inv
        # Bounded: the oldest finished invitations go first.
        if len(self.invitations) > 2000:
            for key in [k for k, v in self.invitations.items() if v.status in ("failed", "left")][:500]:
                self.invitations.pop(key, None)
        self._publish(inv.room_id, inv.number, [RoomChange("invitation", inv.view())])

    def invitation_failed(self, inv_id: str, reason: str) -> None:
        inv = self.invitations.get(inv_id)
        if inv is not None:
            self._invitation(inv, "failed", reason)

    # ---- AMI events (a bus listener) -------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        if isinstance(event, RoomsChanged):
            self._spawn(self.reload())
            return
        kind = type(event).__name__
        if kind == "AmiConnected":
            if self.pbx is not None:
                self._spawn(self.pbx.resync())
            return
        name = getattr(event, "name", None)
        if not name:
            return
        handler = self._HANDLERS.get(name)
        if handler is not None:
            try:
                handler(self, event)
            except Exception:  # noqa: BLE001 - one odd event must not stop the rooms
                log.exception("rooms: could not apply %s", name)

    def _conference(self, event: Any) -> str | None:
        number = event.get("Conference")
        return number if number in self.by_number or number in self.live else None

    def _on_start(self, event: Any) -> None:
        number = self._conference(event)
        if number is None:
            return
        self._apply(number, self.state(number).start(event.get("BridgeUniqueid"), self.clock()))

    def _on_end(self, event: Any) -> None:
        number = self._conference(event)
        if number is not None:
            self._apply(number, self.state(number).end(self.clock()))

    def _on_join(self, event: Any) -> None:
        number = self._conference(event)
        channel = event.get("Channel")
        if number is None or channel.startswith(INTERNAL_CHANNELS):
            return
        uid = event.get("Uniqueid")
        exp = self._expected.pop(uid, None)
        admin = event.get("Admin").lower() == "yes"
        p = Participant(
            id=uid, channel=channel, number=_known(event.get("CallerIDNum")), name=_known(event.get("CallerIDName")),
            role=exp.role if exp else (Role.MODERATOR if admin else Role.PARTICIPANT),
            muted=event.get("Muted").lower() == "yes", sends_video=exp.sends_video if exp else None,
            max_streams=exp.max_streams if exp else 1, invited=exp.invited if exp else uid in self.invitations,
        )
        self._apply(number, self.state(number).join(p, self.clock(), event.get("BridgeUniqueid")))
        inv = self.invitations.get(uid)
        if inv is not None:
            self._invitation(inv, "joined")

    def _on_leave(self, event: Any) -> None:
        number = self._conference(event)
        if number is None:
            return
        uid = event.get("Uniqueid")
        self._apply(number, self.state(number).leave(uid, self.clock()))
        inv = self.invitations.get(uid)
        if inv is not None and inv.status == "joined":
            self._invitation(inv, "left")

    def _on_talking(self, event: Any) -> None:
        number = self._conference(event)
        if number is not None:
            on = event.get("TalkingStatus").lower() == "on"
            self._apply(number, self.state(number).talking(event.get("Uniqueid"), on))

    def _on_mute(self, event: Any) -> None:
        number = self._conference(event)
        if number is not None:
            self._apply(number, self.state(number).muted(event.get("Uniqueid"), event.name == "ConfbridgeMute"))

    def _on_record(self, event: Any) -> None:
        number = self._conference(event)
        if number is None:
            return
        state = self.state(number)
        if event.name == "ConfbridgeStopRecord":
            self._apply(number, state.recording_stopped())
        elif state.recording is None:
            # "" when started outside our control (CLI, another tool): Asterisk does not report the file.
            self._apply(number, state.recording_started(self.pending_recording.pop(number, "")))

    def _on_video_source(self, event: Any) -> None:
        # ConfBridge names its bridge after the conference.
        number = event.get("BridgeName")
        if event.get("BridgeCreator") != "ConfBridge" or number not in self.live:
            return
        self._apply(number, self.state(number).source_changed(event.get("BridgeVideoSource")))

    def _dialling(self, event: Any) -> Invitation | None:
        inv = self.invitations.get(event.get("Uniqueid"))
        return inv if inv is not None and inv.status == "dialling" else None

    def _on_channel(self, event: Any) -> None:
        """Newchannel / Newstate / Hangup of an invited party's channel while it is being dialled."""
        inv = self._dialling(event)
        if inv is None:
            return
        inv.channel_created = True
        if event.name == "Newstate" and event.get("ChannelStateDesc") == "Ringing":
            inv.rang = True
        elif event.name == "Hangup":
            cause = event.get("Cause") or ""
            inv.cause = int(cause) if cause.isdigit() else None
            if inv.pending is not None:
                inv.pending.cancel()
                self._dial_failed(inv)

    def _on_originate(self, event: Any) -> None:
        inv = self._dialling(event)
        if inv is None:
            return
        if event.get("Response") == "Success":
            self._invitation(inv, "answered")
            return
        raw = event.get("Reason") or ""
        inv.pending_reason = int(raw) if raw.isdigit() else None
        if inv.channel_created and inv.cause is None:
            # The channel existed: its Hangup, with the cause that tells declined from busy, is due.
            try:
                inv.pending = asyncio.get_running_loop().call_later(FAILURE_GRACE, self._dial_failed, inv)
                return
            except RuntimeError:
                pass  # no loop (unit tests of the state alone): decide with what is known
        self._dial_failed(inv)

    def _dial_failed(self, inv: Invitation) -> None:
        inv.pending = None
        if inv.status != "dialling":
            return
        self._invitation(inv, "failed", dial_failure(inv.pending_reason, inv.cause,
                                                     channel_created=inv.channel_created, rang=inv.rang))

    _HANDLERS: dict[str, Callable[[RoomService, Any], None]] = {
        "ConfbridgeStart": _on_start,
        "ConfbridgeEnd": _on_end,
        "ConfbridgeJoin": _on_join,
        "ConfbridgeLeave": _on_leave,
        "ConfbridgeTalking": _on_talking,
        "ConfbridgeMute": _on_mute,
        "ConfbridgeUnmute": _on_mute,
        "ConfbridgeRecord": _on_record,
        "ConfbridgeStopRecord": _on_record,
        "BridgeVideoSourceUpdate": _on_video_source,
        "OriginateResponse": _on_originate,
        "Newchannel": _on_channel,
        "Newstate": _on_channel,
        "Hangup": _on_channel,
    }

    # ---- changes made by our own actions (Asterisk reports none for these) ------------------------
    def locked(self, number: str, on: bool) -> None:
        self._apply(number, self.state(number).set_locked(on))

    def presenter(self, number: str, pid: str | None) -> None:
        self._apply(number, self.state(number).set_presenter(pid))

    def recording(self, number: str, path: str | None) -> None:
        state = self.state(number)
        self._apply(number, state.recording_stopped() if path is None else state.recording_started(path))

    def resynced(self, rooms: dict[str, tuple[str, bool, list[Participant]]]) -> None:
        """Replace the live state with what Asterisk reports: number -> (bridge id, locked, participants)."""
        now = self.clock()
        for number, state in list(self.live.items()):
            if state.live and number not in rooms:
                self._apply(number, state.end(now))
        for number, (bridge_id, locked, participants) in rooms.items():
            state = self.state(number)
            present = {p.id for p in participants}
            for pid in [pid for pid in state.participants if pid not in present]:
                self._apply(number, state.leave(pid, now))
            changes = state.start(bridge_id, now)
            for p in participants:
                known = state.participants.get(p.id)
                if known is None:
                    changes += state.join(p, now, bridge_id)
                else:
                    changes += state.muted(p.id, p.muted)
            changes += state.set_locked(locked)
            # Not a new meeting: its standing settings (lock, recording) were applied when it started.
            self._apply(number, changes, hooks=False)
        # Sessions a previous controller left open for rooms no longer in progress: close them.
        for number in [n for n in self._sessions if n not in rooms]:
            self._close_session(number, now)

    # ---- publication and persistence -------------------------------------------------------------
    def _apply(self, number: str, changes: list[RoomChange], hooks: bool = True) -> None:
        if not changes:
            return
        spec = self.by_number.get(number)
        now = self.clock()
        for c in changes:
            if c.kind == "started":
                self.ending.discard(number)
                if spec is not None and number not in self._sessions:
                    self._job(lambda s=spec, b=c.data.get("bridge_id", ""): self._session_started(s, b, now))
                if self.pbx is not None and hooks:
                    self._spawn(self.pbx.conference_started(number))
            elif c.kind == "ended":
                # `ending` stays until the next start: the kicked callers' flows ask for it after this.
                self._close_session(number, now, c.data.get("peak", 0))
            elif c.kind == "recording_started" and spec is not None and c.data.get("path"):
                path = c.data["path"]
                self._job(lambda: self._recording_started(spec, number, path, now))
            elif c.kind == "recording_stopped":
                self._job(lambda: self._recording_stopped(number, now))
        self._publish(spec.id if spec else None, number, changes)

    def _close_session(self, number: str, at: float, peak: int = 0) -> None:
        self._job(lambda: self._session_ended(number, at, peak))

    def _session_started(self, spec: RoomSpec, bridge_id: str, at: float) -> None:
        self._sessions[spec.number] = self.store.session_started(spec.id, self.node, bridge_id, at)

    def _session_ended(self, number: str, at: float, peak: int) -> None:
        sid = self._sessions.pop(number, None)
        if sid is not None:
            self.store.session_ended(sid, at, peak)

    def _recording_started(self, spec: RoomSpec, number: str, path: str, at: float) -> None:
        self._recordings[number] = self.store.recording_started(spec.id, self._sessions.get(number), path, at)

    def _recording_stopped(self, number: str, at: float) -> None:
        rid = self._recordings.pop(number, None)
        if rid is not None:
            self.store.recording_stopped(rid, at)

    def _publish(self, room_id: int | None, number: str, changes: list[RoomChange]) -> None:
        now = self.clock()
        for c in changes:
            self.bus.publish(RoomEvent(self.node, room_id, number, c.kind, c.data, now))

    def _invitation(self, inv: Invitation, status: InvitationStatus, reason: str = "") -> None:
        inv.status, inv.reason, inv.updated_at = status, reason or inv.reason, self.clock()
        self._publish(inv.room_id, inv.number, [RoomChange("invitation", inv.view())])

    def _job(self, job: Callable[[], None]) -> None:
        if self._jobs is None:
            return  # not started (unit tests of the state alone)
        self._jobs.put_nowait(job)

    async def _write_loop(self) -> None:
        assert self._jobs is not None
        while True:
            job = await self._jobs.get()
            for attempt in range(3):
                try:
                    await asyncio.to_thread(job)
                    break
                except Exception:  # noqa: BLE001 - logged; a meeting never stops for the database
                    log.exception("rooms: could not write to the database (attempt %d)", attempt + 1)
                    await asyncio.sleep(0.5)

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)


def _known(value: str) -> str:
    return "" if value in ("<unknown>", None) else value
