"""Batch operations on the store: verify (re-hash every file, check the chain), retention purge, queuing
re-encodes. Blocking; used by the CLI and (in a worker thread) by the controller's daily purge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.db.models import (
    CaseStatus,
    HotlineCall,
    MediationCase,
    Recording,
    RecordingJob,
    RecordingJobState,
    RecordingStatus,
    RoomRecording,
)
from huiyan.recordings import media, store, tap
from huiyan.recordings.model import (
    ChainRow,
    FileState,
    RetentionCandidate,
    VerifyReport,
    due_for_purge,
    retain_until,
    row_fields,
    verify,
)
from huiyan.recordings.pipeline import absolute, rel, stale_temps

log = logging.getLogger(__name__)

Progress = Callable[..., Any]  # tqdm-like: progress(total=..., desc=..., unit=...) -> object with update()/close()


class _Silent:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def verify_store(sessions: sessionmaker[Session], root: Path, *, progress: Progress | None = None) -> VerifyReport:
    """Re-hash every complete recording, check the chain, and list changed, missing and extra files."""
    bar_of = progress or _Silent
    with sessions() as s:
        rows = store.chain_rows(s)
        chain = [ChainRow(r.id, row_fields(r), r.prev_digest, r.digest, r.status.value, r.path, r.sha256,
                          r.size_bytes) for r in rows]
        jobs = list(s.scalars(select(RecordingJob)))
        logged = store.logged_deletions(s)
        unfinished = {j.key for j in jobs if j.state != RecordingJobState.DONE}
        finished = {j.key for j in jobs} - unfinished
        # Captures of sessions whose recording is not done: no job yet, or one still waiting for the session
        # to end (a call going on now, a meeting being recorded), or one that failed (raw kept).
        captures = [p for cid, p in s.execute(select(HotlineCall.id, HotlineCall.recording_path)
                                              .where(HotlineCall.recording_path.is_not(None)))
                    if store.hotline_key(cid) not in finished]
        captures += [p for (p,) in s.execute(select(RoomRecording.path)) if p and store.room_key(p) not in finished]
    known: set[str] = {rel(Path(p), root) for p in captures}
    # A session's video tap (manifest, pcap segments) lies beside its audio capture: raw capture as well.
    known.update(rel(c, root) for p in captures for c in tap.companions(absolute(p, root)))
    for j in jobs:
        meta = j.meta or {}
        inputs = [rel(absolute(i["path"], root), root) for i in meta.get("inputs", [])]
        inputs += [rel(absolute(p, root), root) for p in [*meta.get("raw", []), *meta.get("derived", [])]]
        if j.source == "room_recording":
            inputs.append(rel(Path(j.source_ref), root))
        if j.state != RecordingJobState.DONE or meta.get("raw_kept") or meta.get("keep_inputs"):
            known.update(inputs)
        elif meta.get("tap_kept"):  # video that could not be made: its capture stays for a later look
            known.update(rel(absolute(p, root), root) for p in meta.get("raw", []))
        if j.state not in store.TERMINAL and j.output_path:
            out = absolute(j.output_path, root)
            known.add(rel(out, root))
            known.update(rel(t, root) for t in stale_temps(out))
    present = sorted(rel(p, root) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    complete = [r for r in chain if r.status == "complete"]
    total = 0
    for r in complete:
        try:
            total += absolute(r.path, root).stat().st_size
        except OSError:
            pass
    bar = bar_of(total=total, desc="verify", unit="B", unit_scale=True, unit_divisor=1024)
    files: dict[str, FileState | None] = {}
    try:
        for r in complete:
            f = absolute(r.path, root)
            if not f.is_file():
                files[r.path] = None
                continue
            sha, size = media.sha256_file(f, bar.update)
            files[r.path] = FileState(size, sha)
    finally:
        bar.close()
    return verify(chain, files, present, known, logged)


@dataclass(frozen=True, slots=True)
class Purged:
    id: int
    session_type: str
    path: str
    ended_at: datetime
    retain_until: datetime | None


def purge(sessions: sessionmaker[Session], root: Path, retention: Mapping[str, str], *, now: datetime,
          dry_run: bool = False, actor: str = "system") -> list[Purged]:
    """Delete the files of complete recordings past their retention; each row stays in the chain, marked
    `purged`, and each deletion is an audit line. A mediation case still open keeps its recordings."""
    with sessions() as s:
        open_cases = set(s.scalars(select(MediationCase.id).where(
            MediationCase.status.in_((CaseStatus.OPEN, CaseStatus.IN_SESSION)))))
        rows = s.execute(select(Recording.id, Recording.session_type, Recording.ended_at, Recording.status,
                                Recording.case_id, Recording.path)
                         .where(Recording.status == RecordingStatus.COMPLETE)).all()
    paths = {r.id: r.path for r in rows}
    candidates = [RetentionCandidate(r.id, r.session_type, r.ended_at, r.status.value,
                                     case_open=r.case_id in open_cases) for r in rows]
    out = []
    for c in due_for_purge(candidates, retention, now):
        until = retain_until(c.ended_at, retention[c.session_type])
        out.append(Purged(c.id, c.session_type, paths[c.id], c.ended_at, until))
        if dry_run:
            continue
        # The file first, then the row: a crash in between leaves a complete row without its file, which
        # verify reports and the next purge finishes; never a purged row whose file lingers unnoticed.
        absolute(paths[c.id], root).unlink(missing_ok=True)
        with sessions() as s:
            rec = s.get(Recording, c.id)
            if rec is None or rec.status != RecordingStatus.COMPLETE:
                continue
            raws = []  # a raw capture kept beside it (keep_raw) goes with it
            for job in s.scalars(select(RecordingJob).where(RecordingJob.recording_id == rec.id)):
                for i in (job.meta or {}).get("inputs", []):
                    raw = absolute(i["path"], root)
                    if raw.exists():
                        raw.unlink()
                        raws.append(rel(raw, root))
            rec.status, rec.status_at = RecordingStatus.PURGED, store.now()
            store.audit(s, action="purge", allowed=True, recording_id=rec.id, username=actor,
                        reason=f"retention {retention[c.session_type]} for {c.session_type} ended",
                        detail={"path": rec.path, "sha256": rec.sha256, "session_type": rec.session_type,
                                "session_id": rec.session_id, "ended_at": rec.ended_at.isoformat(),
                                "retain_until": until.isoformat() if until else None, "raw_deleted": raws})
            s.commit()
        log.info("purged recording %s (%s, ended %s): %s", c.id, c.session_type, c.ended_at, paths[c.id])
    return out


def queue_reencode(sessions: sessionmaker[Session], ids: list[int]) -> list[int]:
    """A re-encode job per complete recording; the result supersedes it (a new row, the old one kept in the
    chain as `superseded`). Returns the job ids; unknown or non-complete ids raise ValueError."""
    jobs = []
    with sessions() as s:
        for rid in ids:
            rec = s.get(Recording, rid)
            if rec is None:
                raise ValueError(f"no recording {rid}")
            if rec.status != RecordingStatus.COMPLETE:
                raise ValueError(f"recording {rid} is {rec.status.value}: only complete ones can be re-encoded")
            gen = 1 + (s.scalar(select(func.count()).select_from(RecordingJob).where(
                RecordingJob.purpose == "reencode", RecordingJob.source_ref == str(rid))) or 0)
            job = store.enqueue(s, key=f"reencode:{rid}:{gen}", purpose="reencode", session_type=rec.session_type,
                                source="recording", source_ref=str(rid), meta={"generation": gen})
            jobs.append(job.id)
    return jobs
