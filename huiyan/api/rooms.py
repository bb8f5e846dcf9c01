"""/api/rooms: conference rooms (会议室) and meeting control (会控).

Rooms are configured by admins; a room's chairs (admins, supervisors and the room's moderator users)
see its live state and control the meeting: mute/unmute one or everyone, kick, lock/unlock, set or
release the presenter, start/stop recording, end the meeting, and invite people by dial-out. Every
change goes out on the event WebSocket as `RoomEvent`; configuration changes as `RoomsChanged`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from huiyan.api.access import Admin, AnyUser, Principal
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.db.models import Role, Room, RoomKind, VideoMode
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DEPARTMENT_RE, DISPLAY_NAME_RE
from huiyan.rooms import store
from huiyan.rooms.h323 import H323_TARGET_RE
from huiyan.rooms.model import PIN_RE, RoomError
from huiyan.rooms.service import RoomsChanged
from huiyan.rooms.store import INVITE_TARGET_RE, INVITEE_TARGET_RE, MAX_INVITEES, ROOM_NAME_RE

router = APIRouter(tags=["rooms"])
log = logging.getLogger(__name__)

NUMBER_RE = r"^[0-9]{1,16}$"  # the room plan itself is checked by the store (400)
CHAIR_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})
PARTICIPANT_ID = r"^[A-Za-z0-9._-]{1,150}$"  # a channel uniqueid


# ---- schemas --------------------------------------------------------------------------------------


class InviteeIn(_In):
    target: str = Field(pattern=INVITEE_TARGET_RE,
                        description="an extension, a SIP URI, a phone number or an H.323 room system",
                        examples=["80001", "sip:6001@10.20.0.5", "043188889999", "h323:10.20.0.9"])
    name: str = Field("", pattern=DISPLAY_NAME_RE)
    moderator: bool = False


class RoomCreate(_In):
    name: str = Field(pattern=ROOM_NAME_RE, examples=["全省司法行政工作视频会议"])
    number: str | None = Field(None, pattern=NUMBER_RE, description="in the room plan (_6XXX); default: the next free")
    kind: RoomKind = RoomKind.MEETING
    video_mode: VideoMode = Field(VideoMode.FOLLOW_TALKER, description=(
        "follow_talker: one stream, the talker's (terminals, legacy rooms); presenter: one stream, the "
        "presenter's; sfu: every participant's stream to browsers and multi-stream SIP clients"))
    organisation_id: int | None = Field(None, ge=1)
    department: str | None = Field(None, pattern=DEPARTMENT_RE)
    starts_at: datetime | None = Field(None, description="a scheduled room: both starts_at and ends_at")
    ends_at: datetime | None = None
    pin: str | None = Field(None, pattern=PIN_RE, description="participants' PIN, 4-12 digits")
    moderator_pin: str | None = Field(None, pattern=PIN_RE)
    max_participants: int = Field(50, ge=2, le=200)
    record: bool = Field(False, description="record every session from its start")
    locked: bool = Field(False, description="only moderators may join")
    active: bool = True
    moderator_user_ids: list[int] = Field(default_factory=list, max_length=100)
    invitees: list[InviteeIn] = Field(default_factory=list, max_length=MAX_INVITEES)


class RoomPatch(_Patch):
    nullable = frozenset({"organisation_id", "department", "starts_at", "ends_at", "pin", "moderator_pin"})

    name: str | None = Field(None, pattern=ROOM_NAME_RE)
    number: str | None = Field(None, pattern=NUMBER_RE)
    kind: RoomKind | None = None
    video_mode: VideoMode | None = None
    organisation_id: int | None = Field(None, ge=1)
    department: str | None = Field(None, pattern=DEPARTMENT_RE)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    pin: str | None = Field(None, pattern=PIN_RE)
    moderator_pin: str | None = Field(None, pattern=PIN_RE)
    max_participants: int | None = Field(None, ge=2, le=200)
    record: bool | None = None
    locked: bool | None = None
    active: bool | None = None
    moderator_user_ids: list[int] | None = Field(None, max_length=100)
    invitees: list[InviteeIn] | None = Field(None, max_length=MAX_INVITEES)

    def changes(self) -> dict[str, Any]:
        out = super().changes()
        if "invitees" in out:
            out["invitees"] = [dict(i) for i in out["invitees"]]
        return out


class InviteeOut(BaseModel):
    target: str
    name: str
    moderator: bool


class RoomOut(BaseModel):
    id: int
    number: str
    name: str
    kind: RoomKind
    video_mode: VideoMode
    organisation_id: int | None
    department: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    permanent: bool
    sip_uri: str = Field(description="what a legacy SIP room dials to join")
    has_pin: bool
    pin: str | None = Field(description="only for the room's chairs; null otherwise")
    moderator_pin: str | None = Field(description="only for the room's chairs; null otherwise")
    max_participants: int
    record: bool
    locked: bool
    active: bool
    moderator_user_ids: list[int]
    invitees: list[InviteeOut]
    created_at: datetime

    @classmethod
    def of(cls, room: Room, ctx: ApiContext, *, secrets: bool) -> RoomOut:
        return cls(
            id=room.id, number=room.number, name=room.name, kind=room.kind, video_mode=room.video_mode,
            organisation_id=room.organisation_id, department=room.department, starts_at=room.starts_at,
            ends_at=room.ends_at, permanent=room.starts_at is None and room.ends_at is None,
            sip_uri=f"sip:{room.number}@{ctx.settings.public_host}", has_pin=bool(room.pin or room.moderator_pin),
            pin=room.pin if secrets else None, moderator_pin=room.moderator_pin if secrets else None,
            max_participants=room.max_participants, record=room.record, locked=room.locked, active=room.active,
            moderator_user_ids=[m.user_id for m in room.moderators],
            invitees=[InviteeOut(target=i.target, name=i.name, moderator=i.moderator) for i in room.invitees],
            created_at=room.created_at,
        )


class SessionOut(BaseModel):
    id: int
    node: str
    started_at: datetime
    ended_at: datetime | None
    peak_participants: int


class RecordingOut(BaseModel):
    id: int
    session_id: int | None
    path: str
    started_at: datetime
    ended_at: datetime | None


class MuteAllBody(_In):
    moderators_too: bool = Field(False, description="also mute the moderators (default: they keep their voice)")


class PresenterBody(_In):
    participant: str = Field(pattern=PARTICIPANT_ID, description="the participant id (from /live)")


class InviteBody(_In):
    target: str = Field(pattern=f"{INVITE_TARGET_RE}|{H323_TARGET_RE}", description=(
        "an extension (a user's or a device's), a SIP URI (through the legacy trunk when it names the "
        "trunk's host), a phone number (through the trunk), or an H.323 room system configured in "
        "h323.peers: h323:<ip>[:port], h323:<alias>@<ip>[:port], h323:<name> (h323:<alias> with a "
        "gatekeeper); an H.323 address the node cannot dial is a 422"),
        examples=["80001", "sip:6001@10.20.0.5", "h323:10.20.0.9", "h323:6001@10.20.0.9:1720"])
    moderator: bool = False
    name: str = Field("", pattern=DISPLAY_NAME_RE)
    ring_seconds: int = Field(30, ge=5, le=120)


# ---- helpers ------------------------------------------------------------------------------------


def _plan(ctx: ApiContext) -> ExtensionPlan:
    return ExtensionPlan.from_pattern(ctx.settings.room_pattern)


def _is_chair(caller: Principal, session: DbSession, room_id: int) -> bool:
    return caller.role in CHAIR_ROLES or store.is_moderator(session, room_id, caller.user_id)


def _chair(caller: Principal, session: DbSession, room_id: int) -> None:
    store.get_room(session, room_id)  # 404 first
    if not _is_chair(caller, session, room_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "only admins, supervisors and the room's moderators may see or control this room")


def _changed(request: Request, ctx: ApiContext, action: str, room_id: int) -> None:
    """After the commit: the runtime reloads its rooms before we answer (so the new number can be dialled
    at once), then everyone else hears about it on the bus."""
    svc = getattr(request.app.state, "rooms", None)
    if svc is not None:
        try:
            anyio.from_thread.run(svc.reload)
        except Exception:  # noqa: BLE001 - committed; the RoomsChanged below makes the runtime try again
            log.exception("rooms: reload after %s of room %s failed", action, room_id)
    anyio.from_thread.run_sync(ctx.bus.publish, RoomsChanged(action, room_id))  # type: ignore[arg-type]


def _runtime(request: Request) -> tuple[Any, Any]:
    svc = getattr(request.app.state, "rooms", None)
    ctl = getattr(request.app.state, "room_control", None)
    if svc is None or ctl is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "meeting control is not available (no PBX connection)")
    return svc, ctl


def _error(exc: RoomError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


# ---- configuration ------------------------------------------------------------------------------


@router.get("/api/rooms", response_model=Page[RoomOut])
def list_rooms(
    caller: AnyUser,
    ctx: Ctx,
    session: DbSession,
    kind: RoomKind | None = None,
    organisation_id: int | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or number")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RoomOut]:
    """PINs are shown only to the room's chairs."""
    items, total = store.list_rooms(session, kind=kind, organisation_id=organisation_id, active=active, q=q,
                                    offset=offset, limit=limit)
    return Page(items=[RoomOut.of(r, ctx, secrets=_is_chair(caller, session, r.id)) for r in items],
                total=total, offset=offset, limit=limit)


@router.get("/api/rooms/{room_id}", response_model=RoomOut)
def get_room(caller: AnyUser, room_id: int, ctx: Ctx, session: DbSession) -> RoomOut:
    room = store.get_room(session, room_id)
    return RoomOut.of(room, ctx, secrets=_is_chair(caller, session, room_id))


@router.post("/api/rooms", status_code=status.HTTP_201_CREATED, response_model=RoomOut)
def create_room(caller: Admin, body: RoomCreate, request: Request, ctx: Ctx, session: DbSession) -> RoomOut:
    """A permanent room (no schedule) or a scheduled one (starts_at + ends_at; it opens 15 minutes early)."""
    values = body.model_dump()
    values["invitees"] = [dict(i) for i in values["invitees"]]
    room = store.create_room(session, plan=_plan(ctx), **values)
    session.commit()
    _changed(request, ctx, "created", room.id)
    return RoomOut.of(room, ctx, secrets=True)


@router.patch("/api/rooms/{room_id}", response_model=RoomOut)
def update_room(caller: Admin, room_id: int, body: RoomPatch, request: Request, ctx: Ctx,
                session: DbSession) -> RoomOut:
    """A meeting in progress keeps its video mode until it ends; everything else applies to new joiners."""
    room = store.update_room(session, room_id, body.changes(), plan=_plan(ctx))
    session.commit()
    _changed(request, ctx, "updated", room.id)
    return RoomOut.of(room, ctx, secrets=True)


@router.delete("/api/rooms/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room(caller: Admin, room_id: int, request: Request, ctx: Ctx, session: DbSession) -> Response:
    """Refused (409) for a room with past sessions (their recordings stay listed): deactivate it instead."""
    store.delete_room(session, room_id)
    session.commit()
    _changed(request, ctx, "deleted", room_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/rooms/{room_id}/sessions", response_model=list[SessionOut])
def list_sessions(caller: AnyUser, room_id: int, session: DbSession) -> list[SessionOut]:
    _chair(caller, session, room_id)
    return [SessionOut.model_validate(s, from_attributes=True) for s in store.room_sessions(session, room_id)]


@router.get("/api/rooms/{room_id}/recordings", response_model=list[RecordingOut])
def list_recordings(caller: AnyUser, room_id: int, session: DbSession) -> list[RecordingOut]:
    _chair(caller, session, room_id)
    return [RecordingOut.model_validate(r, from_attributes=True) for r in store.room_recordings(session, room_id)]


# ---- the live meeting ---------------------------------------------------------------------------


@router.get("/api/rooms/{room_id}/live")
async def live(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    """The meeting now: live or not, locked, recording, presenter, video source, and each participant's
    role, muted/talking state and video (sends; receives all / talker / presenter / none)."""
    async def op(svc: Any, ctl: Any) -> Any:
        return svc.view(room_id)

    return await _op(request, caller, room_id, op)


async def _op(request: Request, caller: Principal, room_id: int, op: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    def check() -> None:
        with request.app.state.huiyan.sessions() as session:
            _chair(caller, session, room_id)

    await run_in_threadpool(check)
    svc, ctl = _runtime(request)
    try:
        return await op(svc, ctl)
    except RoomError as e:
        raise _error(e) from e


@router.get("/api/rooms/{room_id}/participants")
async def participants(caller: AnyUser, room_id: int, request: Request) -> list[dict[str, Any]]:
    async def op(svc: Any, ctl: Any) -> Any:
        return svc.view(room_id)["participants"]

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/participants/{participant_id}/mute")
async def mute(caller: AnyUser, room_id: int, participant_id: str, request: Request) -> dict[str, Any]:
    """409 with the reason when the participant has already left; 404 for one never seen."""
    async def op(svc: Any, ctl: Any) -> Any:
        p = await ctl.mute(room_id, participant_id, True)
        return {"id": p.id, "muted": p.muted}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/participants/{participant_id}/unmute")
async def unmute(caller: AnyUser, room_id: int, participant_id: str, request: Request) -> dict[str, Any]:
    async def op(svc: Any, ctl: Any) -> Any:
        p = await ctl.mute(room_id, participant_id, False)
        return {"id": p.id, "muted": p.muted}

    return await _op(request, caller, room_id, op)


@router.delete("/api/rooms/{room_id}/participants/{participant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def kick(caller: AnyUser, room_id: int, participant_id: str, request: Request) -> Response:
    """Remove a participant from the meeting (their call ends)."""
    async def op(svc: Any, ctl: Any) -> Any:
        await ctl.kick(room_id, participant_id)

    await _op(request, caller, room_id, op)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/rooms/{room_id}/mute")
async def mute_all(caller: AnyUser, room_id: int, request: Request, body: MuteAllBody | None = None) -> dict[str, Any]:
    """Mute every participant (moderators keep their voice unless `moderators_too`)."""
    everyone = bool(body and body.moderators_too)

    async def op(svc: Any, ctl: Any) -> Any:
        return {"muted": await ctl.mute_all(room_id, True, moderators_too=everyone)}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/unmute")
async def unmute_all(caller: AnyUser, room_id: int, request: Request,
                     body: MuteAllBody | None = None) -> dict[str, Any]:
    everyone = bool(body and body.moderators_too)

    async def op(svc: Any, ctl: Any) -> Any:
        return {"unmuted": await ctl.mute_all(room_id, False, moderators_too=everyone)}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/lock")
async def lock(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    """Nobody new joins but moderators (a caller hears "the meeting is locked") until unlocked."""
    async def op(svc: Any, ctl: Any) -> Any:
        await ctl.lock(room_id, True)
        return {"locked": True}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/unlock")
async def unlock(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    async def op(svc: Any, ctl: Any) -> Any:
        await ctl.lock(room_id, False)
        return {"locked": False}

    return await _op(request, caller, room_id, op)


@router.put("/api/rooms/{room_id}/presenter")
async def set_presenter(caller: AnyUser, room_id: int, body: PresenterBody, request: Request) -> dict[str, Any]:
    """Make a participant the single video source everyone sees (a terminal sharing its PPT). 409 in an
    SFU room, where everyone's video already goes to everyone."""
    async def op(svc: Any, ctl: Any) -> Any:
        p = await ctl.set_presenter(room_id, body.participant)
        return {"presenter": p.id}

    return await _op(request, caller, room_id, op)


@router.delete("/api/rooms/{room_id}/presenter")
async def release_presenter(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    """Back to the talker (follow_talker rooms) or the chair (presenter rooms)."""
    async def op(svc: Any, ctl: Any) -> Any:
        await ctl.release_presenter(room_id)
        return {"presenter": None}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/recording", status_code=status.HTTP_201_CREATED)
async def start_recording(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    """Record the meeting's mixed audio (video recording: issue 5). 409 when already recording."""
    async def op(svc: Any, ctl: Any) -> Any:
        return {"recording": True, "path": await ctl.start_recording(room_id)}

    return await _op(request, caller, room_id, op)


@router.delete("/api/rooms/{room_id}/recording")
async def stop_recording(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    async def op(svc: Any, ctl: Any) -> Any:
        return {"recording": False, "path": await ctl.stop_recording(room_id)}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/end")
async def end_meeting(caller: AnyUser, room_id: int, request: Request) -> dict[str, Any]:
    """Everyone hears "the meeting has ended" and is hung up."""
    async def op(svc: Any, ctl: Any) -> Any:
        return {"ended": True, "participants": await ctl.end(room_id)}

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/invitations", status_code=status.HTTP_202_ACCEPTED)
async def invite(caller: AnyUser, room_id: int, body: InviteBody, request: Request) -> dict[str, Any]:
    """Dial a party into the meeting; it joins without a PIN when it answers. Follow its status
    (dialling, answered, joined, left, failed with busy/no_answer/declined/unreachable) in /live or on the
    event WebSocket (RoomEvent kind "invitation")."""
    async def op(svc: Any, ctl: Any) -> Any:
        inv = await ctl.invite(room_id, body.target, moderator=body.moderator, name=body.name,
                               ring_seconds=body.ring_seconds)
        return inv.view()

    return await _op(request, caller, room_id, op)


@router.post("/api/rooms/{room_id}/invitations/all", status_code=status.HTTP_202_ACCEPTED)
async def invite_all(caller: AnyUser, room_id: int, request: Request) -> list[dict[str, Any]]:
    """Dial every invitee of the room (a scheduled meeting's participant list) who is not in it yet."""
    async def op(svc: Any, ctl: Any) -> Any:
        return [inv.view() for inv in await ctl.invite_all(room_id)]

    return await _op(request, caller, room_id, op)


@router.get("/api/rooms/{room_id}/invitations")
async def invitations(caller: AnyUser, room_id: int, request: Request) -> list[dict[str, Any]]:
    async def op(svc: Any, ctl: Any) -> Any:
        return svc.view(room_id)["invitations"]

    return await _op(request, caller, room_id, op)
