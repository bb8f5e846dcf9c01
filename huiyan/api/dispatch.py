"""/api/dispatch: command and dispatch (指挥调度) for the command centre's duty officers.

Dispatch groups come from the organisation tree (every city bureau, every county bureau of a city, every
bureau) or are custom lists of organisations and devices. `POST /api/dispatch/groups/{id}/dispatch` is the
one click: an emergency room (recorded, the commander its moderator) and a dial-out to every terminal of
the group at once, with auto-answer where the terminal supports it. Each leg's status (calling, ringing,
answered, joined, busy, declined, no_answer, unreachable, ...) is in `GET /api/dispatch/{id}` and on the
event WebSocket as `DispatchEvent`; the commander adds or drops parties and ends everything with one call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import Allow, Principal
from huiyan.api.context import DbSession
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.db.errors import Conflict
from huiyan.db.models import DispatchGroup, DispatchGroupKind, DispatchStatus, LegStatus, Role
from huiyan.db.store import DEPARTMENT_RE, DISPLAY_NAME_RE
from huiyan.dispatch import store
from huiyan.dispatch.model import DispatchError, LegFinished, LegNotFound, RetryPolicy
from huiyan.rooms.store import INVITE_TARGET_RE, ROOM_NAME_RE

router = APIRouter(tags=["dispatch"])

# The command centre's duty officers: admins and supervisors.
COMMANDERS = Allow(Role.ADMIN, Role.SUPERVISOR)
Commander = Annotated[Principal, Depends(COMMANDERS)]

RetryOn = Literal["unreachable", "busy", "no_answer", "failed"]


# ---- schemas --------------------------------------------------------------------------------------


class GroupCreate(_In):
    name: str = Field(pattern=ROOM_NAME_RE, examples=["全省市州司法局"])
    kind: DispatchGroupKind = Field(description=(
        "all_cities: every city bureau; counties_of_city: every county bureau of `city_id`; all: every city and "
        "county bureau; custom: the listed organisations (their terminals) and devices"))
    city_id: int | None = Field(None, ge=1, description="counties_of_city only: the city-level organisation")
    department: str | None = Field(None, pattern=DEPARTMENT_RE,
                                   description="only the organisations' terminals of this department, e.g. command")
    organisation_ids: list[int] = Field(default_factory=list, max_length=store.MAX_MEMBERS)
    device_ids: list[int] = Field(default_factory=list, max_length=store.MAX_MEMBERS)


class GroupPatch(_Patch):
    nullable = frozenset({"city_id", "department"})

    name: str | None = Field(None, pattern=ROOM_NAME_RE)
    kind: DispatchGroupKind | None = None
    city_id: int | None = Field(None, ge=1)
    department: str | None = Field(None, pattern=DEPARTMENT_RE)
    organisation_ids: list[int] | None = Field(None, max_length=store.MAX_MEMBERS)
    device_ids: list[int] | None = Field(None, max_length=store.MAX_MEMBERS)


class GroupOut(BaseModel):
    id: int
    name: str
    kind: DispatchGroupKind
    city_id: int | None
    department: str | None
    organisation_ids: list[int]
    device_ids: list[int]
    created_at: datetime

    @classmethod
    def of(cls, group: DispatchGroup) -> GroupOut:
        orgs, devices = store.member_ids(group)
        return cls(id=group.id, name=group.name, kind=group.kind, city_id=group.city_id, department=group.department,
                   organisation_ids=orgs, device_ids=devices, created_at=group.created_at)


class TerminalOut(BaseModel):
    device_id: int
    extension: str
    name: str
    organisation_id: int | None
    auto_answer: bool


class DispatchStart(_In):
    name: str | None = Field(None, pattern=ROOM_NAME_RE, description="default: '<group name> 指挥调度'")
    retries: int = Field(2, ge=0, le=10, description="how many times a party is dialled again (see retry_on)")
    retry_interval_s: float = Field(30, ge=1, le=3600, description="seconds between two dials of one party")
    retry_on: list[RetryOn] = Field(default_factory=lambda: ["unreachable"], max_length=4,
                                    description="which outcomes are retried (declined never is)")
    ring_seconds: int = Field(30, ge=5, le=120, description="how long each dial rings")
    auto_answer: bool = Field(True, description="ask terminals to answer by themselves (Call-Info: answer-after=0)")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.retries, interval_s=self.retry_interval_s,
                           on=frozenset(LegStatus(s) for s in self.retry_on), ring_seconds=self.ring_seconds)


class PartyAdd(_In):
    device_id: int | None = Field(None, ge=1, description="a device from the directory (a terminal)")
    user_id: int | None = Field(None, ge=1, description="a member of staff (their own endpoint)")
    target: str | None = Field(None, pattern=INVITE_TARGET_RE, description=(
        "an internal extension, a SIP URI or a phone number (through the trunk)"),
        examples=["80001", "sip:6001@10.20.0.5"])
    name: str = Field("", pattern=DISPLAY_NAME_RE)
    auto_answer: bool | None = Field(None, description="default: on for terminals, off otherwise")

    @model_validator(mode="after")
    def _exactly_one(self) -> PartyAdd:
        given = [k for k in ("device_id", "user_id", "target") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of device_id, user_id or target")
        return self


class DispatchSummary(BaseModel):
    id: int
    name: str
    status: DispatchStatus
    group_id: int | None
    room_id: int
    room_number: str
    commander_user_id: int | None
    started_at: float
    ended_at: float | None
    counts: dict[str, int]


# ---- helpers ------------------------------------------------------------------------------------


def _service(request: Request) -> Any:
    svc = getattr(request.app.state, "dispatch", None)
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "dispatch is not available (no PBX connection)")
    return svc


def _error(exc: DispatchError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


def _db(request: Request) -> Any:
    return request.app.state.huiyan.sessions


def _active_dispatch(session: Any, dispatch_id: int) -> Any:
    """404 for an unknown dispatch, 409 for one that has ended (the database only lags the runtime, and a
    dispatch never comes back, so this check never refuses what the runtime would allow)."""
    row = store.get_dispatch(session, dispatch_id)
    if row.status != DispatchStatus.ACTIVE:
        raise Conflict(f"dispatch {dispatch_id} has already ended")
    return row


def _db_view(session: Any, dispatch_id: int) -> dict[str, Any]:
    row = store.get_dispatch(session, dispatch_id)
    out = store.state_of(row).view()
    out["room"] = {"id": row.room_id, "number": row.room.number, "pin": row.room.pin, "live": False,
                   "participants": 0, "recording": None}
    out["recordings"] = store.recordings(session, row.room_id)
    return out


# ---- groups -------------------------------------------------------------------------------------


@router.get("/api/dispatch/groups", response_model=Page[GroupOut])
def list_groups(caller: Commander, session: DbSession, offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[GroupOut]:
    items, total = store.list_groups(session, offset=offset, limit=limit)
    return Page(items=[GroupOut.of(g) for g in items], total=total, offset=offset, limit=limit)


@router.post("/api/dispatch/groups", status_code=status.HTTP_201_CREATED, response_model=GroupOut)
def create_group(caller: Commander, body: GroupCreate, session: DbSession) -> GroupOut:
    group = store.create_group(session, **body.model_dump())
    session.commit()
    return GroupOut.of(group)


@router.get("/api/dispatch/groups/{group_id}", response_model=GroupOut)
def get_group(caller: Commander, group_id: int, session: DbSession) -> GroupOut:
    return GroupOut.of(store.get_group(session, group_id))


@router.patch("/api/dispatch/groups/{group_id}", response_model=GroupOut)
def update_group(caller: Commander, group_id: int, body: GroupPatch, session: DbSession) -> GroupOut:
    group = store.update_group(session, group_id, body.changes())
    session.commit()
    return GroupOut.of(group)


@router.delete("/api/dispatch/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(caller: Commander, group_id: int, session: DbSession) -> Response:
    """Past dispatches of the group keep their record."""
    store.delete_group(session, group_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/dispatch/groups/{group_id}/terminals", response_model=list[TerminalOut])
def group_terminals(caller: Commander, group_id: int, session: DbSession) -> list[TerminalOut]:
    """Whom a dispatch to this group would call now (active terminals, resolved from the tree)."""
    parties = store.resolve_group(session, store.get_group(session, group_id))
    return [TerminalOut(device_id=p.device_id or 0, extension=p.target, name=p.name,
                        organisation_id=p.organisation_id, auto_answer=p.auto_answer) for p in parties]


# ---- dispatches ---------------------------------------------------------------------------------


@router.post("/api/dispatch/groups/{group_id}/dispatch", status_code=status.HTTP_201_CREATED)
async def dispatch(caller: Commander, group_id: int, request: Request,
                   body: DispatchStart | None = None) -> dict[str, Any]:
    """One click: creates the emergency room (recorded; you are its moderator: dial its number to join
    without a PIN) and calls every terminal of the group at once. 409 when the group has no terminal or
    more than one room holds."""
    def check() -> None:
        with _db(request)() as session:
            store.get_group(session, group_id)

    await run_in_threadpool(check)
    svc = _service(request)
    body = body or DispatchStart()
    try:
        d = await svc.dispatch(group_id, commander_user_id=caller.user_id, policy=body.policy(), name=body.name,
                               auto_answer=body.auto_answer)
        return dict(await svc.view(d.id))
    except DispatchError as e:
        raise _error(e) from e


@router.get("/api/dispatch", response_model=Page[DispatchSummary])
def list_dispatches(caller: Commander, session: DbSession, state: DispatchStatus | None = Query(None, alias="status"),
                    group_id: int | None = None, offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[DispatchSummary]:
    """Newest first; the counts are per leg status (as last written)."""
    items, total = store.list_dispatches(session, status=state, group_id=group_id, offset=offset, limit=limit)
    out = []
    for row in items:
        v = store.state_of(row).view()
        out.append(DispatchSummary(**{k: v[k] for k in DispatchSummary.model_fields}))
    return Page(items=out, total=total, offset=offset, limit=limit)


@router.get("/api/dispatch/{dispatch_id}")
async def get_dispatch(caller: Commander, dispatch_id: int, request: Request) -> dict[str, Any]:
    """The dispatch now: its room (live, recording), its policy, counts per status and every leg with its
    status, reason, attempts, retries and next retry."""
    svc = getattr(request.app.state, "dispatch", None)
    if svc is None:
        def read() -> dict[str, Any]:
            with _db(request)() as session:
                return _db_view(session, dispatch_id)

        return await run_in_threadpool(read)
    try:
        return dict(await svc.view(dispatch_id))
    except DispatchError as e:
        raise _error(e) from e


@router.post("/api/dispatch/{dispatch_id}/legs", status_code=status.HTTP_202_ACCEPTED)
async def add_party(caller: Commander, dispatch_id: int, body: PartyAdd, request: Request) -> dict[str, Any]:
    """Call one more party into the dispatch: a device, a user, or an extension / SIP URI / phone number.
    409 when it is already being called or is in the room."""
    def check() -> None:
        with _db(request)() as session:
            _active_dispatch(session, dispatch_id)
            store.party_for(session, internal=request.app.state.huiyan.plan, **body.model_dump())

    await run_in_threadpool(check)
    svc = _service(request)
    try:
        leg = await svc.add_party(dispatch_id, **body.model_dump())
        return dict(leg.view())
    except DispatchError as e:
        raise _error(e) from e


@router.delete("/api/dispatch/{dispatch_id}/legs/{leg_id}")
async def drop_party(caller: Commander, dispatch_id: int, leg_id: int, request: Request) -> dict[str, Any]:
    """Hang up one leg (it leaves the room), or cancel its next retry. 409 when it has already ended."""
    def check() -> None:
        with _db(request)() as session:
            row = _active_dispatch(session, dispatch_id)
            leg = next((x for x in row.legs if x.id == leg_id), None)
            if leg is None:
                raise LegNotFound(f"dispatch {dispatch_id} has no leg {leg_id}")
            if store.leg_of(leg).final:
                raise LegFinished(f"leg {leg_id} ({leg.target}) has already ended: {leg.status.value}")

    try:
        await run_in_threadpool(check)
        svc = _service(request)
        leg = await svc.drop(dispatch_id, leg_id)
        return dict(leg.view())
    except DispatchError as e:
        raise _error(e) from e


@router.post("/api/dispatch/{dispatch_id}/end")
async def end_dispatch(caller: Commander, dispatch_id: int, request: Request) -> dict[str, Any]:
    """End everything with one call: every leg is hung up (pending retries cancelled), the recording
    stops, the room's meeting ends and the room is deactivated. 409 when the dispatch has already ended."""
    def check() -> None:
        with _db(request)() as session:
            _active_dispatch(session, dispatch_id)

    await run_in_threadpool(check)
    svc = _service(request)
    try:
        await svc.end(dispatch_id)
        return dict(await svc.view(dispatch_id))
    except DispatchError as e:
        raise _error(e) from e

