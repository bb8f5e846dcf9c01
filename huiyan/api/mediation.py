"""/api/mediation: remote mediation (远程调解) cases and their sessions.

A case has parties, a mediator, a type (tourist disputes among them), a status with checked transitions,
an append-only file of notes, and an outcome. The mediator starts a session: the case's own room (kind
`mediation`, made at the first session) opens, recorded from the start, its PIN the case's; parties dial
the room number and key in the PIN and hear the recording notice; a lawyer can be dialled in mid-session.
Ending the session ends the meeting and closes the room. The case lists every session and recording.

Who: admins see every case; supervisors those of their organisation and below (all if attached to none);
a mediator their own. Changes go out on the event WebSocket as `MediationEvent` (and `RoomEvent`s for
what happens in the room).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.from_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import Allow, Principal
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.rooms import _changed as _room_changed
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.db.models import CaseStatus, CaseType, MediationCase, PartyRole, Role, User, VideoMode
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DISPLAY_NAME_RE
from huiyan.mediation import store
from huiyan.mediation.model import (
    CaseScope,
    Forbidden,
    MediationError,
    join_info,
)
from huiyan.mediation.service import MediationEvent, MediationSessions, case_event
from huiyan.rooms.model import RoomError
from huiyan.rooms.store import INVITE_TARGET_RE

router = APIRouter(tags=["mediation"])

CaseWorker = Annotated[Principal, Depends(Allow(Role.ADMIN, Role.SUPERVISOR, Role.MEDIATOR))]
OUTCOME_MAX = 10_000


# ---- schemas --------------------------------------------------------------------------------------


class PartyIn(_In):
    name: str = Field(pattern=store.PARTY_NAME_RE, examples=["张三"])
    phone: str = Field(pattern=store.PHONE_RE, examples=["13904351234"])
    role: PartyRole = Field(description="applicant (申请人), respondent (被申请人) or other")
    target: str | None = Field(None, pattern=INVITE_TARGET_RE, description=(
        "optional: the party's extension or SIP URI; from there it joins without the PIN, and it is "
        "dialled when a session starts with dial_parties"), examples=["80012"])


class PartyPatch(_Patch):
    nullable = frozenset({"target"})

    name: str | None = Field(None, pattern=store.PARTY_NAME_RE)
    phone: str | None = Field(None, pattern=store.PHONE_RE)
    role: PartyRole | None = None
    target: str | None = Field(None, pattern=INVITE_TARGET_RE)


class CaseCreate(_In):
    title: str = Field(pattern=store.TITLE_RE, examples=["长白山景区游客与酒店退订纠纷"])
    type: CaseType = Field(description="neighbour, family, labour, consumer, tourism (旅游纠纷) or other")
    summary: str = Field("", max_length=store.SUMMARY_MAX)
    mediator_id: int | None = Field(None, ge=1, description="default: the caller (a mediator or supervisor)")
    organisation_id: int | None = Field(None, ge=1, description="the mediation centre; default: the mediator's")
    parties: list[PartyIn] = Field(default_factory=list, max_length=store.MAX_PARTIES)


class CasePatch(_Patch):
    nullable = frozenset({"organisation_id"})

    title: str | None = Field(None, pattern=store.TITLE_RE)
    type: CaseType | None = None
    summary: str | None = Field(None, max_length=store.SUMMARY_MAX)
    organisation_id: int | None = Field(None, ge=1)
    mediator_id: int | None = Field(None, ge=1, description="admins and supervisors only")


def _needs_outcome(status_: CaseStatus | None, outcome: str | None) -> None:
    if status_ in (CaseStatus.SETTLED, CaseStatus.FAILED) and not (outcome or "").strip():
        raise ValueError(f"an outcome is required to mark a case {status_.value}")


class StatusBody(_In):
    status: CaseStatus = Field(description="settled / failed (with an outcome), closed, or open (a failed case "
                                           "tried again); in_session comes from starting a session")
    outcome: str | None = Field(None, max_length=OUTCOME_MAX, description="the agreement, or why it failed")
    reason: str = Field("", max_length=500, description="written into the case's file with the change")

    @model_validator(mode="after")
    def _outcome(self) -> StatusBody:
        _needs_outcome(self.status, self.outcome)
        return self


class NoteBody(_In):
    text: str = Field(min_length=1, max_length=store.NOTE_MAX)


class StartBody(_In):
    video_mode: VideoMode | None = Field(None, description="default: follow_talker (terminals and legacy rooms)")
    dial_parties: bool = Field(False, description="also dial every party that has a target")


class EndBody(_In):
    status: Literal["open", "settled", "failed"] | None = Field(None, description=(
        "what the case becomes; default: open, or settled/failed if it was marked so during the session"))
    outcome: str | None = Field(None, max_length=OUTCOME_MAX)

    @model_validator(mode="after")
    def _outcome(self) -> EndBody:
        _needs_outcome(CaseStatus(self.status) if self.status else None, self.outcome)
        return self


class LawyerBody(_In):
    user_id: int | None = Field(None, ge=1, description="a user (their browser/SIP endpoint)")
    device_id: int | None = Field(None, ge=1, description="a device (e.g. a law firm's terminal)")
    target: str | None = Field(None, pattern=INVITE_TARGET_RE, description=(
        "an extension, a SIP URI, or a phone number (through the trunk)"), examples=["80031", "13904351234"])
    name: str = Field("", pattern=DISPLAY_NAME_RE, description="shown in the room; default: the user's/device's")
    ring_seconds: int = Field(30, ge=5, le=120)

    @model_validator(mode="after")
    def _one(self) -> LawyerBody:
        given = [k for k in ("user_id", "device_id", "target") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user_id, device_id, target")
        return self


class PartyOut(BaseModel):
    id: int
    name: str
    phone: str
    role: PartyRole
    target: str | None
    created_at: datetime


class NoteOut(BaseModel):
    id: int
    author_id: int | None
    author: str | None
    text: str
    system: bool
    at: datetime


class EvidenceOut(BaseModel):
    job_state: str = Field(description="finalisation: queued, encoding, ..., done (see huiyan.recordings)")
    recording_id: int | None = Field(description="the finalised, hash-chained recording: /api/recordings/{id}")
    sha256: str | None
    duration_s: float | None
    download_url: str | None


class RecordingOut(BaseModel):
    id: int
    session_id: int | None = Field(description="the mediation session it was made in")
    room_session_id: int | None = Field(description="the room's sitting (room_sessions)")
    path: str = Field(description="the raw capture (deleted once the finalised recording is verified)")
    started_at: datetime
    ended_at: datetime | None
    size_bytes: int | None = Field(description="the raw capture's size now; null once it is gone")
    evidence: EvidenceOut | None = Field(description="its finalisation into evidence (M4A/MP4), once queued")


class SessionOut(BaseModel):
    id: int
    room_id: int
    started_at: datetime
    ended_at: datetime | None
    started_by_id: int | None
    ended_by_id: int | None
    recordings: list[RecordingOut]


class JoinOut(BaseModel):
    room_number: str = Field(description="dial it, then key in the PIN and #")
    pin: str
    sip_uri: str = Field(description="what a legacy SIP room dials")
    join_path: str = Field(description="the browser join page (QR posters: the browser clients' part)")


class CaseBrief(BaseModel):
    id: int
    number: str
    title: str
    type: CaseType
    status: CaseStatus
    organisation_id: int | None
    mediator_id: int
    pin: str = Field(description="the dial-in PIN; also the room's")
    room_id: int | None
    outcome: str | None
    parties: list[PartyOut]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def fields_of(cls, case: MediationCase) -> dict[str, Any]:
        return dict(
            id=case.id, number=case.number, title=case.title, type=case.type, status=case.status,
            organisation_id=case.organisation_id, mediator_id=case.mediator_id, pin=case.pin, room_id=case.room_id,
            outcome=case.outcome, parties=[PartyOut.model_validate(p, from_attributes=True) for p in case.parties],
            created_at=case.created_at, updated_at=case.updated_at, closed_at=case.closed_at,
        )

    @classmethod
    def of(cls, case: MediationCase) -> CaseBrief:
        return cls(**cls.fields_of(case))


class CaseOut(CaseBrief):
    summary: str
    mediator_name: str
    room_number: str | None
    session_open: bool
    join: JoinOut | None = Field(description="once the case has a room (from its first session)")
    notes: list[NoteOut]
    sessions: list[SessionOut]
    recordings: list[RecordingOut] = Field(description="every recording of every session, oldest first")

    @classmethod
    def full(cls, session: Session, case: MediationCase, ctx: ApiContext) -> CaseOut:
        recs = [_recording(session, r, owner) for r, owner in store.case_recordings(session, case)]
        room = case.room
        return cls(
            **cls.fields_of(case), summary=case.summary,
            mediator_name=case.mediator.display_name or case.mediator.username,
            room_number=room.number if room else None,
            session_open=any(s.ended_at is None for s in case.sessions),
            join=JoinOut(**join_info(room.number, case.pin, ctx.settings.public_host).view()) if room else None,
            notes=[NoteOut(id=n.id, author_id=n.author_id, author=(n.author.display_name or n.author.username)
                           if n.author else None, text=n.text, system=n.system, at=n.at) for n in case.notes],
            sessions=[SessionOut(id=s.id, room_id=s.room_id, started_at=s.started_at, ended_at=s.ended_at,
                                 started_by_id=s.started_by_id, ended_by_id=s.ended_by_id,
                                 recordings=[r for r in recs if r.session_id == s.id]) for s in case.sessions],
            recordings=recs,
        )


def _recording(session: Session, rec: Any, owner: int | None) -> RecordingOut:
    from huiyan.db.models import Recording, RecordingJob
    from huiyan.recordings.store import room_key

    try:
        size: int | None = Path(rec.path).stat().st_size
    except OSError:
        size = None
    evidence = None
    job = session.scalar(select(RecordingJob).where(RecordingJob.key == room_key(rec.path)))
    if job is not None:
        final = session.get(Recording, job.recording_id) if job.recording_id is not None else None
        evidence = EvidenceOut(
            job_state=job.state.value, recording_id=final.id if final else None,
            sha256=final.sha256 if final else None, duration_s=final.duration_ms / 1000 if final else None,
            download_url=f"/api/recordings/{final.id}/download" if final else None)
    return RecordingOut(id=rec.id, session_id=owner, room_session_id=rec.session_id, path=rec.path,
                        started_at=rec.started_at, ended_at=rec.ended_at, size_bytes=size, evidence=evidence)


# ---- helpers ------------------------------------------------------------------------------------


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (MediationError, RoomError) as exc:
        raise HTTPException(exc.status, str(exc)) from exc


def _plan(ctx: ApiContext) -> ExtensionPlan:
    return ExtensionPlan.from_pattern(ctx.settings.room_pattern)


def _scope(session: Session, caller: Principal) -> CaseScope:
    return store.scope_of(session, caller.user_id, caller.role)


def _case(session: Session, caller: Principal, case_id: int) -> MediationCase:
    """The case, if the caller may see it: 404 for an unknown one, 403 for someone else's."""
    with _errors():
        case = store.get_case(session, case_id)
        if not _scope(session, caller).sees(case.organisation_id, case.mediator_id):
            raise Forbidden(f"case {case.number} is not yours: a mediator sees their own cases, a supervisor "
                            "those of their organisation")
    return case


def _publish(ctx: ApiContext, *events: MediationEvent) -> None:
    """From a sync route (a worker thread): publish on the event loop."""
    for ev in events:
        anyio.from_thread.run_sync(ctx.bus.publish, ev)  # type: ignore[arg-type]


def _check_assignment(caller: Principal, scope: CaseScope, mediator_id: int, organisation_id: int | None) -> None:
    if mediator_id != caller.user_id and not scope.assigns:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a mediator opens and keeps cases of their own: only admins "
                                                       "and supervisors give a case to another mediator")
    if not scope.sees(organisation_id, mediator_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"organisation {organisation_id} is outside your "
                                                       "organisation: you could not see this case")


def _sessions_glue(request: Request) -> MediationSessions:
    rooms = getattr(request.app.state, "rooms", None)
    control = getattr(request.app.state, "room_control", None)
    if rooms is None or control is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "mediation sessions are not available (no PBX connection)")
    ctx: ApiContext = request.app.state.huiyan
    return MediationSessions(ctx.sessions, rooms, control, ctx.bus, ctx.settings)


async def _check_access(request: Request, caller: Principal, case_id: int) -> None:
    def check() -> None:
        with request.app.state.huiyan.sessions() as session:
            _case(session, caller, case_id)

    await run_in_threadpool(check)


# ---- cases --------------------------------------------------------------------------------------


@router.get("/api/mediation/cases", response_model=Page[CaseBrief])
def list_cases(
    caller: CaseWorker,
    session: DbSession,
    status_: Annotated[CaseStatus | None, Query(alias="status")] = None,
    type: CaseType | None = None,
    mediator_id: int | None = None,
    organisation_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the title, number or a party's name")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[CaseBrief]:
    """The cases the caller may see, newest first."""
    items, total = store.list_cases(session, _scope(session, caller), status=status_, type=type,
                                    mediator_id=mediator_id, organisation_id=organisation_id, q=q, offset=offset,
                                    limit=limit)
    return Page(items=[CaseBrief.of(c) for c in items], total=total, offset=offset, limit=limit)


@router.post("/api/mediation/cases", status_code=status.HTTP_201_CREATED, response_model=CaseOut)
def create_case(caller: CaseWorker, body: CaseCreate, ctx: Ctx, session: DbSession) -> CaseOut:
    """Open a case; it gets a case number and a dial-in PIN. A mediator opens cases of their own."""
    scope = _scope(session, caller)
    mediator_id = body.mediator_id or caller.user_id
    with _errors():
        org = body.organisation_id
        if org is None:
            mediator = session.get(User, mediator_id)
            org = mediator.organisation_id if mediator else None
        _check_assignment(caller, scope, mediator_id, org)
        case = store.create_case(session, title=body.title, type=body.type, mediator_id=mediator_id,
                                 organisation_id=body.organisation_id, summary=body.summary,
                                 parties=[p.model_dump() for p in body.parties], created_by_id=caller.user_id)
        session.commit()
    _publish(ctx, case_event(case, "created", title=case.title, type=case.type.value))
    return CaseOut.full(session, case, ctx)


@router.get("/api/mediation/cases/{case_id}", response_model=CaseOut)
def get_case(caller: CaseWorker, case_id: int, ctx: Ctx, session: DbSession) -> CaseOut:
    """The case with its parties, file (notes), join information, sessions and every recording."""
    return CaseOut.full(session, _case(session, caller, case_id), ctx)


@router.patch("/api/mediation/cases/{case_id}", response_model=CaseOut)
def update_case(caller: CaseWorker, case_id: int, body: CasePatch, request: Request, ctx: Ctx,
                session: DbSession) -> CaseOut:
    """Title, type, summary, organisation; the mediator (admins and supervisors). 409 once closed."""
    case = _case(session, caller, case_id)
    changes = body.changes()
    if "mediator_id" in changes or "organisation_id" in changes:
        _check_assignment(caller, _scope(session, caller), changes.get("mediator_id", case.mediator_id),
                          changes.get("organisation_id", case.organisation_id))
    with _errors():
        case = store.update_case(session, case_id, changes, actor_id=caller.user_id, plan=_plan(ctx))
        session.commit()
    if case.room_id is not None:
        _room_changed(request, ctx, "updated", case.room_id)
    _publish(ctx, case_event(case, "updated", changed=sorted(changes)))
    return CaseOut.full(session, case, ctx)


@router.post("/api/mediation/cases/{case_id}/status", response_model=CaseOut)
def set_status(caller: CaseWorker, case_id: int, body: StatusBody, ctx: Ctx, session: DbSession) -> CaseOut:
    """Settle or fail (with the outcome), close, or reopen a failed case. 409 with the reason for a change
    the case's status does not allow (in_session: start or end a session instead)."""
    _case(session, caller, case_id)
    with _errors():
        case, previous = store.set_status(session, case_id, body.status, outcome=body.outcome,
                                          actor_id=caller.user_id, reason=body.reason)
        session.commit()
    _publish(ctx, case_event(case, "status", previous=previous.value, outcome=case.outcome))
    return CaseOut.full(session, case, ctx)


@router.post("/api/mediation/cases/{case_id}/notes", status_code=status.HTTP_201_CREATED, response_model=NoteOut)
def add_note(caller: CaseWorker, case_id: int, body: NoteBody, ctx: Ctx, session: DbSession) -> NoteOut:
    """Append a note to the case's file (also to a closed case); notes are never changed or removed."""
    _case(session, caller, case_id)
    with _errors():
        note = store.add_note(session, case_id, body.text, author_id=caller.user_id)
        session.commit()
        case = store.get_case(session, case_id)
    _publish(ctx, case_event(case, "note_added", note_id=note.id))
    author = note.author
    return NoteOut(id=note.id, author_id=note.author_id, author=(author.display_name or author.username) if author
                   else None, text=note.text, system=note.system, at=note.at)


# ---- parties ------------------------------------------------------------------------------------


@router.post("/api/mediation/cases/{case_id}/parties", status_code=status.HTTP_201_CREATED,
             response_model=PartyOut)
def add_party(caller: CaseWorker, case_id: int, body: PartyIn, request: Request, ctx: Ctx,
              session: DbSession) -> PartyOut:
    case = _case(session, caller, case_id)
    with _errors():
        party = store.add_party(session, case, **body.model_dump(), plan=_plan(ctx))
        session.commit()
    if party.target and case.room_id is not None:
        _room_changed(request, ctx, "updated", case.room_id)
    _publish(ctx, case_event(case, "party_added", party_id=party.id, role=party.role.value))
    return PartyOut.model_validate(party, from_attributes=True)


@router.patch("/api/mediation/cases/{case_id}/parties/{party_id}", response_model=PartyOut)
def update_party(caller: CaseWorker, case_id: int, party_id: int, body: PartyPatch, request: Request, ctx: Ctx,
                 session: DbSession) -> PartyOut:
    case = _case(session, caller, case_id)
    with _errors():
        party = store.update_party(session, case_id, party_id, body.changes(), plan=_plan(ctx))
        session.commit()
    if case.room_id is not None:
        _room_changed(request, ctx, "updated", case.room_id)
    _publish(ctx, case_event(case, "party_updated", party_id=party.id))
    return PartyOut.model_validate(party, from_attributes=True)


@router.delete("/api/mediation/cases/{case_id}/parties/{party_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_party(caller: CaseWorker, case_id: int, party_id: int, request: Request, ctx: Ctx,
                 session: DbSession) -> Response:
    case = _case(session, caller, case_id)
    with _errors():
        store.remove_party(session, case_id, party_id, plan=_plan(ctx))
        session.commit()
    if case.room_id is not None:
        _room_changed(request, ctx, "updated", case.room_id)
    _publish(ctx, case_event(case, "party_removed", party_id=party_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- sessions -----------------------------------------------------------------------------------


@router.post("/api/mediation/cases/{case_id}/session", status_code=status.HTTP_201_CREATED)
async def start_session(caller: CaseWorker, case_id: int, request: Request,
                        body: StartBody | None = None) -> dict[str, Any]:
    """Start a mediation session: the case's room (made now at the first session, reused after) opens,
    recorded from the start, with the case's PIN and the mediator as moderator; the case goes in_session.
    Returns the join information (room number, PIN, SIP URI, join page). 409 when a session is already
    running or the case's status does not allow one (settled, failed, closed)."""
    body = body or StartBody()
    await _check_access(request, caller, case_id)
    glue = _sessions_glue(request)
    with _errors():
        return await glue.start(case_id, actor_id=caller.user_id, video_mode=body.video_mode,
                                dial_parties=body.dial_parties)


@router.post("/api/mediation/cases/{case_id}/session/end")
async def end_session(caller: CaseWorker, case_id: int, request: Request,
                      body: EndBody | None = None) -> dict[str, Any]:
    """End the running session: everyone in the room is hung up, the room closes (nobody can join until
    the next session), the recording is kept on the case. The case returns to open, or becomes what
    `status` says (settled/failed with an outcome). 409 when no session is running."""
    body = body or EndBody()
    await _check_access(request, caller, case_id)
    glue = _sessions_glue(request)
    with _errors():
        return await glue.end(case_id, actor_id=caller.user_id, outcome=body.outcome,
                              status=CaseStatus(body.status) if body.status else None)


@router.post("/api/mediation/cases/{case_id}/lawyer", status_code=status.HTTP_202_ACCEPTED)
async def invite_lawyer(caller: CaseWorker, case_id: int, body: LawyerBody, request: Request) -> dict[str, Any]:
    """Dial a lawyer (a user, a device, an extension / SIP URI / phone number) into the running session;
    they join without the PIN when they answer, and hear the recording notice. Follow the invitation's
    status (dialling, answered, joined, failed with busy/no_answer/declined/unreachable) on the event
    WebSocket (RoomEvent kind "invitation") or in the room's /live. 409 when no session is running."""
    await _check_access(request, caller, case_id)
    glue = _sessions_glue(request)
    with _errors():
        inv = await glue.invite_lawyer(case_id, actor_id=caller.user_id, user_id=body.user_id,
                                       device_id=body.device_id, target=body.target, name=body.name,
                                       ring_seconds=body.ring_seconds)
    return inv.view()


@router.get("/api/mediation/cases/{case_id}/recordings", response_model=list[RecordingOut])
def list_recordings(caller: CaseWorker, case_id: int, session: DbSession) -> list[RecordingOut]:
    """Every recording of the case's sessions, oldest first, with the session each belongs to."""
    case = _case(session, caller, case_id)
    return [_recording(session, r, owner) for r, owner in store.case_recordings(session, case)]

