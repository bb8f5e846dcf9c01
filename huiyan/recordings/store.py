"""The recordings' database side: jobs (queue, claim, sweep), the chain (append), participants, audit,
access scope and search. Synchronous: called from worker threads, the CLI and sync API routes."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, exists, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiyan.db.models import (
    HotlineCall,
    MediationCase,
    Recording,
    RecordingAudit,
    RecordingJob,
    RecordingJobState,
    RecordingParticipant,
    RecordingStatus,
    Role,
    RoomRecording,
)
from huiyan.db.orgtree import organisation_subtree, oversees
from huiyan.recordings.model import GENESIS, RecordingScope, row_digest, truncate_ms

TERMINAL = frozenset({RecordingJobState.DONE, RecordingJobState.SKIPPED, RecordingJobState.FAILED})
LEASE = timedelta(minutes=30)


def now() -> datetime:
    return datetime.now(UTC)


def hotline_key(call_id: str) -> str:
    return f"hotline:{call_id}"


def room_key(path: str) -> str:
    return f"room:{path}"


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ---- jobs ---------------------------------------------------------------------------------------------


def enqueue(session: Session, *, key: str, session_type: str, source: str, source_ref: str,
            purpose: str = "finalise", meta: Mapping[str, Any] | None = None,
            not_before: datetime | None = None) -> RecordingJob:
    """The job for `key`, made if there is none (queuing the same capture twice is harmless). Commits."""
    job = session.scalar(select(RecordingJob).where(RecordingJob.key == key))
    if job is not None:
        changed = False
        if meta:
            job.meta = {**(job.meta or {}), **meta}
            changed = True
        if not_before is not None and job.state not in TERMINAL and job.not_before > not_before:
            job.not_before = not_before
            changed = True
        if changed:
            job.updated_at = now()
            session.commit()
        return job
    t = now()
    job = RecordingJob(key=key, purpose=purpose, session_type=session_type, source=source, source_ref=source_ref,
                       state=RecordingJobState.QUEUED, attempts=0, error="", meta=dict(meta or {}),
                       not_before=not_before or t, created_at=t, updated_at=t)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # queued by someone else meanwhile (the sweep, another process)
        session.rollback()
        existing = session.scalar(select(RecordingJob).where(RecordingJob.key == key))
        assert existing is not None
        return existing
    return job


def due_jobs(session: Session, at: datetime, limit: int = 20) -> list[int]:
    return list(session.scalars(
        select(RecordingJob.id).where(RecordingJob.state.not_in(TERMINAL), RecordingJob.not_before <= at)
        .order_by(RecordingJob.not_before, RecordingJob.id).limit(limit)))


def pending_jobs(session: Session) -> list[RecordingJob]:
    return list(session.scalars(select(RecordingJob).where(RecordingJob.state.not_in(TERMINAL))
                                .order_by(RecordingJob.id)))


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's runner: trust its lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(session: Session, job_id: int, owner: str) -> RecordingJob | None:
    """Take the job's lease, or None when a live runner holds it. A lease whose runner died (same host,
    pid gone: a crash, a kill -9) or that expired on another host is taken over: that is how a
    finalisation interrupted mid-way resumes."""
    job = session.get(RecordingJob, job_id, with_for_update=True)
    if job is None or job.state in TERMINAL:
        return None
    t = now()
    if job.owner and job.owner != owner and _owner_alive(job.owner):
        same_host = job.owner.rpartition(":")[0] == socket.gethostname()
        # A live runner on this host keeps its job whatever the lease says (never two ffmpegs on one file);
        # one on another host keeps it while its lease runs.
        if same_host or (job.lease_until is not None and job.lease_until > t):
            session.rollback()
            return None
    job.owner, job.lease_until, job.updated_at = owner, t + LEASE, t
    session.commit()
    return job


def release(session: Session, job_id: int, owner: str) -> None:
    job = session.get(RecordingJob, job_id)
    if job is not None and job.owner == owner:
        job.owner, job.lease_until = None, None
        session.commit()


def sweep(session: Session, settle_s: float) -> int:
    """Queue a job for every ended session whose capture has none (a hook missed while the controller was
    down, or a crash between the end and the queuing). Returns how many were queued."""
    made = 0
    hot = session.execute(
        select(HotlineCall.id).where(
            HotlineCall.recording_path.is_not(None), HotlineCall.ended_at.is_not(None),
            ~exists().where(RecordingJob.key == literal("hotline:", String) + HotlineCall.id),
        ).limit(1000)).scalars().all()
    for call_id in hot:
        enqueue(session, key=hotline_key(call_id), session_type="hotline", source="hotline_call", source_ref=call_id,
                not_before=now() + timedelta(seconds=settle_s))
        made += 1
    rooms = session.execute(
        select(RoomRecording.path).where(
            RoomRecording.ended_at.is_not(None), RoomRecording.path != "",
            ~exists().where(RecordingJob.key == literal("room:", String) + RoomRecording.path),
        ).limit(1000)).scalars().all()
    for path in rooms:
        enqueue(session, key=room_key(path), session_type="room", source="room_recording", source_ref=path,
                not_before=now() + timedelta(seconds=settle_s))
        made += 1
    return made


# ---- the chain ----------------------------------------------------------------------------------------


def last_link(session: Session) -> tuple[int, str]:
    row = session.execute(select(Recording.seq, Recording.digest).order_by(Recording.seq.desc()).limit(1)).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append(session: Session, fields: dict[str, Any], participants: Sequence[Mapping[str, Any]]) -> Recording:
    """Add a row at the end of the chain (seq = last + 1, prev_digest = the last digest) with its
    participants. Does not commit: the caller commits it together with the job's state. Two writers racing
    for the same seq: the unique constraint refuses one, which retries (see `append_committed`)."""
    seq, prev = last_link(session)
    fields = dict(fields)
    fields["seq"] = seq + 1
    for k in ("started_at", "ended_at", "created_at"):
        fields[k] = truncate_ms(fields[k])
    digest = row_digest(fields, prev)
    rec = Recording(**fields, prev_digest=prev, digest=digest, status=RecordingStatus.COMPLETE)
    session.add(rec)
    session.flush()
    for p in participants:
        session.add(RecordingParticipant(recording_id=rec.id, user_id=p.get("user_id"), number=str(p.get("number") or ""),
                                         name=str(p.get("name") or "")[:100], role=str(p.get("role") or "")[:32]))
    return rec


def chain_rows(session: Session) -> list[Recording]:
    return list(session.scalars(select(Recording).order_by(Recording.seq)))


# ---- audit --------------------------------------------------------------------------------------------


def audit(session: Session, *, action: str, allowed: bool, recording_id: int | None = None,
          user_id: int | None = None, username: str = "", role: str = "", status_code: int = 200,
          reason: str = "", detail: Mapping[str, Any] | None = None, client: str = "") -> RecordingAudit:
    """One audit line (not committed)."""
    row = RecordingAudit(at=now(), recording_id=recording_id, user_id=user_id, username=username[:64],
                         role=role[:16], action=action[:32], allowed=allowed, status_code=status_code,
                         reason=reason[:300], detail=dict(detail or {}), client=client[:64])
    session.add(row)
    return row


def logged_deletions(session: Session) -> set[int]:
    return {int(r) for r in session.scalars(
        select(RecordingAudit.recording_id).where(RecordingAudit.action.in_(("purge", "supersede")),
                                                  RecordingAudit.allowed.is_(True),
                                                  RecordingAudit.recording_id.is_not(None)))}


# ---- who sees what ------------------------------------------------------------------------------------


def scope_of(session: Session, user_id: int, role: Role) -> RecordingScope:
    cases = frozenset(session.scalars(select(MediationCase.id).where(MediationCase.mediator_id == user_id)))
    everything, organisations = oversees(session, user_id, role)
    return RecordingScope(user_id, role.value, everything=everything, organisations=organisations, cases=cases)


def participant_ids(session: Session, recording_id: int) -> list[int | None]:
    return list(session.scalars(select(RecordingParticipant.user_id)
                                .where(RecordingParticipant.recording_id == recording_id)))


def sees(session: Session, scope: RecordingScope, rec: Recording) -> bool:
    return scope.sees(rec.organisation_id, participant_ids(session, rec.id), rec.case_id)


def _scoped(stmt: Select[Any], scope: RecordingScope) -> Select[Any]:
    if scope.everything:
        return stmt
    took_part = exists().where(RecordingParticipant.recording_id == Recording.id,
                               RecordingParticipant.user_id == scope.user_id)
    conds = [took_part]
    if scope.organisations:
        conds.append(Recording.organisation_id.in_(scope.organisations))
    if scope.cases:
        conds.append(Recording.case_id.in_(scope.cases))
    return stmt.where(or_(*conds))


def search(session: Session, scope: RecordingScope, *, session_type: str | None = None,
           session_id: str | None = None, call_id: str | None = None, room_id: int | None = None,
           case_id: int | None = None, organisation_id: int | None = None, participant: str | None = None,
           participant_user_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
           status: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[Recording], int]:
    """Recordings the scope may see matching every filter given, newest first, and how many match.
    `organisation_id` includes the organisations below it; `participant` is a number (exact) or a name
    (contains); `since`/`until` bound the recording's start."""
    conds: list[Any] = []
    if session_type:
        conds.append(Recording.session_type == session_type)
    if session_id:
        conds.append(Recording.session_id == session_id)
    if call_id:
        conds.append(Recording.call_id == call_id)
    if room_id is not None:
        conds.append(Recording.room_id == room_id)
    if case_id is not None:
        conds.append(Recording.case_id == case_id)
    if organisation_id is not None:
        conds.append(Recording.organisation_id.in_(organisation_subtree(session, organisation_id)))
    if participant:
        like = f"%{participant.replace('%', '').replace('_', '')}%"
        conds.append(exists().where(RecordingParticipant.recording_id == Recording.id,
                                    or_(RecordingParticipant.number == participant,
                                        RecordingParticipant.name.like(like))))
    if participant_user_id is not None:
        conds.append(exists().where(RecordingParticipant.recording_id == Recording.id,
                                    RecordingParticipant.user_id == participant_user_id))
    if since is not None:
        conds.append(Recording.started_at >= since)
    if until is not None:
        conds.append(Recording.started_at < until)
    if status:
        conds.append(Recording.status == status)
    base = _scoped(select(Recording).where(and_(*conds)) if conds else select(Recording), scope)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = list(session.scalars(base.order_by(Recording.started_at.desc(), Recording.id.desc())
                                .offset(offset).limit(limit)))
    return rows, int(total)


def participants_of(session: Session, ids: Iterable[int]) -> dict[int, list[RecordingParticipant]]:
    out: dict[int, list[RecordingParticipant]] = {}
    ids = list(ids)
    if not ids:
        return out
    for p in session.scalars(select(RecordingParticipant).where(RecordingParticipant.recording_id.in_(ids))
                             .order_by(RecordingParticipant.id)):
        out.setdefault(p.recording_id, []).append(p)
    return out
