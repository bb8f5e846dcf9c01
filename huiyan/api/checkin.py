"""/api/checkin: community-correction video check-ins (社区矫正视频点验).

Staff (admins, supervisors, officers): the registry of subjects (officer in charge, judicial office,
supervision period, risk level, enrolled face photo, registered client, allowed area, PIN), their schedules
and windows, check-ins with their evidence and the officer's review, roll-calls (one subject or many in
sequence), alerts and their acknowledgement, notifications, education sessions with attendance, and the
monthly report per office (JSON, CSV, XLSX). Admins see everything, supervisors their organisation and
below, officers the subjects they supervise. WS /api/checkin/events streams the check-in events and alerts
each of them may see.

The subject's phone page (the browser clients' part) uses the session API, documented here for it:

1. `POST /api/checkin/sessions` with `{"subject_number", "pin"}` or `{"code"}` (a one-time code from the
   officer). Inside an open window: 201 with `token` (send it as `Authorization: Bearer <token>` to the
   calls below), `checkin_id` and the liveness `challenge` (digits to read out on camera). No window open:
   409, and the attempt is recorded (outcome `outside_window`, never a pass). Wrong PIN: 401 with the tries
   left; the third wrong PIN in a row: 423, the check-in is `rejected` and the officer alerted. Unknown
   subject number: 404.
2. `GET /api/checkin/sessions/{id}/challenge`: the digits again, with what to do with them.
   `POST /api/checkin/sessions/{id}/call`: how to place the recorded video call (SIP WebSocket, number, and
   a one-time header that ties the call and its recording to this check-in).
3. `POST /api/checkin/sessions/{id}/location` with the browser's geolocation `{"latitude", "longitude",
   "accuracy_m"}`: validated (422 with the reason for anything that is not a coordinate); the answer says
   `in_area`, `outside_area` (with the distance) or `no_area`. No geolocation to give (refused, unavailable):
   `POST .../location/refused` with `{"why"}` - recorded as `refused`, never silently missing.
4. `POST /api/checkin/sessions/{id}/snapshots` with a JPEG or PNG still from the camera as the raw body
   (`Content-Type: image/jpeg` or `image/png`): compared with the enrolled photo; an unreadable image is a
   400 with the reason and nothing is stored.
5. `POST /api/checkin/sessions/{id}/finish`: the outcome - `identity_failed` if a snapshot showed someone
   else, `outside_area` if the location was outside, otherwise `on_time` or `late` (by the window; with a
   reason when no location was sent).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
import jwt
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import (
    ALGORITHM,
    ISSUER,
    PUBLIC,
    WS_UNAUTHENTICATED,
    AccessRule,
    Allow,
    AllowWebSocket,
    NotAuthenticated,
    Principal,
    decode_token,
)
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.events import encode_event
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.checkin import store
from huiyan.checkin.face import ImageError, engine, read_image
from huiyan.checkin.model import (
    PIN_RE,
    SUBJECT_NUMBER_RE,
    CheckinError,
    Invalid,
    SubjectScope,
    check_area,
    locate,
    month_bounds,
)
from huiyan.checkin.model import challenge as new_challenge
from huiyan.checkin.report import csv_bytes, totals, xlsx_bytes
from huiyan.checkin.service import CheckinAlertEvent, CheckinEvent, alert_event, rollcall_view
from huiyan.db.errors import DirectoryError
from huiyan.db.models import (
    CheckIn,
    CheckinAlert,
    CheckinKind,
    CheckinOutcome,
    CheckinSchedule,
    CheckinSnapshot,
    CheckinSubject,
    CheckinWindow,
    RecordingJob,
    Recording,
    RiskLevel,
    Role,
    ScheduleKind,
    User,
    VideoMode,
    WindowResult,
)
from huiyan.db.numbering import ExtensionPlan

router = APIRouter(tags=["checkin"])

Staff = Annotated[Principal, Depends(Allow(Role.ADMIN, Role.SUPERVISOR, Role.OFFICER))]
StaffSocket = Annotated[Principal, Depends(AllowWebSocket(Role.ADMIN, Role.SUPERVISOR, Role.OFFICER))]
TOKEN_TYPE = "checkin"
_bearer = HTTPBearer(auto_error=False, description="the token from POST /api/checkin/sessions")


# ---- the subject's session token ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectSession:
    """The bearer of a check-in session token: one subject, one check-in. `refused` is set when the token
    is a valid staff token instead (answered 403 once the request is otherwise valid)."""

    checkin_id: int
    subject_id: int
    expires_at: float
    refused: str = ""


class CheckinSessionRule(AccessRule):
    """The subject's phone page: a check-in session token from POST /api/checkin/sessions (no staff account)."""

    def describe(self) -> str:
        return "the subject's check-in session token (POST /api/checkin/sessions)"

    def __call__(self, ctx: Ctx,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> SubjectSession:
        try:
            if credentials is None or not credentials.credentials:
                raise NotAuthenticated("not signed in: start a check-in with POST /api/checkin/sessions and send "
                                       "'Authorization: Bearer <token>'")
            claims = decode_token(credentials.credentials, key=ctx.jwt_key)
        except NotAuthenticated as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from exc
        if claims.get("typ") != TOKEN_TYPE:
            return SubjectSession(0, 0, 0, refused="this is a staff token: the session API takes the token of a "
                                                   "check-in started with POST /api/checkin/sessions")
        try:
            return SubjectSession(int(claims["ck"]), int(claims["subject"]), float(claims["exp"]))
        except (KeyError, TypeError, ValueError):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", {"WWW-Authenticate": "Bearer"}) from None


CHECKIN_SESSION = CheckinSessionRule()
Subject = Annotated[SubjectSession, Depends(CHECKIN_SESSION)]


def _issue(ctx: ApiContext, checkin_id: int, subject_id: int) -> tuple[str, datetime]:
    now = int(time.time())
    exp = now + ctx.settings.checkin.session_ttl_s
    token = jwt.encode({"iss": ISSUER, "sub": f"checkin:{checkin_id}", "typ": TOKEN_TYPE, "ck": checkin_id,
                        "subject": subject_id, "iat": now, "exp": exp}, ctx.jwt_key, algorithm=ALGORITHM)
    return token, datetime.fromtimestamp(exp, UTC)


def _own(caller: SubjectSession, checkin_id: int) -> None:
    if caller.refused:
        raise HTTPException(status.HTTP_403_FORBIDDEN, caller.refused)
    if caller.checkin_id != checkin_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token is for check-in {caller.checkin_id}, not "
                                                       f"{checkin_id}")


# ---- helpers -----------------------------------------------------------------------------------------


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CheckinError as exc:
        raise HTTPException(exc.status, str(exc)) from exc


def _now() -> datetime:
    return datetime.now(UTC)


def _cfg(ctx: ApiContext) -> Any:
    return ctx.settings.checkin


def _escalate(ctx: ApiContext) -> timedelta:
    return timedelta(seconds=_cfg(ctx).escalate_after_s)


def _scope(session: Session, caller: Principal) -> SubjectScope:
    return store.scope_of(session, caller.user_id, caller.role)


def _plan(ctx: ApiContext) -> ExtensionPlan:
    return ExtensionPlan.from_pattern(ctx.settings.internal_extension_pattern)


def _publish(ctx: ApiContext, *events: Any) -> None:
    """From a sync route (a worker thread): publish on the event loop."""
    for ev in events:
        anyio.from_thread.run_sync(ctx.bus.publish, ev)


def _event(ctx: ApiContext, kind: str, subject_id: int | None, checkin_id: int | None, **data: Any) -> CheckinEvent:
    return CheckinEvent(ctx.settings.node_name, kind, subject_id, checkin_id, data, time.time())


def _subject(session: Session, caller: Principal, subject_id: int) -> CheckinSubject:
    with _errors():
        return store.visible_subject(session, _scope(session, caller), subject_id)


def _checkin(session: Session, caller: Principal, checkin_id: int) -> CheckIn:
    with _errors():
        row = store.get_checkin(session, checkin_id)
        if not _scope(session, caller).sees(row.organisation_id, row.officer_id):
            raise store.Forbidden(f"check-in {row.id} is of a subject you do not supervise")
    return row


def _data_path(ctx: ApiContext, rel: str) -> Path:
    return ctx.settings.data_dir / rel


def _image_response(ctx: ApiContext, rel: str | None, content_type: str) -> Response:
    if not rel:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no image")
    path = _data_path(ctx, rel)
    try:
        data = path.read_bytes()
    except OSError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the image file {rel} is missing") from None
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, no-store"})


async def _body_image(request: Request, ctx: ApiContext) -> Any:
    limit = _cfg(ctx).max_image_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"the image is larger than {limit} bytes")
    data = await request.body()
    try:
        return read_image(data, limit)
    except ImageError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unreadable image: {exc}") from exc


# ---- schemas -----------------------------------------------------------------------------------------


def _area(value: Any) -> dict[str, Any] | None:
    try:
        return check_area(value)
    except Invalid as exc:
        raise ValueError(str(exc)) from None


class SubjectCreate(_In):
    name: str = Field(pattern=store.NAME_RE, examples=["王某"])
    number: str | None = Field(None, pattern=SUBJECT_NUMBER_RE, description="keyed on the phone; assigned if omitted")
    officer_id: int | None = Field(None, ge=1, description="the officer in charge; default: the caller")
    organisation_id: int | None = Field(None, ge=1, description="the judicial office; default: the officer's")
    supervision_start: date
    supervision_end: date
    risk_level: RiskLevel = RiskLevel.LOW
    client: str | None = Field(None, max_length=200, description=(
        "the registered client: an internal extension (calls from it identify the subject; roll-calls ring it) "
        "or a SIP URI (roll-calls)"), examples=["80123"])
    area: dict[str, Any] | None = Field(None, description=(
        'allowed area: {"center": [lat, lon], "radius_m": 500} or {"polygon": [[lat, lon], ...]} (>= 3 points)'),
        examples=[{"center": [43.8171, 125.3235], "radius_m": 800}])
    pin: str = Field(pattern=PIN_RE, description="4-8 digits; stored hashed")
    active: bool = True

    @field_validator("area")
    @classmethod
    def _check_area(cls, v: Any) -> dict[str, Any] | None:
        return _area(v)


class SubjectPatch(_Patch):
    nullable = frozenset({"client", "area"})

    name: str | None = Field(None, pattern=store.NAME_RE)
    number: str | None = Field(None, pattern=SUBJECT_NUMBER_RE)
    officer_id: int | None = Field(None, ge=1, description="admins and supervisors only")
    organisation_id: int | None = Field(None, ge=1)
    supervision_start: date | None = None
    supervision_end: date | None = None
    risk_level: RiskLevel | None = None
    client: str | None = Field(None, max_length=200)
    area: dict[str, Any] | None = None
    pin: str | None = Field(None, pattern=PIN_RE)
    active: bool | None = None

    @field_validator("area")
    @classmethod
    def _check_area(cls, v: Any) -> dict[str, Any] | None:
        return _area(v)


class SubjectOut(BaseModel):
    id: int
    number: str
    name: str
    officer_id: int
    organisation_id: int
    supervision_start: date
    supervision_end: date
    risk_level: RiskLevel
    client: str | None
    area: dict[str, Any] | None
    has_photo: bool
    photo_sha256: str | None
    face_enrolled: bool = Field(description="the enrolled photo shows a face the model could describe")
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: CheckinSubject) -> SubjectOut:
        return cls(id=s.id, number=s.number, name=s.name, officer_id=s.officer_id, organisation_id=s.organisation_id,
                   supervision_start=s.supervision_start, supervision_end=s.supervision_end, risk_level=s.risk_level,
                   client=s.client, area=s.area, has_photo=s.photo_path is not None, photo_sha256=s.photo_sha256,
                   face_enrolled=s.photo_descriptor is not None, active=s.active, created_at=s.created_at,
                   updated_at=s.updated_at)


TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


class ScheduleIn(_In):
    kind: ScheduleKind = Field(description="daily, weekly (days), spot (per_week random checks), once")
    start_time: str | None = Field(None, pattern=TIME_PATTERN, description="daily/weekly/spot: HH:MM[:SS], local",
                                   examples=["09:00"])
    end_time: str | None = Field(None, pattern=TIME_PATTERN, examples=["11:30"])
    days: list[int] = Field(default_factory=list, max_length=7, description="ISO weekdays 1 (Mon) .. 7 (Sun)")
    per_week: int = Field(0, ge=0, le=50, description="spot: checks a week")
    spot_s: int = Field(1800, ge=10, le=86400, description="spot: how long each check's window is open")
    seed: int | None = Field(None, ge=0, lt=2**31, description="spot: the same seed gives the same times")
    opens_at: AwareDatetime | None = Field(None, description="once")
    closes_at: AwareDatetime | None = Field(None, description="once")
    grace_s: int = Field(0, ge=0, le=86400, description="after the close, still accepted but late")
    remind_s: int = Field(900, ge=0, le=7 * 86400, description="the reminder goes this long before the opening")
    timezone: str | None = Field(None, max_length=64, description="default: [checkin] timezone (Asia/Shanghai)")


class ScheduleOut(BaseModel):
    id: int
    subject_id: int
    kind: ScheduleKind
    start_time: str | None
    end_time: str | None
    days: list[int]
    per_week: int
    spot_s: int
    seed: int
    opens_at: datetime | None
    closes_at: datetime | None
    grace_s: int
    remind_s: int
    timezone: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, s: CheckinSchedule) -> ScheduleOut:
        return cls.model_validate({k: getattr(s, k) for k in cls.model_fields})


class WindowOut(BaseModel):
    id: int
    subject_id: int
    schedule_id: int
    kind: ScheduleKind
    opens_at: datetime
    closes_at: datetime
    grace_until: datetime
    remind_at: datetime
    reminded_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None
    result: WindowResult

    @classmethod
    def of(cls, w: CheckinWindow) -> WindowOut:
        return cls.model_validate({k: getattr(w, k) for k in cls.model_fields})


class SnapshotOut(BaseModel):
    id: int
    content_type: str
    width: int
    height: int
    faces: int | None
    identity: str
    distance: float | None
    sha256: str
    created_at: datetime
    url: str


class EvidenceOut(BaseModel):
    raw_path: str | None = Field(description="the raw capture (WAV) until the finalised recording replaces it")
    job_state: str | None = Field(description="finalisation: queued, encoding, ..., done (see huiyan.recordings)")
    recording_id: int | None = Field(description="the finalised, hash-chained recording: /api/recordings/{id}")
    sha256: str | None
    duration_s: float | None
    download_url: str | None


class CheckinOut(BaseModel):
    id: int
    subject_id: int
    subject_number: str
    subject_name: str
    organisation_id: int | None
    officer_id: int | None
    window_id: int | None
    rollcall_id: int | None
    kind: CheckinKind
    outcome: CheckinOutcome
    passed: bool
    reason: str
    call_id: str | None
    caller: str
    started_at: datetime
    ended_at: datetime | None
    pin_ok: bool
    challenge: str = Field(description="the digits the subject was asked to read out; the officer checks the answer "
                                       "in the recording (no automatic speech check)")
    location: str = Field(description="none, no_location (a phone call), refused (the page got no geolocation), "
                                      "in_area, outside_area, no_area")
    latitude: float | None
    longitude: float | None
    accuracy_m: float | None
    distance_m: float | None
    identity: str = Field(description="not_checked, match, no_match, no_face, several_faces, no_enrolment, "
                                      "unavailable (no face model: the officer confirms)")
    identity_distance: float | None
    review: str | None
    review_note: str
    reviewed_by_id: int | None
    reviewed_at: datetime | None
    recording: EvidenceOut | None = None
    snapshots: list[SnapshotOut] = Field(default_factory=list)

    @classmethod
    def of(cls, session: Session, row: CheckIn, *, full: bool = False) -> CheckinOut:
        from huiyan.checkin.model import passed

        out = cls(
            id=row.id, subject_id=row.subject_id, subject_number=row.subject.number, subject_name=row.subject.name,
            organisation_id=row.organisation_id, officer_id=row.officer_id, window_id=row.window_id,
            rollcall_id=row.rollcall_id, kind=row.kind, outcome=row.outcome, passed=passed(row.outcome, row.review),
            reason=row.reason, call_id=row.call_id, caller=row.caller, started_at=row.started_at,
            ended_at=row.ended_at, pin_ok=row.pin_ok, challenge=row.challenge, location=row.location,
            latitude=row.latitude, longitude=row.longitude, accuracy_m=row.accuracy_m, distance_m=row.distance_m,
            identity=row.identity, identity_distance=row.identity_distance, review=row.review,
            review_note=row.review_note, reviewed_by_id=row.reviewed_by_id, reviewed_at=row.reviewed_at)
        if full:
            out.recording = _evidence(session, row)
            out.snapshots = [SnapshotOut(id=s.id, content_type=s.content_type, width=s.width, height=s.height,
                                         faces=s.faces, identity=s.identity, distance=s.distance, sha256=s.sha256,
                                         created_at=s.created_at, url=f"/api/checkin/snapshots/{s.id}")
                             for s in store.snapshots_of(session, row.id)]
        return out


def _evidence(session: Session, row: CheckIn) -> EvidenceOut | None:
    if not row.recording_path:
        return None
    job = session.scalar(select(RecordingJob).where(RecordingJob.key == f"checkin:{row.id}"))
    final = session.get(Recording, job.recording_id) if job is not None and job.recording_id is not None else None
    return EvidenceOut(raw_path=row.recording_path, job_state=job.state.value if job else None,
                       recording_id=final.id if final else None, sha256=final.sha256 if final else None,
                       duration_s=final.duration_ms / 1000 if final else None,
                       download_url=f"/api/recordings/{final.id}/download" if final else None)


class ReviewIn(_In):
    result: Literal["pass", "fail"] = Field(description="the officer's word on the check-in, after looking at the "
                                                        "recording, the challenge's answer and the snapshots")
    note: str = Field(min_length=1, max_length=2000)


class AlertOut(BaseModel):
    id: int
    subject_id: int
    checkin_id: int | None
    organisation_id: int | None
    kind: str
    message: str
    officer_id: int | None
    created_at: datetime
    escalate_at: datetime
    escalated_at: datetime | None
    escalated_to_id: int | None
    acknowledged_at: datetime | None
    acknowledged_by_id: int | None
    ack_note: str

    @classmethod
    def of(cls, a: CheckinAlert) -> AlertOut:
        return cls.model_validate({k: getattr(a, k) for k in cls.model_fields})


class AckIn(_In):
    note: str = Field("", max_length=2000, description="what was done about it")


class RollCallIn(_In):
    subject_ids: list[int] = Field(min_length=1, max_length=200, description="called one after another, in order")
    ring_s: int | None = Field(None, ge=5, le=180, description="default: [checkin] rollcall_ring_s")


class EducationIn(_In):
    title: str = Field(pattern=r'^[^\x00-\x1f\x7f";<>\\]{1,100}$', examples=["十二月集中教育：法治讲座"])
    organisation_id: int | None = Field(None, ge=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    subject_ids: list[int] = Field(min_length=1, max_length=200)
    min_share: float | None = Field(None, gt=0, le=1, description="present with at least this share of the time; "
                                                                  "default [checkin] attendance_share")
    video_mode: VideoMode = VideoMode.FOLLOW_TALKER


class StartIn(_In):
    subject_number: str | None = Field(None, pattern=SUBJECT_NUMBER_RE)
    pin: str | None = Field(None, max_length=16)
    code: str | None = Field(None, pattern=r"^[0-9]{6,12}$", description="a one-time code from the officer")


class LocationRefusedIn(_In):
    why: Literal["denied", "unavailable", "timeout", "unsupported"] = Field(
        description="the browser's answer: the subject refused, no position could be had, it took too long, "
                    "or the browser has no geolocation")


class LocationIn(_In):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float | None = Field(None, ge=0, le=100_000, allow_inf_nan=False)


# ---- subjects ----------------------------------------------------------------------------------------


@router.get("/api/checkin/subjects", response_model=Page[SubjectOut])
def list_subjects(caller: Staff, session: DbSession, organisation_id: int | None = None,
                  officer_id: int | None = None, active: bool | None = None,
                  q: Annotated[str | None, Query(max_length=100)] = None,
                  offset: Annotated[int, Query(ge=0)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[SubjectOut]:
    """The subjects the caller may see (officers: their own), by number."""
    items, total = store.list_subjects(session, _scope(session, caller), organisation_id=organisation_id,
                                       officer_id=officer_id, active=active, q=q, offset=offset, limit=limit)
    return Page(items=[SubjectOut.of(s) for s in items], total=total, offset=offset, limit=limit)


@router.post("/api/checkin/subjects", status_code=status.HTTP_201_CREATED, response_model=SubjectOut)
def create_subject(caller: Staff, body: SubjectCreate, ctx: Ctx, session: DbSession) -> SubjectOut:
    """Register a subject. An officer registers subjects of their own; admins and supervisors name the officer."""
    scope = _scope(session, caller)
    officer_id = body.officer_id or caller.user_id
    if officer_id != caller.user_id and not scope.manages:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an officer registers subjects of their own: only admins and "
                                                       "supervisors give a subject to another officer")
    org = body.organisation_id
    if org is None:
        officer = session.get(User, officer_id)
        org = officer.organisation_id if officer else None
        if org is None:
            raise HTTPException(422, "organisation_id: the officer belongs to no "
                                                                      "organisation; name the judicial office")
    if not scope.sees(org, officer_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"organisation {org} is outside your organisation")
    with _errors():
        s = store.create_subject(session, name=body.name, officer_id=officer_id, organisation_id=org,
                                 supervision_start=body.supervision_start, supervision_end=body.supervision_end,
                                 pin=body.pin, plan=_plan(ctx), risk_level=body.risk_level, client=body.client,
                                 area=body.area, number=body.number, active=body.active)
        session.commit()
    return SubjectOut.of(s)


@router.get("/api/checkin/subjects/{subject_id}", response_model=SubjectOut)
def get_subject(caller: Staff, subject_id: int, session: DbSession) -> SubjectOut:
    return SubjectOut.of(_subject(session, caller, subject_id))


@router.patch("/api/checkin/subjects/{subject_id}", response_model=SubjectOut)
def update_subject(caller: Staff, subject_id: int, body: SubjectPatch, ctx: Ctx, session: DbSession) -> SubjectOut:
    """Change the registry entry; `pin` sets a new PIN (and clears the wrong-PIN count); `active: false`
    stops the subject's windows (those not open yet are cancelled)."""
    subject = _subject(session, caller, subject_id)
    changes = body.changes()
    scope = _scope(session, caller)
    if "officer_id" in changes and changes["officer_id"] != subject.officer_id and not scope.manages:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only admins and supervisors give a subject to another officer")
    if not scope.sees(changes.get("organisation_id", subject.organisation_id),
                      changes.get("officer_id", subject.officer_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the change would put the subject outside your organisation")
    with _errors():
        subject = store.update_subject(session, subject_id, changes, plan=_plan(ctx))
        session.commit()
    return SubjectOut.of(subject)


@router.put("/api/checkin/subjects/{subject_id}/photo")
async def enrol_photo(caller: Staff, subject_id: int, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Enrol the subject's face photo: the raw body is a JPEG or PNG (`Content-Type: image/jpeg` or
    `image/png`). Stored under the data directory; with the face model installed, the photo must show
    exactly one face (422 otherwise) and its descriptor is kept for the comparisons. An unreadable image
    is a 400 with the reason."""
    await run_in_threadpool(_check_subject, ctx, caller, subject_id)
    img = await _body_image(request, ctx)

    def work() -> dict[str, Any]:
        eng = engine(_cfg(ctx).face_threshold)
        descriptor, faces = None, None
        if eng.available:
            found = eng.faces(img)
            faces = found.count
            if found.count != 1:
                raise HTTPException(422,
                                    f"the photo shows {found.count} faces: enrol a photo of the subject alone, face "
                                    "to the camera")
            descriptor = found.descriptor
        rel = f"checkin/photos/subject-{subject_id}-{img.sha256[:16]}{img.suffix}"
        path = _data_path(ctx, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(img.data)
        with ctx.sessions() as s:
            subject = store.get_subject(s, subject_id)
            old = subject.photo_path
            subject.photo_path, subject.photo_sha256, subject.photo_descriptor = rel, img.sha256, descriptor
            s.commit()
        if old and old != rel:
            _data_path(ctx, old).unlink(missing_ok=True)
        return {"subject_id": subject_id, "photo_sha256": img.sha256, "content_type": img.content_type,
                "width": img.width, "height": img.height, "faces": faces, "face_enrolled": descriptor is not None,
                "model": eng.model if eng.available else None, "model_unavailable": eng.reason or None}

    return await run_in_threadpool(work)


def _check_subject(ctx: ApiContext, caller: Principal, subject_id: int) -> None:
    with ctx.sessions() as s:
        _subject(s, caller, subject_id)


@router.get("/api/checkin/subjects/{subject_id}/photo", response_class=Response)
def subject_photo(caller: Staff, subject_id: int, ctx: Ctx, session: DbSession) -> Response:
    s = _subject(session, caller, subject_id)
    rel = s.photo_path
    return _image_response(ctx, rel, "image/png" if rel and rel.endswith(".png") else "image/jpeg")


@router.post("/api/checkin/subjects/{subject_id}/codes", status_code=status.HTTP_201_CREATED)
def issue_code(caller: Staff, subject_id: int, ctx: Ctx, session: DbSession) -> dict[str, Any]:
    """A one-time code for the subject's phone page (instead of the PIN), valid once until it expires."""
    s = _subject(session, caller, subject_id)
    with _errors():
        code, expires = store.issue_code(session, s, ttl_s=_cfg(ctx).code_ttl_s, actor_id=caller.user_id)
        session.commit()
    return {"subject_id": s.id, "code": code, "expires_at": expires}


# ---- schedules and windows ---------------------------------------------------------------------------


@router.get("/api/checkin/subjects/{subject_id}/schedules", response_model=list[ScheduleOut])
def list_schedules(caller: Staff, subject_id: int, session: DbSession) -> list[ScheduleOut]:
    _subject(session, caller, subject_id)
    rows = session.scalars(select(CheckinSchedule).where(CheckinSchedule.subject_id == subject_id)
                           .order_by(CheckinSchedule.id))
    return [ScheduleOut.of(r) for r in rows]


@router.post("/api/checkin/subjects/{subject_id}/schedules", status_code=status.HTTP_201_CREATED)
def add_schedule(caller: Staff, subject_id: int, body: ScheduleIn, ctx: Ctx, session: DbSession) -> dict[str, Any]:
    """Add a schedule; the answer previews its windows of the next 7 days. The scheduler makes them (and
    a window open now can be checked in at once)."""
    from huiyan.checkin.model import windows_of

    s = _subject(session, caller, subject_id)
    tz = body.timezone or _cfg(ctx).timezone
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception:  # noqa: BLE001
        raise HTTPException(422, f"unknown time zone {tz!r}") from None
    with _errors():
        row = store.add_schedule(session, s, kind=body.kind, timezone=tz, start_time=body.start_time,
                                 end_time=body.end_time, days=body.days, per_week=body.per_week, spot_s=body.spot_s,
                                 seed=body.seed, opens_at=body.opens_at, closes_at=body.closes_at,
                                 grace_s=body.grace_s, remind_s=body.remind_s, actor_id=caller.user_id)
        at = _now()
        store.materialise(session, at, horizon=timedelta(hours=_cfg(ctx).horizon_h),
                          lookback=timedelta(hours=_cfg(ctx).lookback_h))
        session.commit()
        preview = windows_of(store.spec_of(row), at, at + timedelta(days=7))
    return {"schedule": ScheduleOut.of(row).model_dump(mode="json"),
            "next_windows": [{"opens_at": w.opens_at, "closes_at": w.closes_at, "grace_until": w.grace_until}
                             for w in preview[:50]]}


@router.delete("/api/checkin/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_schedule(caller: Staff, schedule_id: int, session: DbSession) -> Response:
    """Stop a schedule: its windows not open yet are cancelled; past ones and their check-ins stay."""
    row = session.get(CheckinSchedule, schedule_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"schedule {schedule_id} not found")
    _subject(session, caller, row.subject_id)
    with _errors():
        store.remove_schedule(session, schedule_id)
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/checkin/windows", response_model=list[WindowOut])
def list_windows(caller: Staff, session: DbSession, subject_id: int,
                 since: AwareDatetime | None = None, until: AwareDatetime | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[WindowOut]:
    """A subject's windows (made by the scheduler up to its horizon), by opening time."""
    _subject(session, caller, subject_id)
    stmt = select(CheckinWindow).where(CheckinWindow.subject_id == subject_id)
    if since is not None:
        stmt = stmt.where(CheckinWindow.grace_until > since)
    if until is not None:
        stmt = stmt.where(CheckinWindow.opens_at < until)
    return [WindowOut.of(w) for w in session.scalars(stmt.order_by(CheckinWindow.opens_at).limit(limit))]


# ---- check-ins -------------------------------------------------------------------------------------


@router.get("/api/checkin/checkins", response_model=Page[CheckinOut])
def list_checkins(caller: Staff, session: DbSession, subject_id: int | None = None,
                  outcome: CheckinOutcome | None = None, kind: CheckinKind | None = None,
                  rollcall_id: int | None = None, since: AwareDatetime | None = None,
                  until: AwareDatetime | None = None, offset: Annotated[int, Query(ge=0)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[CheckinOut]:
    """Check-ins the caller may see, newest first."""
    items, total = store.list_checkins(session, _scope(session, caller), subject_id=subject_id, outcome=outcome,
                                       kind=kind, rollcall_id=rollcall_id, since=since, until=until, offset=offset,
                                       limit=limit)
    return Page(items=[CheckinOut.of(session, r) for r in items], total=total, offset=offset, limit=limit)


@router.get("/api/checkin/checkins/{checkin_id}", response_model=CheckinOut)
def get_checkin(caller: Staff, checkin_id: int, session: DbSession) -> CheckinOut:
    """One check-in with its evidence: the recording (raw, then finalised), the challenge, location, snapshots."""
    return CheckinOut.of(session, _checkin(session, caller, checkin_id), full=True)


@router.post("/api/checkin/checkins/{checkin_id}/review", response_model=CheckinOut)
def review_checkin(caller: Staff, checkin_id: int, body: ReviewIn, ctx: Ctx, session: DbSession) -> CheckinOut:
    """The officer's pass or fail, with a note (e.g. after hearing the challenge answered in the recording, or
    confirming the face where no model could). It decides whether the check-in counts as passed."""
    _checkin(session, caller, checkin_id)
    with _errors():
        row = store.review(session, checkin_id, body.result, body.note, caller.user_id, _now())
        session.commit()
    _publish(ctx, _event(ctx, "reviewed", row.subject_id, row.id, review=body.result))
    return CheckinOut.of(session, row, full=True)


@router.get("/api/checkin/snapshots/{snapshot_id}", response_class=Response)
def get_snapshot(caller: Staff, snapshot_id: int, ctx: Ctx, session: DbSession) -> Response:
    snap = session.get(CheckinSnapshot, snapshot_id)
    if snap is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"snapshot {snapshot_id} not found")
    _checkin(session, caller, snap.checkin_id)
    return _image_response(ctx, snap.path, snap.content_type)


# ---- roll-calls ----------------------------------------------------------------------------------------


def _runtime(request: Request) -> Any:
    svc = getattr(request.app.state, "checkin", None)
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "roll-calls are not available (no PBX connection)")
    return svc


@router.post("/api/checkin/rollcalls", status_code=status.HTTP_202_ACCEPTED)
async def start_rollcall(caller: Staff, body: RollCallIn, request: Request, ctx: Ctx) -> dict[str, Any]:
    """Roll-call (点验): call each subject's registered client, one after another, into the check-in flow
    (PIN, liveness challenge, recorded). Unanswered, declined or unreachable: missed, and the officer is
    alerted. Follow it with GET /api/checkin/rollcalls/{id} or the `rollcall_progress` events."""
    svc = _runtime(request)

    def scope() -> SubjectScope:
        with ctx.sessions() as s:
            return _scope(s, caller)

    with _errors():
        return await svc.start_rollcall(await run_in_threadpool(scope), body.subject_ids, actor_id=caller.user_id,
                                        ring_s=body.ring_s)


@router.get("/api/checkin/rollcalls/{rollcall_id}")
def get_rollcall(caller: Staff, rollcall_id: int, session: DbSession) -> dict[str, Any]:
    """Progress: each subject's state (waiting, in_progress, done) and outcome, and a summary."""
    with _errors():
        view = rollcall_view(session, rollcall_id)
    scope = _scope(session, caller)
    rc = store.get_rollcall(session, rollcall_id)
    if rc.created_by_id != caller.user_id and not scope.everything:
        for item in store.rollcall_items(session, rollcall_id):
            if not scope.sees(item.organisation_id, item.officer_id):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"roll-call {rollcall_id} is not yours")
    return view


# ---- alerts and notifications -----------------------------------------------------------------------


@router.get("/api/checkin/alerts", response_model=Page[AlertOut])
def list_alerts(caller: Staff, session: DbSession, open_only: bool = False, subject_id: int | None = None,
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Page[AlertOut]:
    """Alerts to the caller (as officer in charge or as the office head they were escalated to), and for
    supervisors those of their organisation; newest first."""
    items, total = store.list_alerts(session, _scope(session, caller), caller.user_id, open_only=open_only,
                                     subject_id=subject_id, offset=offset, limit=limit)
    return Page(items=[AlertOut.of(a) for a in items], total=total, offset=offset, limit=limit)


@router.post("/api/checkin/alerts/{alert_id}/ack", response_model=AlertOut)
def acknowledge_alert(caller: Staff, alert_id: int, body: AckIn, ctx: Ctx, session: DbSession) -> AlertOut:
    """Acknowledge an alert (stops its escalation if it has not happened yet). 409 when already done."""
    with _errors():
        alert = store.get_alert(session, alert_id)
        scope = _scope(session, caller)
        if not (scope.sees(alert.organisation_id, alert.officer_id) or alert.escalated_to_id == caller.user_id):
            raise store.Forbidden(f"alert {alert_id} is not yours")
        alert = store.acknowledge(session, alert_id, caller.user_id, body.note, _now())
        session.commit()
    _publish(ctx, alert_event(alert, "acknowledged"))
    return AlertOut.of(alert)


@router.get("/api/checkin/notifications")
def my_notifications(caller: Staff, session: DbSession, unread_only: bool = False,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """The caller's notifications: alerts about their subjects, escalations to them."""
    return [{"id": n.id, "kind": n.kind, "subject_id": n.subject_id, "alert_id": n.alert_id,
             "window_id": n.window_id, "message": n.message, "created_at": n.created_at, "read_at": n.read_at}
            for n in store.notifications_for(session, caller.user_id, unread_only=unread_only, limit=limit)]


@router.get("/api/checkin/subjects/{subject_id}/notifications")
def subject_notifications(caller: Staff, subject_id: int, session: DbSession) -> list[dict[str, Any]]:
    """The reminders sent to a subject before their windows."""
    _subject(session, caller, subject_id)
    return [{"id": n.id, "kind": n.kind, "window_id": n.window_id, "message": n.message, "created_at": n.created_at}
            for n in store.subject_notifications(session, subject_id)]


# ---- education sessions -----------------------------------------------------------------------------


@router.post("/api/checkin/education", status_code=status.HTTP_201_CREATED)
def create_education(caller: Staff, body: EducationIn, request: Request, ctx: Ctx,
                     session: DbSession) -> dict[str, Any]:
    """A group education session (集中教育): a room of kind `education` (recorded) open for its time, the
    caller chairing; the subjects' registered extensions are its invitees (they join without a PIN).
    Attendance comes from the room's join/leave events: GET /api/checkin/education/{id}."""
    from huiyan.api.rooms import _changed as room_changed

    scope = _scope(session, caller)
    if body.organisation_id is not None and not scope.sees(body.organisation_id, None):
        me = session.get(User, caller.user_id)
        if me is None or me.organisation_id != body.organisation_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"organisation {body.organisation_id} is outside yours")
    with _errors():
        try:
            edu = store.create_education(session, scope, title=body.title, organisation_id=body.organisation_id,
                                         starts_at=body.starts_at, ends_at=body.ends_at, subject_ids=body.subject_ids,
                                         min_share=body.min_share or _cfg(ctx).attendance_share,
                                         actor_id=caller.user_id,
                                         plan=ExtensionPlan.from_pattern(ctx.settings.room_pattern),
                                         video_mode=body.video_mode)
        except DirectoryError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT if "already" in str(exc) or "no free" in str(exc)
                                else 422, str(exc)) from exc
        session.commit()
    room_changed(request, ctx, "created", edu.room_id)
    _publish(ctx, _event(ctx, "education_created", None, None, education_id=edu.id, room_id=edu.room_id))
    return _education_view(session, edu)


def _education_view(session: Session, edu: Any) -> dict[str, Any]:
    return {"id": edu.id, "title": edu.title, "room_id": edu.room_id, "room_number": edu.room.number,
            "organisation_id": edu.organisation_id, "starts_at": edu.starts_at, "ends_at": edu.ends_at,
            "min_share": edu.min_share, "attendance": store.attendance(session, edu, _now())}


@router.get("/api/checkin/education/{education_id}")
def get_education(caller: Staff, education_id: int, session: DbSession) -> dict[str, Any]:
    """The session with each subject's minutes present (from the room's join/leave events) and whether that
    reaches the share needed to count as present."""
    with _errors():
        edu = store.get_education(session, education_id)
        scope = _scope(session, caller)
        if not scope.everything and edu.created_by_id != caller.user_id and not any(
                scope.sees(a.subject.organisation_id, a.subject.officer_id) for a in edu.attendees):
            raise store.Forbidden(f"education session {education_id} is not yours")
    return _education_view(session, edu)


# ---- reports ---------------------------------------------------------------------------------------


def _report(session: Session, caller: Principal, ctx: ApiContext, month: str,
            organisation_id: int | None) -> tuple[list[Any], str]:
    with _errors():
        since, until = month_bounds(month, _cfg(ctx).timezone)
        rows = store.report(session, _scope(session, caller), month, since, until, organisation_id=organisation_id)
    return rows, month


MonthQuery = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (Asia/Shanghai)")]


@router.get("/api/checkin/reports")
def report(caller: Staff, session: DbSession, ctx: Ctx, month: MonthQuery,
           organisation_id: int | None = None) -> dict[str, Any]:
    """Per office for one month: windows due and how they ended (completion rate = passed / due), roll-calls,
    misses (windows and roll-calls), check-ins by outcome, alerts (acknowledged, escalated)."""
    rows, month = _report(session, caller, ctx, month, organisation_id)
    t = totals(rows, month)
    return {"month": month, "timezone": _cfg(ctx).timezone, "rows": [r.view() for r in rows], "totals": t.view()}


@router.get("/api/checkin/reports.csv", response_class=Response)
def report_csv(caller: Staff, session: DbSession, ctx: Ctx, month: MonthQuery,
               organisation_id: int | None = None) -> Response:
    """The report as CSV (UTF-8 with BOM, for Excel), a total row last."""
    rows, month = _report(session, caller, ctx, month, organisation_id)
    return Response(csv_bytes(rows, month), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="checkin-report-{month}.csv"'})


@router.get("/api/checkin/reports.xlsx", response_class=Response)
def report_xlsx(caller: Staff, session: DbSession, ctx: Ctx, month: MonthQuery,
                organisation_id: int | None = None) -> Response:
    """The report as an Excel workbook, a total row last."""
    rows, month = _report(session, caller, ctx, month, organisation_id)
    return Response(xlsx_bytes(rows, month),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="checkin-report-{month}.xlsx"'})


# ---- the subject's session (the phone page's API) ----------------------------------------------------


@router.post("/api/checkin/sessions", status_code=status.HTTP_201_CREATED, dependencies=[Depends(PUBLIC)])
def start_session(body: StartIn, ctx: Ctx, session: DbSession) -> dict[str, Any]:
    """Start a check-in from the subject's phone page with `subject_number` + `pin`, or a one-time `code`.

    - 201 inside an open window: `token` (send `Authorization: Bearer <token>` to the session calls below),
      `checkin_id`, the window, and the liveness `challenge` (digits to read out on camera; the officer
      checks the answer in the recording - there is no automatic speech check).
    - 409 when no window is open: the attempt is recorded (`outside_window`) and is never a pass.
    - 401 for a wrong PIN (with the tries left), 423 for the third in a row (`rejected`, the officer is
      alerted), 404 for an unknown subject number, 401 for an unknown, used or expired code.

    Then: `GET .../sessions/{id}/challenge`; `POST .../location` with the browser's geolocation
    (`latitude` -90..90, `longitude` -180..180, `accuracy_m`; 422 with the reason otherwise; outside the
    allowed area is flagged at once); `POST .../snapshots` with a JPEG/PNG still as the raw body
    (`Content-Type: image/jpeg` or `image/png`; 400 with the reason if unreadable, nothing stored),
    compared with the enrolled photo; `POST .../finish` for the outcome (`identity_failed`, `outside_area`,
    `on_time`, `late`, or `outside_window` if the window closed meanwhile)."""
    at = _now()
    cfg = _cfg(ctx)
    if body.code:
        if body.pin or body.subject_number:
            raise HTTPException(422, "give either a code, or subject_number and pin")
        subject = store.redeem_code(session, body.code, at)
        if subject is None:
            session.commit()
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the code is unknown, used or expired")
        if not subject.active:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown subject")
    else:
        if not body.subject_number or not body.pin:
            raise HTTPException(422, "give subject_number and pin (or a code)")
        subject = store.subject_by_number(session, body.subject_number)
        if subject is None or not subject.active:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active subject numbered {body.subject_number}")
        if not store.check_pin(subject, body.pin):
            subject.pin_failures += 1
            if subject.pin_failures >= cfg.pin_tries:
                subject.pin_failures = 0
                row = store.start_checkin(session, subject, CheckinKind.BROWSER, at,
                                          window=store.open_window(session, subject.id, at))
                alert = store.finish(session, row, CheckinOutcome.REJECTED, at, reason=f"{cfg.pin_tries} wrong PINs",
                                     escalate_after=_escalate(ctx))
                session.commit()
                _publish(ctx, _event(ctx, "pin_rejected", subject.id, row.id, via="browser"),
                         *([alert_event(alert, "raised")] if alert else []))
                raise HTTPException(status.HTTP_423_LOCKED, f"{cfg.pin_tries} wrong PINs: this check-in is rejected and "
                                                            "your officer has been told")
            left = cfg.pin_tries - subject.pin_failures
            session.commit()
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"wrong PIN: {left} tries left")
        subject.pin_failures = 0
    window = store.open_window(session, subject.id, at)
    row = store.start_checkin(session, subject, CheckinKind.BROWSER, at, window=window,
                              challenge=new_challenge(cfg.challenge_digits))
    if window is None:
        store.finish(session, row, CheckinOutcome.OUTSIDE_WINDOW, at, reason="no check-in window open",
                     escalate_after=_escalate(ctx))
        session.commit()
        _publish(ctx, _event(ctx, "outside_window", subject.id, row.id, via="browser"))
        raise HTTPException(status.HTTP_409_CONFLICT, "no check-in window is open for you now: this attempt is "
                                                      "recorded, and it does not count as a check-in")
    row.pin_ok = True
    session.commit()
    token, expires = _issue(ctx, row.id, subject.id)
    _publish(ctx, _event(ctx, "started", subject.id, row.id, via="browser"))
    return {"checkin_id": row.id, "token": token, "expires_at": expires,
            "subject": {"number": subject.number, "name": subject.name},
            "window": {"opens_at": window.opens_at, "closes_at": window.closes_at, "grace_until": window.grace_until},
            "challenge": _challenge_view(row)}


def _challenge_view(row: CheckIn) -> dict[str, Any]:
    return {"digits": row.challenge,
            "instructions_zh": f"请面对镜头，大声读出数字：{' '.join(row.challenge)}",
            "instructions_en": f"Face the camera and read these digits aloud: {' '.join(row.challenge)}",
            "checked": "by the officer, in the recording (no automatic speech check)"}


def _live_row(session: Session, caller: SubjectSession, checkin_id: int) -> CheckIn:
    _own(caller, checkin_id)
    row = session.get(CheckIn, checkin_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"check-in {checkin_id} not found")
    if row.outcome != CheckinOutcome.PENDING:
        raise HTTPException(status.HTTP_409_CONFLICT, f"this check-in has ended ({row.outcome.value})")
    return row


@router.get("/api/checkin/sessions/{checkin_id}")
def session_state(caller: Subject, checkin_id: int, session: DbSession) -> dict[str, Any]:
    """Where the subject's check-in stands."""
    _own(caller, checkin_id)
    row = session.get(CheckIn, checkin_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"check-in {checkin_id} not found")
    return {"checkin_id": row.id, "outcome": row.outcome.value, "location": row.location, "identity": row.identity,
            "snapshots": len(store.snapshots_of(session, row.id)), "challenge": _challenge_view(row)}


@router.get("/api/checkin/sessions/{checkin_id}/challenge")
def session_challenge(caller: Subject, checkin_id: int, session: DbSession) -> dict[str, Any]:
    """The liveness challenge: digits to read out on camera during the video call."""
    return _challenge_view(_live_row(session, caller, checkin_id))


@router.post("/api/checkin/sessions/{checkin_id}/call")
def session_call(caller: Subject, checkin_id: int, request: Request, ctx: Ctx, session: DbSession) -> dict[str, Any]:
    """How the subject's page places the recorded video call for this check-in (WebRTC over Asterisk's SIP
    WebSocket, as the citizen page does): the WebSocket, the number to call, and the SIP headers the INVITE
    must carry - a one-time token (valid 2 minutes) that ties the call and its recording to this check-in,
    so nothing is asked again on the call. 409 once the check-in has ended; 503 without a PBX."""
    from huiyan.api.public import sip_ws_url
    from huiyan.checkin.flow import BROWSER_HEADER
    from huiyan.config.render import WEB_GUEST_HEADER

    row = _live_row(session, caller, checkin_id)
    svc = getattr(request.app.state, "checkin", None)
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the check-in call service is not running "
                                                                 "(no PBX connection): try again shortly")
    token = svc.expect_browser_call(row.id)
    domain = ctx.settings.public_host
    number = svc.service_number
    return {"checkin_id": row.id, "ws_url": sip_ws_url(request, ctx.settings), "target": f"sip:{number}@{domain}",
            "from_uri": f"sip:checkin{row.id}@{domain}", "display_name": row.subject.name,
            "headers": [f"{WEB_GUEST_HEADER[0]}: {WEB_GUEST_HEADER[1]}", f"{BROWSER_HEADER}: {token}"],
            "expires_in": int(svc.BROWSER_CALL_TTL_S)}


@router.post("/api/checkin/sessions/{checkin_id}/location")
def session_location(caller: Subject, checkin_id: int, body: LocationIn, ctx: Ctx,
                     session: DbSession) -> dict[str, Any]:
    """The browser's geolocation. Outside the allowed area is flagged at once (the finish makes it the outcome)."""
    row = _live_row(session, caller, checkin_id)
    where, distance = locate(row.subject.area, body.latitude, body.longitude)
    row.latitude, row.longitude, row.accuracy_m = body.latitude, body.longitude, body.accuracy_m
    row.location, row.distance_m = where, distance
    session.commit()
    _publish(ctx, _event(ctx, "location", row.subject_id, row.id, location=where, distance_m=distance))
    return {"checkin_id": row.id, "location": where, "distance_m": distance}


@router.post("/api/checkin/sessions/{checkin_id}/location/refused")
def session_location_refused(caller: Subject, checkin_id: int, body: LocationRefusedIn, ctx: Ctx,
                             session: DbSession) -> dict[str, Any]:
    """The page could not send a geolocation (the subject refused it, or the browser could not get one): the
    check-in says `refused` instead of nothing, the officer is told live, and the finish names it."""
    row = _live_row(session, caller, checkin_id)
    if row.location in ("none", "refused"):  # a position already sent stays the evidence
        row.location = "refused"
    session.commit()
    _publish(ctx, _event(ctx, "location", row.subject_id, row.id, location="refused", why=body.why))
    return {"checkin_id": row.id, "location": row.location, "why": body.why}


@router.post("/api/checkin/sessions/{checkin_id}/snapshots", status_code=status.HTTP_201_CREATED)
async def session_snapshot(caller: Subject, checkin_id: int, request: Request, ctx: Ctx) -> dict[str, Any]:
    """A still from the camera (raw JPEG/PNG body), compared with the enrolled photo. 400 with the reason for
    an unreadable image (nothing stored)."""
    def check() -> None:
        with ctx.sessions() as s:
            _live_row(s, caller, checkin_id)

    await run_in_threadpool(check)
    img = await _body_image(request, ctx)

    def work() -> dict[str, Any]:
        with ctx.sessions() as s:
            row = _live_row(s, caller, checkin_id)
            verdict = engine(_cfg(ctx).face_threshold).compare(row.subject.photo_descriptor, img)
            day = _now()
            rel = f"checkin/snapshots/{day:%Y}/{day:%m}/{day:%d}/ck{row.id}-{img.sha256[:16]}{img.suffix}"
            path = _data_path(ctx, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(img.data)
            snap = CheckinSnapshot(checkin_id=row.id, path=rel, sha256=img.sha256, content_type=img.content_type,
                                   width=img.width, height=img.height, faces=verdict.faces, identity=verdict.identity,
                                   distance=verdict.distance, created_at=day)
            s.add(snap)
            s.flush()
            verdicts = [x.identity for x in store.snapshots_of(s, row.id)]
            # Someone else on camera at any moment outweighs the subject at another: a relative may take over.
            row.identity = next((v for v in ("no_match", "match") if v in verdicts), verdict.identity)
            dists = [x.distance for x in store.snapshots_of(s, row.id) if x.distance is not None]
            row.identity_distance = max(dists) if dists else None
            s.commit()
            _publish(ctx, _event(ctx, "snapshot", row.subject_id, row.id, identity=verdict.identity,
                                 distance=verdict.distance))
            return {"snapshot_id": snap.id, "checkin_identity": row.identity, **verdict.view()}

    return await run_in_threadpool(work)


@router.post("/api/checkin/sessions/{checkin_id}/finish")
def session_finish(caller: Subject, checkin_id: int, ctx: Ctx, session: DbSession) -> dict[str, Any]:
    """End the check-in and get its outcome."""
    row = _live_row(session, caller, checkin_id)
    at = _now()
    window = session.get(CheckinWindow, row.window_id) if row.window_id else None
    base = store.outcome_for(window, at)
    if base is None:
        outcome, reason = CheckinOutcome.OUTSIDE_WINDOW, "the window closed before the check-in was finished"
    elif row.identity == "no_match":
        outcome, reason = CheckinOutcome.IDENTITY_FAILED, "the face on camera is not the enrolled subject's"
    elif row.location == "outside_area":
        outcome, reason = CheckinOutcome.OUTSIDE_AREA, f"{row.distance_m} m outside the allowed area"
    elif row.location in ("none", "refused"):
        outcome, reason = base, "no location evidence: the subject's browser did not send one (officer review)"
    else:
        outcome, reason = base, ""
    alert = store.finish(session, row, outcome, at, reason=reason, escalate_after=_escalate(ctx))
    session.commit()
    _publish(ctx, _event(ctx, "finished", row.subject_id, row.id, outcome=outcome.value, location=row.location,
                         identity=row.identity), *([alert_event(alert, "raised")] if alert else []))
    from huiyan.checkin.model import passed

    return {"checkin_id": row.id, "outcome": outcome.value, "passed": passed(outcome, None), "reason": reason,
            "location": row.location, "identity": row.identity}


# ---- live events for officers ----------------------------------------------------------------------


@router.websocket("/api/checkin/events")
async def checkin_events(websocket: WebSocket, caller: StaffSocket, ctx: Ctx) -> None:
    """`CheckinEvent`s and `CheckinAlertEvent`s of the subjects the caller may see (an officer: their own;
    alerts escalated to them too), as JSON text frames like /api/events. Closes with 4401/4403 like it."""
    def load() -> tuple[SubjectScope, dict[int, tuple[int, int]]]:
        with ctx.sessions() as s:
            scope = _scope(s, caller)
            subjects = {i: (o, f) for i, o, f in s.execute(select(CheckinSubject.id, CheckinSubject.organisation_id,
                                                                  CheckinSubject.officer_id))}
            return scope, subjects

    queue = ctx.bus.subscribe()
    try:
        scope, subjects = await run_in_threadpool(load)
        await websocket.accept()

        async def visible(ev: Any) -> bool:
            nonlocal subjects
            if isinstance(ev, CheckinAlertEvent):
                if caller.user_id in (ev.officer_id, ev.escalated_to_id):
                    return True
            elif not isinstance(ev, CheckinEvent):
                return False
            sid = ev.subject_id
            if sid is None:
                return scope.everything
            if sid not in subjects:
                subjects = (await run_in_threadpool(load))[1]
            org, officer = subjects.get(sid, (None, None))
            return scope.sees(org, officer)

        async def send() -> None:
            while True:
                remaining = caller.expires_at - time.time()
                if remaining <= 0:
                    await websocket.close(WS_UNAUTHENTICATED, "token expired")
                    return
                try:
                    ev = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    continue
                if await visible(ev):
                    await websocket.send_text(encode_event(ev))

        async def until_disconnect() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        async with anyio.create_task_group() as tg:
            async def first(job: Any) -> None:
                try:
                    await job()
                except Exception:  # noqa: BLE001 - the client went away mid-send
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(first, send)
            tg.start_soon(first, until_disconnect)
    finally:
        ctx.bus.unsubscribe(queue)
