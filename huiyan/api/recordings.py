"""/api/recordings: finalised recordings as evidence (录音录像证据) — search, metadata, stream and download with
HTTP Range, signed expiring share links, the access audit and the finalisation queue.

Who sees what: admins every recording; supervisors those of their organisation and the organisations below
it (all when attached to none); everyone the recordings they took part in and those of the mediation cases
they mediate. Every access — allowed, denied (403), for an unknown id (404) — is a line in the audit
(`GET /api/recordings/audit`, admins). A recording purged by retention keeps its metadata (its row stays in
the integrity chain); its media answers 410.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.api.access import PUBLIC, Admin, AnyUser, Principal
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.schemas import Page, _In
from huiyan.db.models import Recording, RecordingAudit, RecordingJob, RecordingStatus
from huiyan.recordings import store
from huiyan.recordings.model import BadSignature, RangeNotSatisfiable, ShareError, check_share, parse_range, sign_share
from huiyan.recordings.settings import SESSION_TYPES

router = APIRouter(tags=["recordings"])
log = logging.getLogger(__name__)

CHUNK = 256 * 1024
SHARE_SECRET = "recordings_share"  # the name of the HMAC key in secrets.json (made on first use)
MIME = {"m4a": "audio/mp4", "mp4": "video/mp4"}


# ---- schemas --------------------------------------------------------------------------------------


class ParticipantOut(BaseModel):
    role: str
    user_id: int | None
    number: str
    name: str


class RecordingOut(BaseModel):
    id: int
    seq: int = Field(description="position in the integrity chain")
    session_type: str = Field(description="hotline, meeting, mediation, dispatch, education, checkin")
    session_id: str
    call_id: str | None
    room_id: int | None
    case_id: int | None
    organisation_id: int | None
    participants: list[ParticipantOut]
    started_at: datetime
    ended_at: datetime
    duration_s: float
    size_bytes: int
    container: str
    codecs: list[str]
    sha256: str
    digest: str = Field(description="this row's chain digest (covers the previous row's)")
    prev_digest: str
    status: RecordingStatus
    status_at: datetime | None
    supersedes_id: int | None
    created_at: datetime
    media_url: str
    download_url: str

    @classmethod
    def of(cls, r: Recording) -> RecordingOut:
        return cls(
            id=r.id, seq=r.seq, session_type=r.session_type, session_id=r.session_id, call_id=r.call_id,
            room_id=r.room_id, case_id=r.case_id, organisation_id=r.organisation_id,
            participants=[ParticipantOut(role=str(p.get("role", "")), user_id=p.get("user_id"),
                                         number=str(p.get("number", "")), name=str(p.get("name", "")))
                          for p in r.participants or []],
            started_at=r.started_at, ended_at=r.ended_at, duration_s=r.duration_ms / 1000, size_bytes=r.size_bytes,
            container=r.container, codecs=list(r.codecs or []), sha256=r.sha256, digest=r.digest,
            prev_digest=r.prev_digest, status=r.status, status_at=r.status_at, supersedes_id=r.supersedes_id,
            created_at=r.created_at, media_url=f"/api/recordings/{r.id}/media",
            download_url=f"/api/recordings/{r.id}/download",
        )


class ShareIn(_In):
    ttl_s: int | None = Field(None, ge=60, description="lifetime in seconds; default and maximum from settings")


class ShareOut(BaseModel):
    url: str
    token: str
    expires_at: datetime


class AuditOut(BaseModel):
    id: int
    at: datetime
    recording_id: int | None
    user_id: int | None
    username: str
    role: str
    action: str
    allowed: bool
    status_code: int
    reason: str
    detail: dict[str, Any]
    client: str


class JobOut(BaseModel):
    id: int
    key: str
    purpose: str
    session_type: str
    state: str
    attempts: int
    error: str
    recording_id: int | None
    not_before: datetime
    created_at: datetime
    updated_at: datetime


# ---- helpers ------------------------------------------------------------------------------------


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _audit(ctx: ApiContext, request: Request, *, action: str, allowed: bool, recording_id: int | None,
           user_id: int | None, username: str, role: str, status_code: int, reason: str = "",
           detail: dict[str, Any] | None = None) -> None:
    """One audit line, in its own transaction: a denial is recorded even though the request then fails."""
    with ctx.sessions() as s:
        store.audit(s, action=action, allowed=allowed, recording_id=recording_id, user_id=user_id,
                    username=username, role=role, status_code=status_code, reason=reason, detail=detail,
                    client=_client(request))
        s.commit()


def _by(caller: Principal) -> dict[str, Any]:
    return {"user_id": caller.user_id, "username": caller.username, "role": caller.role.value}


def _allowed(ctx: ApiContext, request: Request, session: Session, caller: Principal, recording_id: int,
             action: str) -> Recording:
    """The recording if the caller may see it; 404 / 403 otherwise — audited either way."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        _audit(ctx, request, action=action, allowed=False, recording_id=recording_id, status_code=404,
               reason="no such recording", **_by(caller))
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"recording {recording_id} not found")
    scope = store.scope_of(session, caller.user_id, caller.role)
    if not store.sees(session, scope, rec):
        reason = ("not yours: admins see every recording, supervisors those of their organisation, others the "
                  "recordings they took part in or of the mediation cases they mediate")
        _audit(ctx, request, action=action, allowed=False, recording_id=recording_id, status_code=403,
               reason=reason, **_by(caller))
        raise HTTPException(status.HTTP_403_FORBIDDEN, reason)
    return rec


def _root(ctx: ApiContext) -> Path:
    return ctx.settings.data_dir / "recordings"


def _file_of(ctx: ApiContext, rec: Recording) -> Path:
    p = Path(rec.path)
    return p if p.is_absolute() else _root(ctx) / p


def _media(ctx: ApiContext, request: Request, rec: Recording, *, attachment: bool, action: str,
           who: dict[str, Any], via: dict[str, Any] | None = None) -> Response:
    """The recording's bytes, whole (200) or one range (206); 416 for a range it cannot serve, 410 when the
    file was purged or superseded; every answer audited."""
    detail = dict(via or {})
    header = request.headers.get("range")
    if header:
        detail["range"] = header[:100]
    if rec.status != RecordingStatus.COMPLETE:
        reason = f"recording {rec.id} was {rec.status.value}" + (
            f" on {rec.status_at:%Y-%m-%d}" if rec.status_at else "") + ": its file no longer exists"
        _audit(ctx, request, action=action, allowed=False, recording_id=rec.id, status_code=410, reason=reason,
               detail=detail, **who)
        raise HTTPException(status.HTTP_410_GONE, reason)
    path = _file_of(ctx, rec)
    try:
        size = path.stat().st_size
    except OSError:
        _audit(ctx, request, action=action, allowed=False, recording_id=rec.id, status_code=404,
               reason="file missing (run `huiyan recordings verify`)", detail=detail, **who)
        log.error("recording %s: file %s is missing", rec.id, path)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the file of recording {rec.id} is missing") from None
    try:
        rng = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        _audit(ctx, request, action=action, allowed=True, recording_id=rec.id, status_code=416, reason=str(exc),
               detail=detail, **who)
        return Response(status_code=416,
                        headers={"Content-Range": f"bytes */{size}"}, content=str(exc))
    start, length = (rng.start, rng.length) if rng else (0, size)
    filename = f"{rec.session_type}-{rec.session_id}-{rec.id}.{rec.container}".replace("/", "_")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(length),
        "ETag": f'"{rec.sha256}"',
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'{"attachment" if attachment else "inline"}; filename="{filename}"',
        "X-Content-SHA256": rec.sha256,
    }
    if rng:
        headers["Content-Range"] = rng.content_range(size)
    code = status.HTTP_206_PARTIAL_CONTENT if rng else status.HTTP_200_OK
    _audit(ctx, request, action=action, allowed=True, recording_id=rec.id, status_code=code,
           detail={**detail, "bytes": length}, **who)
    return StreamingResponse(_read(path, start, length), status_code=code, headers=headers,
                             media_type=MIME.get(rec.container, "application/octet-stream"))


def _read(path: Path, start: int, length: int) -> Iterator[bytes]:
    # A plain generator: Starlette iterates it in a worker thread, so the reads never block the event loop.
    with path.open("rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


# ---- routes -------------------------------------------------------------------------------------


@router.get("/api/recordings", response_model=Page[RecordingOut])
def search_recordings(
    caller: AnyUser,
    request: Request,
    ctx: Ctx,
    session: DbSession,
    session_type: Annotated[str | None, Query(description=", ".join(SESSION_TYPES))] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    call_id: Annotated[str | None, Query(max_length=64, description="a hotline call")] = None,
    room_id: int | None = None,
    case_id: Annotated[int | None, Query(description="a mediation case")] = None,
    organisation_id: Annotated[int | None, Query(description="this organisation and those below it")] = None,
    participant: Annotated[str | None, Query(max_length=100, description="a number (exact) or part of a name")] = None,
    participant_user_id: int | None = None,
    since: Annotated[datetime | None, Query(description="started at or after")] = None,
    until: Annotated[datetime | None, Query(description="started before")] = None,
    status_: Annotated[RecordingStatus | None, Query(alias="status")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RecordingOut]:
    """Recordings you may see that match every filter given, newest first."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name} needs a time zone (e.g. ...Z)")
    scope = store.scope_of(session, caller.user_id, caller.role)
    query = {k: v for k, v in dict(session_type=session_type, session_id=session_id, call_id=call_id,
                                   room_id=room_id, case_id=case_id, organisation_id=organisation_id,
                                   participant=participant, participant_user_id=participant_user_id,
                                   since=since, until=until, status=status_.value if status_ else None).items()
             if v is not None}
    rows, total = store.search(session, scope, offset=offset, limit=limit, **query)
    _audit(ctx, request, action="search", allowed=True, recording_id=None, status_code=200,
           detail={"query": {k: str(v) for k, v in query.items()}, "total": total,
                   "ids": [r.id for r in rows][:100]}, **_by(caller))
    return Page(items=[RecordingOut.of(r) for r in rows], total=total, offset=offset, limit=limit)


@router.get("/api/recordings/audit", response_model=Page[AuditOut])
def list_audit(
    caller: Admin,
    session: DbSession,
    recording_id: int | None = None,
    user_id: int | None = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    allowed: bool | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[AuditOut]:
    """The access audit, newest first: every search, view, stream, download, share, denial and purge."""
    from sqlalchemy import func

    stmt = select(RecordingAudit)
    if recording_id is not None:
        stmt = stmt.where(RecordingAudit.recording_id == recording_id)
    if user_id is not None:
        stmt = stmt.where(RecordingAudit.user_id == user_id)
    if action:
        stmt = stmt.where(RecordingAudit.action == action)
    if allowed is not None:
        stmt = stmt.where(RecordingAudit.allowed.is_(allowed))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(RecordingAudit.id.desc()).offset(offset).limit(limit))
    return Page(items=[AuditOut(id=a.id, at=a.at, recording_id=a.recording_id, user_id=a.user_id,
                                username=a.username, role=a.role, action=a.action, allowed=a.allowed,
                                status_code=a.status_code, reason=a.reason, detail=a.detail or {}, client=a.client)
                       for a in rows], total=int(total), offset=offset, limit=limit)


@router.get("/api/recordings/jobs", response_model=list[JobOut])
def list_jobs(
    caller: Admin,
    session: DbSession,
    all_: Annotated[bool, Query(alias="all", description="also the finished ones (the latest 500)")] = False,
) -> list[JobOut]:
    """The finalisation queue: jobs not done yet (waiting for a capture to close, running, retrying, failed)."""
    jobs = (list(session.scalars(select(RecordingJob).order_by(RecordingJob.id.desc()).limit(500))) if all_
            else store.pending_jobs(session) + list(session.scalars(
                select(RecordingJob).where(RecordingJob.state == "failed").order_by(RecordingJob.id.desc()).limit(100))))
    return [JobOut(id=j.id, key=j.key, purpose=j.purpose, session_type=j.session_type, state=j.state.value,
                   attempts=j.attempts, error=j.error, recording_id=j.recording_id, not_before=j.not_before,
                   created_at=j.created_at, updated_at=j.updated_at) for j in jobs]


@router.get("/api/recordings/shared/{token}", dependencies=[Depends(PUBLIC)],
            responses={206: {"description": "a byte range"}, 403: {"description": "bad signature"},
                       410: {"description": "the link expired, or the recording was purged"},
                       416: {"description": "a range the file does not have"}})
def shared_media(token: Annotated[str, PathParam(max_length=1000)], request: Request, ctx: Ctx, session: DbSession,
                 download: bool = False) -> Response:
    """A share link: the recording's media without signing in, until the link expires (410). A link whose
    signature is not ours is a 403. Each use is audited under the user who made the link."""
    anon = {"user_id": None, "username": "", "role": ""}
    try:
        grant = check_share(ctx.settings.secret(SHARE_SECRET), token, time.time())
    except ShareError as exc:
        rid = None
        if not isinstance(exc, BadSignature):
            rid = _unverified_id(token)
        _audit(ctx, request, action="shared", allowed=False, recording_id=rid, status_code=exc.status,
               reason=str(exc), **anon)
        raise HTTPException(exc.status, str(exc)) from exc
    rec = session.get(Recording, grant.recording_id)
    who = {"user_id": grant.created_by, "username": "", "role": "share-link"}
    if rec is None:
        _audit(ctx, request, action="shared", allowed=False, recording_id=grant.recording_id, status_code=404,
               reason="no such recording", **who)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"recording {grant.recording_id} not found")
    return _media(ctx, request, rec, attachment=download, action="shared", who=who,
                  via={"share_nonce": grant.nonce, "expires_at": grant.expires_at})


def _unverified_id(token: str) -> int | None:
    """The recording id a (correctly signed but expired) token names, for the audit line."""
    import base64
    import json

    try:
        payload = token.partition(".")[0]
        return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["r"])
    except (ValueError, KeyError, TypeError):
        return None


@router.get("/api/recordings/{recording_id}", response_model=RecordingOut)
def get_recording(caller: AnyUser, recording_id: int, request: Request, ctx: Ctx, session: DbSession
                  ) -> RecordingOut:
    """One recording's metadata: session, organisation, participants, times, size, codecs, hash, chain."""
    rec = _allowed(ctx, request, session, caller, recording_id, "metadata")
    _audit(ctx, request, action="metadata", allowed=True, recording_id=rec.id, status_code=200, **_by(caller))
    return RecordingOut.of(rec)


@router.get("/api/recordings/{recording_id}/media",
            responses={206: {"description": "a byte range"}, 410: {"description": "purged"},
                       416: {"description": "a range the file does not have"}})
def stream_recording(caller: AnyUser, recording_id: int, request: Request, ctx: Ctx, session: DbSession) -> Response:
    """Play it: the M4A/MP4 inline, with HTTP Range (206 + Content-Range) for seeking."""
    rec = _allowed(ctx, request, session, caller, recording_id, "stream")
    return _media(ctx, request, rec, attachment=False, action="stream", who=_by(caller))


@router.get("/api/recordings/{recording_id}/download",
            responses={206: {"description": "a byte range"}, 410: {"description": "purged"},
                       416: {"description": "a range the file does not have"}})
def download_recording(caller: AnyUser, recording_id: int, request: Request, ctx: Ctx, session: DbSession
                       ) -> Response:
    """Save it: the M4A/MP4 as an attachment (Range works too, for resuming)."""
    rec = _allowed(ctx, request, session, caller, recording_id, "download")
    return _media(ctx, request, rec, attachment=True, action="download", who=_by(caller))


@router.post("/api/recordings/{recording_id}/share", status_code=status.HTTP_201_CREATED, response_model=ShareOut)
def share_recording(caller: AnyUser, recording_id: int, body: ShareIn, request: Request, ctx: Ctx,
                    session: DbSession) -> ShareOut:
    """A signed link to the media that works without signing in until it expires. Only for a recording
    you may see; the link cannot be revoked early, so keep its lifetime short."""
    rec = _allowed(ctx, request, session, caller, recording_id, "share")
    cfg = ctx.settings.recordings
    ttl = body.ttl_s or cfg.share_ttl_s
    if ttl > cfg.share_max_ttl_s:
        _audit(ctx, request, action="share", allowed=False, recording_id=rec.id, status_code=422,
               reason=f"ttl {ttl} s above the maximum {cfg.share_max_ttl_s} s", **_by(caller))
        raise HTTPException(422,
                            f"ttl_s {ttl} is above the maximum of {cfg.share_max_ttl_s} seconds")
    if rec.status != RecordingStatus.COMPLETE:
        _audit(ctx, request, action="share", allowed=False, recording_id=rec.id, status_code=410,
               reason=f"recording is {rec.status.value}", **_by(caller))
        raise HTTPException(status.HTTP_410_GONE, f"recording {rec.id} was {rec.status.value}: nothing to share")
    expires = int(time.time()) + ttl
    token = sign_share(ctx.settings.secret(SHARE_SECRET), rec.id, caller.user_id, expires)
    _audit(ctx, request, action="share", allowed=True, recording_id=rec.id, status_code=201,
           detail={"expires_at": expires, "ttl_s": ttl}, **_by(caller))
    path = f"/api/recordings/shared/{token}"
    return ShareOut(url=str(request.base_url).rstrip("/") + path, token=token,
                    expires_at=datetime.fromtimestamp(expires, UTC))
