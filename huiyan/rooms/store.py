"""The rooms' tables, kept by their rules (shared by the API, the seed and other business lines), and
what the runtime loads from and writes to them (`DbRoomStore`, called from worker threads).

Rules kept here: a room's number lies in the room plan (`_6XXX`) and is unique; PINs are 4-12 digits
and the participant and moderator PINs differ; a schedule has both ends, the start first; an SFU room
takes at most 50 participants (ConfBridge's SFU profile), others 200; moderators are existing users;
invitees are extensions of the internal plan, SIP URIs or phone numbers, each once; a room with
history (sessions) is deactivated, not deleted. Functions flush but never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from huiyan.db.errors import Conflict, Invalid
from huiyan.db.models import (
    Organisation,
    Room,
    RoomInvitee,
    RoomKind,
    RoomModerator,
    RoomRecording,
    RoomSession,
    User,
    VideoMode,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DISPLAY_NAME_RE, _check, _flush, _get, _page
from huiyan.rooms.h323 import H323_TARGET_RE
from huiyan.rooms.model import PIN_RE, Invitee, RoomSpec

ROOM_NAME_RE = r'^[^\x00-\x1f\x7f";<>\\]{1,100}$'  # also the caller name an invited party sees
INVITE_TARGET_RE = r"^(?:\+?[0-9]{2,20}|sips?:[A-Za-z0-9._~%+-]+@[A-Za-z0-9.-]+(?::[0-9]{1,5})?)$"
# What an invitee of a room may be: the above, or a legacy H.323 room system (dialled through chan_ooh323).
INVITEE_TARGET_RE = f"{INVITE_TARGET_RE}|{H323_TARGET_RE}"
MAX_PARTICIPANTS = {VideoMode.SFU: 50, VideoMode.FOLLOW_TALKER: 200, VideoMode.PRESENTER: 200}
MAX_INVITEES = 200
ROOM_FIELDS = frozenset({
    "number", "name", "kind", "video_mode", "organisation_id", "department", "starts_at", "ends_at", "pin",
    "moderator_pin", "max_participants", "record", "locked", "active",
})


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid(f"{what} must carry a time zone (e.g. 2024-07-01T09:00:00+08:00)")
    return value.astimezone(UTC)


def _check_room(session: Session, values: dict[str, Any], room: Room | None, plan: ExtensionPlan) -> None:
    number = values["number"]
    if not plan.contains(number):
        raise Invalid(f"room number {number!r} is outside the room plan {plan.pattern}")
    other = session.scalar(select(Room.id).where(Room.number == number))
    if other is not None and (room is None or other != room.id):
        raise Conflict(f"room number {number} is already used by room {other}")
    _check(ROOM_NAME_RE, values["name"], "room name")
    for key in ("pin", "moderator_pin"):
        if values.get(key) is not None:
            _check(PIN_RE, values[key], key.replace("_", " "))
    if values.get("pin") and values.get("pin") == values.get("moderator_pin"):
        raise Invalid("the participant PIN and the moderator PIN must differ")
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if (starts is None) != (ends is None):
        raise Invalid("a scheduled room needs both starts_at and ends_at (neither: a permanent room)")
    if starts is not None and ends is not None and not starts < ends:
        raise Invalid("starts_at must be before ends_at")
    mode = VideoMode(values["video_mode"])
    top = MAX_PARTICIPANTS[mode]
    if not 2 <= int(values["max_participants"]) <= top:
        raise Invalid(f"max_participants must be 2..{top} for a {mode.value} room")
    org = values.get("organisation_id")
    if org is not None and session.get(Organisation, org) is None:
        raise Invalid(f"organisation {org} does not exist")


def _set_moderators(session: Session, room: Room, user_ids: Iterable[int]) -> None:
    ids = sorted(set(user_ids))
    known = set(session.scalars(select(User.id).where(User.id.in_(ids)))) if ids else set()
    missing = [i for i in ids if i not in known]
    if missing:
        raise Invalid(f"moderator user(s) {', '.join(map(str, missing))} do not exist")
    room.moderators = [RoomModerator(user_id=i) for i in ids]


def _set_invitees(room: Room, invitees: Iterable[Mapping[str, Any]]) -> None:
    rows: list[RoomInvitee] = []
    seen: set[str] = set()
    # An invitee kept keeps its row: a new row for the same target would be inserted before the old one is
    # deleted, and break the (room_id, target) unique constraint.
    existing = {i.target: i for i in room.invitees}
    for inv in invitees:
        target = str(inv["target"]).strip()
        _check(INVITEE_TARGET_RE, target, "invitee target")
        name = str(inv.get("name") or "")
        _check(DISPLAY_NAME_RE, name, "invitee name")
        if target in seen:
            raise Invalid(f"invitee {target} is listed twice")
        seen.add(target)
        row = existing.get(target) or RoomInvitee(target=target)
        row.name, row.moderator = name, bool(inv.get("moderator", False))
        rows.append(row)
    if len(rows) > MAX_INVITEES:
        raise Invalid(f"at most {MAX_INVITEES} invitees per room")
    room.invitees = rows


def get_room(session: Session, room_id: int) -> Room:
    return _get(session, Room, room_id, "room")


def find_room(session: Session, number: str) -> Room | None:
    return session.scalar(select(Room).where(Room.number == number))


def allocate_room_number(session: Session, plan: ExtensionPlan) -> str:
    """The lowest free number in the room plan: for rooms made on the fly (a mediation session, a
    dispatch meeting)."""
    used = set(session.scalars(select(Room.number)))
    for number in plan.numbers():
        if number not in used:
            return number
    raise Conflict(f"no free room number left in {plan.pattern}")


def create_room(
    session: Session,
    *,
    plan: ExtensionPlan,
    name: str,
    number: str | None = None,
    kind: RoomKind | str = RoomKind.MEETING,
    video_mode: VideoMode | str = VideoMode.FOLLOW_TALKER,
    organisation_id: int | None = None,
    department: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    pin: str | None = None,
    moderator_pin: str | None = None,
    max_participants: int = 50,
    record: bool = False,
    locked: bool = False,
    active: bool = True,
    moderator_user_ids: Iterable[int] = (),
    invitees: Iterable[Mapping[str, Any]] = (),
) -> Room:
    values: dict[str, Any] = {
        "number": number or allocate_room_number(session, plan), "name": name, "kind": RoomKind(kind),
        "video_mode": VideoMode(video_mode), "organisation_id": organisation_id, "department": department,
        "starts_at": _aware(starts_at, "starts_at"), "ends_at": _aware(ends_at, "ends_at"), "pin": pin or None,
        "moderator_pin": moderator_pin or None, "max_participants": max_participants, "record": record,
        "locked": locked, "active": active,
    }
    _check_room(session, values, None, plan)
    room = Room(**values)
    session.add(room)
    _set_moderators(session, room, moderator_user_ids)
    _set_invitees(room, invitees)
    _flush(session)
    return room


def update_room(session: Session, room_id: int, changes: Mapping[str, Any], *, plan: ExtensionPlan) -> Room:
    room = get_room(session, room_id)
    changes = dict(changes)
    moderators = changes.pop("moderator_user_ids", None)
    invitees = changes.pop("invitees", None)
    unknown = set(changes) - ROOM_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a room")
    for key in ("starts_at", "ends_at"):
        if key in changes:
            changes[key] = _aware(changes[key], key)
    for key in ("pin", "moderator_pin"):
        if key in changes:
            changes[key] = changes[key] or None
    values = {k: getattr(room, k) for k in ROOM_FIELDS} | changes
    _check_room(session, values, room, plan)
    for key, value in changes.items():
        setattr(room, key, value)
    if moderators is not None:
        _set_moderators(session, room, moderators)
    if invitees is not None:
        _set_invitees(room, invitees)
    _flush(session)
    return room


def delete_room(session: Session, room_id: int) -> None:
    room = get_room(session, room_id)
    held = session.scalar(select(func.count()).where(RoomSession.room_id == room_id)) or 0
    if held:
        raise Conflict(f"room {room.number} has {held} past session(s) and their recordings: "
                       "deactivate it instead (active: false)")
    session.delete(room)
    _flush(session)


def list_rooms(
    session: Session,
    *,
    kind: RoomKind | None = None,
    organisation_id: int | None = None,
    active: bool | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Room], int]:
    stmt = select(Room).order_by(Room.number)
    if kind is not None:
        stmt = stmt.where(Room.kind == kind)
    if organisation_id is not None:
        stmt = stmt.where(Room.organisation_id == organisation_id)
    if active is not None:
        stmt = stmt.where(Room.active.is_(active))
    if q:
        stmt = stmt.where(Room.name.icontains(q, autoescape=True) | Room.number.icontains(q, autoescape=True))
    return _page(session, stmt, offset, limit)


def room_sessions(session: Session, room_id: int, limit: int = 50) -> list[RoomSession]:
    get_room(session, room_id)
    stmt = select(RoomSession).where(RoomSession.room_id == room_id).order_by(RoomSession.started_at.desc())
    return list(session.scalars(stmt.limit(limit)))


def room_recordings(session: Session, room_id: int, limit: int = 200) -> list[RoomRecording]:
    get_room(session, room_id)
    stmt = select(RoomRecording).where(RoomRecording.room_id == room_id).order_by(RoomRecording.started_at.desc())
    return list(session.scalars(stmt.limit(limit)))


def is_moderator(session: Session, room_id: int, user_id: int) -> bool:
    return session.get(RoomModerator, (room_id, user_id)) is not None


def spec_of(room: Room) -> RoomSpec:
    return RoomSpec(
        id=room.id, number=room.number, name=room.name, kind=room.kind, video_mode=room.video_mode, pin=room.pin,
        moderator_pin=room.moderator_pin, max_participants=room.max_participants, record=room.record,
        locked=room.locked, active=room.active, starts_at=room.starts_at, ends_at=room.ends_at,
        moderator_extensions=frozenset(m.user.extension for m in room.moderators if m.user and m.user.active),
        invitees=tuple(Invitee(i.target, i.name, i.moderator) for i in room.invitees),
    )


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class DbRoomStore:
    """The runtime's side: load every room, record sessions and recordings. Called from worker threads."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def load(self) -> list[RoomSpec]:
        with self.sessions() as s:
            stmt = select(Room).options(
                selectinload(Room.moderators).selectinload(RoomModerator.user), selectinload(Room.invitees)
            )
            return [spec_of(r) for r in s.scalars(stmt)]

    def session_started(self, room_id: int, node: str, bridge_id: str, at: float) -> int:
        with self.sessions() as s:
            row = RoomSession(room_id=room_id, node=node, bridge_id=bridge_id[:64], started_at=_utc(at))
            s.add(row)
            s.commit()
            return row.id

    def session_ended(self, session_id: int, at: float, peak: int) -> None:
        with self.sessions() as s:
            row = s.get(RoomSession, session_id)
            if row is not None:
                row.ended_at = _utc(at)
                row.peak_participants = max(row.peak_participants, peak)
                s.commit()

    def open_sessions(self, node: str) -> dict[int, int]:
        """room id -> id of its session still open on `node` (the latest one)."""
        with self.sessions() as s:
            stmt = (select(RoomSession).where(RoomSession.node == node, RoomSession.ended_at.is_(None))
                    .order_by(RoomSession.started_at))
            return {row.room_id: row.id for row in s.scalars(stmt)}

    def recording_started(self, room_id: int, session_id: int | None, path: str, at: float) -> int:
        with self.sessions() as s:
            row = RoomRecording(room_id=room_id, session_id=session_id, path=path, started_at=_utc(at))
            s.add(row)
            s.commit()
            return row.id

    def recording_stopped(self, recording_id: int, at: float) -> None:
        with self.sessions() as s:
            row = s.get(RoomRecording, recording_id)
            if row is not None and row.ended_at is None:
                row.ended_at = _utc(at)
                s.commit()


