"""Mediation sessions at run time: start one (the case's room opened, recorded, PIN = the case's; the
parties with a SIP target optionally dialled), end it (the meeting ended, the room closed, the case's
status set), and invite a lawyer into the running session. The rows change through `store` (off the event
loop); the room through the rooms runtime (`RoomService` reload, `RoomControl` end/invite). Every change of
a case goes on the bus as a `MediationEvent`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.models import CaseStatus, Device, MediationCase, User, VideoMode
from huiyan.db.numbering import ExtensionPlan
from huiyan.mediation import store
from huiyan.mediation.model import CaseConflict, MediationError, join_info
from huiyan.rooms.model import RoomError, RoomNotLive
from huiyan.rooms.service import Invitation, RoomsChanged

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediationEvent:
    """Published on the bus: something happened to a case. kind: created, updated, status, party_added,
    party_updated, party_removed, note_added, session_started, session_ended, lawyer_invited. A session's
    own goings-on (joined, left, recording_started...) are `RoomEvent`s of the case's room (`room_id`)."""

    case_id: int
    number: str
    kind: str
    data: dict[str, Any]
    at: float


def case_event(case: MediationCase, kind: str, **data: Any) -> MediationEvent:
    return MediationEvent(case.id, case.number, kind, {"status": case.status.value, "room_id": case.room_id,
                                                       **data}, time.time())


class LawyerTargetError(MediationError):
    status = 400


def lawyer_target(session: Session, *, user_id: int | None, device_id: int | None, target: str | None,
                  name: str) -> tuple[str, str]:
    """What to dial for a lawyer given as a user, a device, or a target (extension, SIP URI, phone number),
    and the name the room shows."""
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise LawyerTargetError(f"user {user_id} does not exist or is disabled")
        return user.extension, name or user.display_name or user.username
    if device_id is not None:
        device = session.get(Device, device_id)
        if device is None or not device.active:
            raise LawyerTargetError(f"device {device_id} does not exist or is disabled")
        return device.extension, name or device.display_name or "律师"
    assert target is not None
    return target.strip(), name or "律师"


class MediationSessions:
    """Stateless glue between a case's rows and its room's runtime; made per request by the API."""

    def __init__(self, sessions: sessionmaker[Session], rooms: Any, control: Any, bus: EventBus,
                 settings: Settings) -> None:
        self.sessions = sessions
        self.rooms = rooms  # huiyan.rooms.service.RoomService
        self.control = control  # huiyan.rooms.control.RoomControl
        self.bus = bus
        self.settings = settings
        self.plan = ExtensionPlan.from_pattern(settings.room_pattern)

    async def _room_changed(self, action: str, room_id: int) -> None:
        """The room's row changed: the runtime reloads before we go on (so it can be dialled, or not, at
        once), then everyone else hears about it."""
        try:
            await self.rooms.reload()
        except Exception:  # noqa: BLE001 - committed; the RoomsChanged below makes the runtime try again
            log.exception("mediation: reloading the rooms after a change of room %s failed", room_id)
        self.bus.publish(RoomsChanged(action, room_id))  # type: ignore[arg-type]

    async def start(self, case_id: int, *, actor_id: int | None, video_mode: VideoMode | None = None,
                    dial_parties: bool = False) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], bool, list[tuple[int, str, str]], MediationEvent]:
            with self.sessions() as s:
                had_room = s.scalar(select(MediationCase.room_id).where(MediationCase.id == case_id)) is not None
                case, ms = store.begin_session(s, case_id, plan=self.plan, actor_id=actor_id, video_mode=video_mode)
                s.commit()
                assert case.room is not None
                out = {
                    "case_id": case.id, "number": case.number, "status": case.status.value,
                    "session": {"id": ms.id, "room_id": case.room.id, "started_at": ms.started_at,
                                "ended_at": None},
                    "join": join_info(case.room.number, case.pin, self.settings.public_host).view(),
                    "room_id": case.room.id,
                }
                targets = [(p.id, p.target, p.name) for p in case.parties if p.target]
                ev = case_event(case, "session_started", session_id=ms.id, room_number=case.room.number)
                return out, had_room, targets, ev

        out, had_room, targets, ev = await asyncio.to_thread(work)
        await self._room_changed("updated" if had_room else "created", out["room_id"])
        self.bus.publish(ev)
        invitations: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        if dial_parties:
            for party_id, target, name in targets:
                try:
                    inv = await self.control.invite(out["room_id"], target, name=name)
                    invitations.append({"party_id": party_id, **inv.view()})
                except RoomError as exc:
                    failures.append({"party_id": party_id, "target": target, "reason": str(exc)})
        out["invitations"], out["failed"] = invitations, failures
        return out

    async def end(self, case_id: int, *, actor_id: int | None, status: CaseStatus | None = None,
                  outcome: str | None = None) -> dict[str, Any]:
        def work() -> tuple[dict[str, Any], list[MediationEvent]]:
            with self.sessions() as s:
                case, ms, previous = store.finish_session(s, case_id, plan=self.plan, actor_id=actor_id,
                                                          status=status, outcome=outcome)
                s.commit()
                assert case.room is not None
                out = {
                    "case_id": case.id, "number": case.number, "status": case.status.value,
                    "outcome": case.outcome, "room_id": case.room.id, "room_number": case.room.number,
                    "session": {"id": ms.id, "room_id": ms.room_id, "started_at": ms.started_at,
                                "ended_at": ms.ended_at},
                }
                events = [case_event(case, "session_ended", session_id=ms.id)]
                if case.status != previous:
                    events.append(case_event(case, "status", previous=previous.value, outcome=case.outcome))
                return out, events

        out, events = await asyncio.to_thread(work)
        await self._room_changed("updated", out["room_id"])  # closed first: nobody new joins
        out["participants_ended"] = 0
        if self.rooms.state(out["room_number"]).live:
            try:
                out["participants_ended"] = await self.control.end(out["room_id"])
            except RoomNotLive:
                pass  # the last one left meanwhile
            except RoomError as exc:  # the case is updated; say what went wrong with the meeting
                log.warning("mediation case %s: could not end the meeting in room %s: %s", out["number"],
                            out["room_number"], exc)
                out["room_error"] = str(exc)
        for ev in events:
            self.bus.publish(ev)
        return out

    async def invite_lawyer(self, case_id: int, *, actor_id: int | None, user_id: int | None = None,
                            device_id: int | None = None, target: str | None = None, name: str = "",
                            ring_seconds: int = 30) -> Invitation:
        def check() -> tuple[int, str, str]:
            with self.sessions() as s:
                case = store.get_case(s, case_id)
                if store.open_session(s, case.id) is None or case.room_id is None:
                    raise CaseConflict(f"case {case.number} has no session in progress: start one first")
                dial, shown = lawyer_target(s, user_id=user_id, device_id=device_id, target=target, name=name)
                return case.room_id, dial, shown

        room_id, dial, shown = await asyncio.to_thread(check)
        inv = await self.control.invite(room_id, dial, name=shown, ring_seconds=ring_seconds)

        def note() -> MediationEvent:
            with self.sessions() as s:
                store.add_note(s, case_id, f"lawyer {shown} invited into the session ({dial})", author_id=actor_id,
                               system=True)
                s.commit()
                case = store.get_case(s, case_id)
                return case_event(case, "lawyer_invited", invitation=inv.view())

        self.bus.publish(await asyncio.to_thread(note))
        return inv
