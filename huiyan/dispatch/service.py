"""The dispatches at run time on one PBX node: one click dials every terminal of a group into the emergency
room at once, each leg is followed from AMI events (Newchannel, Newstate, Hangup, OriginateResponse,
ConfbridgeJoin/Leave of its own channel id), failures are classified and retried per the dispatch's
policy, and the commander adds or drops parties and ends it all with one call.

Every leg change goes on the bus as a `DispatchEvent` (and so to the event WebSocket) and, in order and off
the event loop, to the database, so a restarted controller shows the last known state and carries on:
pending legs are dialled, scheduled retries rescheduled, and legs reconciled with the room's live state.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from huiyan.aio import BackgroundTasks
from huiyan.bus import EventBus
from huiyan.db.errors import NotFound
from huiyan.dispatch.model import (
    DIALLING,
    IN_CALL,
    DispatchError,
    DispatchNotFound,
    DispatchState,
    Leg,
    LegStatus,
    RetryPolicy,
    auto_answer_variables,
)
from huiyan.pbx.ami import AmiError
from huiyan.rooms.model import RoomError
from huiyan.rooms.service import RoomsChanged, RoomService

log = logging.getLogger(__name__)

FAILURE_GRACE = 1.0  # seconds an OriginateResponse failure waits for its channel's Hangup cause
ENDED_KEPT = 100  # ended dispatches kept in memory (older ones are read from the database)


@dataclass(frozen=True, slots=True)
class DispatchEvent:
    """Published on the bus: a dispatch started ("started") or ended ("ended"), or one of its legs changed
    ("leg", with the leg's view: status ringing/answered/joined/busy/declined/unreachable/...)."""

    node: str
    dispatch_id: int
    room_id: int
    kind: str
    data: dict[str, Any]
    at: float


class DispatchStore(Protocol):
    """Persistence, called from worker threads (never on the event loop)."""

    def create(self, *, group_id: int, commander_user_id: int | None, node: str, policy: RetryPolicy,
               name: str | None = None, auto_answer: bool = True) -> DispatchState: ...
    def add_leg(self, dispatch_id: int, **party: Any) -> Leg: ...
    def save_legs(self, legs: list[Leg]) -> None: ...
    def ended(self, dispatch_id: int, at: float) -> None: ...
    def load(self, dispatch_id: int) -> DispatchState: ...
    def load_active(self, node: str) -> list[DispatchState]: ...
    def recordings(self, room_id: int) -> list[dict[str, Any]]: ...


class Dialer(Protocol):
    """What the service asks of meeting control (`RoomControl`)."""

    async def invite(self, room_id: int, target: str, *, moderator: bool = False, name: str = "",
                     ring_seconds: int = 30, invitation_id: str | None = None,
                     variables: dict[str, str] | None = None) -> Any: ...
    async def stop_recording(self, room_id: int) -> str: ...
    async def end(self, room_id: int) -> int: ...


class DispatchService:
    def __init__(self, node_name: str, store: DispatchStore, bus: EventBus, rooms: RoomService, *,
                 public_host: str, clock: Callable[[], float] = time.time,
                 failure_grace: float = FAILURE_GRACE) -> None:
        self.node = node_name
        self.store = store
        self.bus = bus
        self.rooms = rooms
        self.public_host = public_host
        self.clock = clock
        self.failure_grace = failure_grace
        self.control: Dialer | None = None
        self.ami: Any = None
        self.dispatches: dict[int, DispatchState] = {}  # the active ones, and the last few ended
        self.by_channel: dict[str, tuple[int, int]] = {}  # an attempt's channel id -> (dispatch id, leg id)
        self._timers: dict[int, asyncio.TimerHandle] = {}  # leg id -> its next retry
        # leg id -> a failure waiting for its Hangup cause: (timer, the OriginateResponse Reason)
        self._deferred: dict[int, tuple[asyncio.TimerHandle, int | None]] = {}
        self._jobs: asyncio.Queue[Callable[[], None]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(log, "dispatch")
        self._stopped = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def attach(self, control: Dialer, ami: Any) -> None:
        """The PBX side: meeting control (dial-out, end) and the AMI client of this node."""
        self.control, self.ami = control, ami

    async def start(self) -> None:
        """Load the dispatches still active on this node and carry on with them (after the rooms resynced)."""
        self._jobs = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="dispatch-writer")
        for d in await asyncio.to_thread(self.store.load_active, self.node):
            self.dispatches[d.id] = d
            for leg in d.legs.values():
                if leg.channel_id and not leg.final:
                    self.by_channel[leg.channel_id] = (d.id, leg.id)
            if self.control is not None:
                self._resume(d)
        if self.dispatches:
            log.info("dispatch: carrying on with %d active dispatch(es)", len(self.dispatches))

    async def stop(self) -> None:
        # Scheduled retries stay in the database (retry_at): the next controller dials them.
        self._stopped = True
        for handle in [*self._timers.values(), *(h for h, _ in self._deferred.values())]:
            handle.cancel()
        self._tasks.cancel_all()
        if self._writer is not None:
            if self._jobs is not None:
                for _ in range(100):  # let queued writes finish (briefly)
                    if self._jobs.empty():
                        break
                    await asyncio.sleep(0.02)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    def _resume(self, d: DispatchState) -> None:
        now = self.clock()
        present = set(self.rooms.state(d.room_number).participants)
        for leg in d.legs.values():
            changed = False
            if leg.status == LegStatus.JOINED and leg.channel_id not in present:
                changed = leg.left(now)
                leg.reason = "left while the controller was away"
            elif leg.status in (*DIALLING, LegStatus.ANSWERED) and leg.channel_id in present:
                changed = leg.joined(now)
            if changed:
                self._changed(d, leg)
            if leg.status == LegStatus.PENDING:
                self._spawn(self._dial(d, leg))
            elif leg.retry_at is not None:
                self._schedule(d, leg)

    # ---- operations --------------------------------------------------------------------------------
    def _dialer(self) -> Dialer:
        if self.control is None:
            raise DispatchError("no PBX connection: cannot dial")
        return self.control

    async def get(self, dispatch_id: int) -> DispatchState:
        d = self.dispatches.get(dispatch_id)
        if d is not None:
            return d
        try:
            return await asyncio.to_thread(self.store.load, dispatch_id)
        except NotFound as exc:
            raise DispatchNotFound(str(exc)) from exc

    async def dispatch(self, group_id: int, *, commander_user_id: int | None, policy: RetryPolicy,
                       name: str | None = None, auto_answer: bool = True) -> DispatchState:
        """One click: the emergency room, then every terminal of the group dialled at once."""
        self._dialer()
        d = await asyncio.to_thread(self.store.create, group_id=group_id, commander_user_id=commander_user_id,
                                    node=self.node, policy=policy, name=name, auto_answer=auto_answer)
        self.dispatches[d.id] = d
        await self.rooms.reload()  # the new room must be known before its first invited party answers
        self.bus.publish(RoomsChanged("created", d.room_id))
        self._publish(d, "started", {"name": d.name, "room_number": d.room_number, "legs": len(d.legs)})
        log.info("dispatch %s: %s, %d parties into room %s", d.id, d.name, len(d.legs), d.room_number)
        await asyncio.gather(*(self._dial(d, leg) for leg in list(d.legs.values())))
        return d

    async def add_party(self, dispatch_id: int, **party: Any) -> Leg:
        """Call one more party into the dispatch (device_id, user_id or target; name; auto_answer)."""
        self._dialer()
        d = await self.get(dispatch_id)
        d.require_active()
        await self._drain()  # the store checks "already called" against what we have written
        leg = await asyncio.to_thread(self.store.add_leg, dispatch_id, **party)
        d.legs[leg.id] = leg
        if not d.active:  # ended while the leg was being written
            leg.close(self.clock())
        self._changed(d, leg)
        d.require_active()
        await self._dial(d, leg)
        return leg

    async def drop(self, dispatch_id: int, leg_id: int) -> Leg:
        """Hang up one leg (or cancel its next retry)."""
        d = await self.get(dispatch_id)
        d.require_active()
        leg = d.leg(leg_id)
        channel = leg.channel_id if leg.status in IN_CALL else ""
        leg.drop(self.clock())
        self._cancel(leg.id)
        self._changed(d, leg)
        if channel:
            await self._hangup(channel)
        return leg

    async def end(self, dispatch_id: int) -> DispatchState:
        """End everything: pending retries, every leg, the recording and the room's meeting."""
        d = await self.get(dispatch_id)
        d.require_active()
        in_call = [leg.channel_id for leg in d.legs.values() if leg.status in IN_CALL]
        for leg in d.legs.values():
            self._cancel(leg.id)
        now = self.clock()
        for leg in d.end(now):
            self._changed(d, leg)
        state = self.rooms.state(d.room_number)
        in_room = set(state.participants)
        if state.live and self.control is not None:
            try:
                if state.recording is not None:
                    await self.control.stop_recording(d.room_id)
                await self.control.end(d.room_id)  # everyone hears "the meeting has ended"
            except RoomError as exc:
                log.warning("dispatch %s: ending room %s: %s", d.id, d.room_number, exc)
        for channel in in_call:
            if channel not in in_room:  # still ringing, or answered and not yet in the room
                await self._hangup(channel)
        self._job(lambda: self.store.ended(d.id, now))
        await self._drain()
        await self.rooms.reload()  # the room is deactivated: nobody rejoins an ended dispatch
        self.bus.publish(RoomsChanged("updated", d.room_id))
        self._publish(d, "ended", {"counts": d.counts()})
        self._prune()  # its channels stay known a while: a call that still gets through is hung up
        log.info("dispatch %s ended: %s", d.id, d.counts())
        return d

    async def view(self, dispatch_id: int) -> dict[str, Any]:
        d = await self.get(dispatch_id)
        out = d.view()
        state = self.rooms.state(d.room_number)
        spec = self.rooms.rooms.get(d.room_id)
        out["room"] = {"id": d.room_id, "number": d.room_number, "pin": spec.pin if spec else None,
                       "live": state.live, "participants": len(state.participants), "recording": state.recording}
        out["recordings"] = await asyncio.to_thread(self.store.recordings, d.room_id)
        return out

    # ---- dialling ----------------------------------------------------------------------------------
    async def _dial(self, d: DispatchState, leg: Leg) -> None:
        if not d.active or leg.final or leg.status in IN_CALL or self.control is None:
            return
        self._cancel(leg.id)
        self.by_channel.pop(leg.channel_id, None)
        channel_id = f"{self.node}-dispatch{d.id}-leg{leg.id}-{leg.attempts + 1}-{uuid.uuid4().hex[:6]}"
        leg.dialling(channel_id, self.clock())
        self.by_channel[channel_id] = (d.id, leg.id)
        self._changed(d, leg)
        p = leg.party
        try:
            # The commander calling themselves in chairs the room (invited parties otherwise join as participants).
            await self.control.invite(d.room_id, p.target, name=p.name, ring_seconds=d.policy.ring_seconds,
                                      moderator=p.user_id is not None and p.user_id == d.commander_user_id,
                                      invitation_id=channel_id,
                                      variables=auto_answer_variables(self.public_host) if p.auto_answer else None)
        except RoomError as exc:  # a target we cannot dial, the room gone, or Asterisk refused the Originate
            if leg.channel_id == channel_id and leg.outcome(LegStatus.FAILED, d.policy, self.clock(), str(exc)):
                self._changed(d, leg)
                self._schedule(d, leg)

    def _schedule(self, d: DispatchState, leg: Leg) -> None:
        if leg.retry_at is None or self._stopped:
            return
        self._cancel(leg.id)
        delay = max(0.0, leg.retry_at - self.clock())
        self._timers[leg.id] = asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(self._retry(d.id, leg.id)))

    async def _retry(self, dispatch_id: int, leg_id: int) -> None:
        self._timers.pop(leg_id, None)
        d = self.dispatches.get(dispatch_id)
        leg = d.legs.get(leg_id) if d is not None else None
        if d is not None and leg is not None and d.active and leg.retry_at is not None:
            log.info("dispatch %s: retrying %s (%s, attempt %d)", d.id, leg.party.target, leg.status.value,
                     leg.attempts + 1)
            await self._dial(d, leg)

    def _cancel(self, leg_id: int) -> None:
        handle = self._timers.pop(leg_id, None)
        if handle is not None:
            handle.cancel()
        deferred = self._deferred.pop(leg_id, None)
        if deferred is not None:
            deferred[0].cancel()

    async def _hangup(self, channel: str) -> None:
        if self.ami is None:
            return
        try:
            await self.ami.action("Hangup", Channel=channel, Cause=16)
        except AmiError as exc:  # gone already
            log.debug("dispatch: hang-up of %s: %s", channel, exc)

    # ---- AMI events (a bus listener) ------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        name = getattr(event, "name", None)
        if name not in self._HANDLED or self._stopped:
            return
        key = self.by_channel.get(event.get("Uniqueid"))
        if key is None:
            return
        d = self.dispatches.get(key[0])
        leg = d.legs.get(key[1]) if d is not None else None
        if d is None or leg is None or leg.channel_id != event.get("Uniqueid"):
            return
        try:
            self._apply(d, leg, name, event)
        except Exception:  # noqa: BLE001 - one odd event must not stop the dispatch
            log.exception("dispatch %s: could not apply %s", d.id, name)

    _HANDLED = frozenset({"Newchannel", "Newstate", "Hangup", "OriginateResponse", "ConfbridgeJoin",
                          "ConfbridgeLeave"})

    def _apply(self, d: DispatchState, leg: Leg, name: str, event: Any) -> None:
        now = self.clock()
        if leg.status in (LegStatus.DROPPED, LegStatus.CANCELLED) or not d.active:
            # A call we hung up (or cancelled while its Originate was under way) shows signs of life.
            alive = name in ("Newchannel", "ConfbridgeJoin") or (
                name == "OriginateResponse" and event.get("Response") == "Success") or (
                name == "Newstate" and event.get("ChannelStateDesc") in ("Ringing", "Up"))
            if alive:
                self._spawn(self._hangup(leg.channel_id))
            return
        changed = False
        if name == "Newchannel":
            changed = leg.created()
        elif name == "Newstate":
            changed = leg.ringing(now) if event.get("ChannelStateDesc") == "Ringing" else leg.created()
        elif name == "Hangup":
            cause = event.get("Cause")
            changed = leg.hung_up(int(cause) if cause.isdigit() else None, now)
            deferred = self._deferred.pop(leg.id, None)
            if deferred is not None:
                deferred[0].cancel()
                changed = self._failed(d, leg, deferred[1]) or changed
        elif name == "OriginateResponse":
            if event.get("Response") == "Success":
                changed = leg.answered(now)
            else:
                raw = event.get("Reason")
                reason = int(raw) if raw.isdigit() else None
                if leg.channel_created and leg.cause is None and leg.status in DIALLING:
                    # The channel existed: its Hangup (with the cause that tells declined from busy) is due.
                    handle = asyncio.get_running_loop().call_later(
                        self.failure_grace, lambda: self._deferred_failure(d.id, leg.id, reason))
                    self._deferred[leg.id] = (handle, reason)
                else:
                    changed = self._failed(d, leg, reason)
        elif name == "ConfbridgeJoin":
            if event.get("Conference") == d.room_number:
                changed = leg.joined(now)
        elif name == "ConfbridgeLeave":
            if event.get("Conference") == d.room_number:
                changed = leg.left(now)
        if changed:
            self._changed(d, leg)

    def _failed(self, d: DispatchState, leg: Leg, reason: int | None) -> bool:
        if not leg.failed(reason, d.policy, self.clock()):
            return False
        self._schedule(d, leg)
        return True

    def _deferred_failure(self, dispatch_id: int, leg_id: int, reason: int | None) -> None:
        self._deferred.pop(leg_id, None)
        d = self.dispatches.get(dispatch_id)
        leg = d.legs.get(leg_id) if d is not None else None
        if d is not None and leg is not None and d.active and self._failed(d, leg, reason):
            self._changed(d, leg)

    # ---- publication and persistence ----------------------------------------------------------------
    def _changed(self, d: DispatchState, leg: Leg) -> None:
        self._publish(d, "leg", leg.view())
        snapshot = copy.copy(leg)
        self._job(lambda: self.store.save_legs([snapshot]))

    def _publish(self, d: DispatchState, kind: str, data: dict[str, Any]) -> None:
        self.bus.publish(DispatchEvent(self.node, d.id, d.room_id, kind, data, self.clock()))

    def _prune(self) -> None:
        ended = [i for i, d in self.dispatches.items() if not d.active]
        for i in ended[:-ENDED_KEPT]:
            for leg in self.dispatches.pop(i).legs.values():
                self.by_channel.pop(leg.channel_id, None)

    def _job(self, job: Callable[[], None]) -> None:
        if self._jobs is None:
            return  # not started (unit tests of the state alone)
        self._jobs.put_nowait(job)

    async def _drain(self) -> None:
        if self._jobs is not None and self._writer is not None and not self._writer.done():
            await self._jobs.join()

    async def _write_loop(self) -> None:
        assert self._jobs is not None
        while True:
            job = await self._jobs.get()
            try:
                for attempt in range(3):
                    try:
                        await asyncio.to_thread(job)
                        break
                    except Exception:  # noqa: BLE001 - logged; a dispatch never stops for the database
                        log.exception("dispatch: could not write to the database (attempt %d)", attempt + 1)
                        await asyncio.sleep(0.5)
            finally:
                self._jobs.task_done()

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)
