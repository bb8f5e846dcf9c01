"""`huiyan recordings ...`: verify, finalise, reencode, purge, jobs. Progress bars (tqdm) on stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huiyan.config.settings import Settings

JOB_WAIT_S = 30.0  # `finalise` waits at most this long for a capture to settle before leaving it to later


def register(sub: Any) -> None:
    """Add the `recordings` command group to huiyan's argument parser."""
    p = sub.add_parser("recordings", help="recordings as evidence: verify, finalise, reencode, purge, jobs")
    rs = p.add_subparsers(dest="recordings_cmd", required=True)
    v = rs.add_parser("verify", help="re-hash every file, check the chain; report changed, missing, extra files "
                                     "(exit 1 on any problem)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--no-progress", action="store_true")
    v.set_defaults(fn=cmd_verify)
    f = rs.add_parser("finalise", help="run pending finalisation jobs now (resumes interrupted ones)")
    f.add_argument("--job", type=int, action="append", default=[], help="only this job id (repeatable)")
    f.add_argument("--no-sweep", action="store_true", help="do not look for ended sessions without a job first")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(fn=cmd_finalise)
    r = rs.add_parser("reencode", help="re-run finalisation for selected recordings (the new file supersedes the old)")
    r.add_argument("--id", type=int, action="append", default=[], help="a recording id (repeatable)")
    r.add_argument("--session-type", help="every complete recording of this session type")
    r.add_argument("--all", action="store_true", help="every complete recording")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(fn=cmd_reencode)
    pg = rs.add_parser("purge", help="delete recordings past their retention (each deletion is audited)")
    pg.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    pg.set_defaults(fn=cmd_purge)
    j = rs.add_parser("jobs", help="list finalisation jobs that are not done")
    j.add_argument("--all", action="store_true", help="also the finished ones")
    j.set_defaults(fn=cmd_jobs)


def _open(args: argparse.Namespace) -> tuple[Settings, Any, Path]:
    from huiyan.cli import _settings
    from huiyan.db import make_engine, session_factory, upgrade
    from huiyan.recordings.service import recordings_dir

    s = _settings(args)
    upgrade(s.db_url)
    sessions = session_factory(make_engine(s.db_url))
    root = recordings_dir(s)
    root.mkdir(parents=True, exist_ok=True)
    return s, sessions, root


def _bar(args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    def make(**kw: Any) -> Any:
        return tqdm(file=sys.stderr, disable=bool(getattr(args, "no_progress", False)), **kw)

    return make


def cmd_verify(args: argparse.Namespace) -> int:
    from huiyan.recordings.ops import verify_store

    _, sessions, root = _open(args)
    report = verify_store(sessions, root, progress=_bar(args))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"{report.rows} row(s) in the chain, {report.files_checked} file(s) re-hashed")
        for title, items in (("chain broken", report.chain_broken), ("changed", report.changed),
                             ("missing", report.missing), ("extra", report.extra),
                             ("deleted without an audit entry", report.unlogged_deletions)):
            for item in items:
                print(f"{title}: {item}")
        print("OK: every file matches its row and the chain is intact" if report.ok else "PROBLEMS FOUND")
    return 0 if report.ok else 1


def _run_jobs(args: argparse.Namespace, sessions: Any, root: Path, s: Settings, job_ids: list[int] | None,
              desc: str) -> int:
    """Run jobs until none is due within JOB_WAIT_S; a progress bar counts finished jobs."""
    from huiyan.db.models import RecordingJob, RecordingJobState
    from huiyan.recordings import store
    from huiyan.recordings.pipeline import Finaliser

    fin = Finaliser(sessions, root, s.recordings)
    failed = 0

    def open_jobs() -> list[RecordingJob]:
        with sessions() as db:
            jobs = store.pending_jobs(db)
        return [j for j in jobs if job_ids is None or j.id in job_ids]

    todo = open_jobs()
    bar = _bar(args)(total=len(todo), desc=desc, unit="job")
    deadline = time.monotonic() + JOB_WAIT_S
    try:
        while todo:
            now = store.now()
            due = [j for j in todo if j.not_before <= now]
            if not due:
                if time.monotonic() > deadline:
                    break
                time.sleep(min(1.0, max(0.1, min((j.not_before - now).total_seconds() for j in todo))))
                todo = open_jobs()
                continue
            for j in due:
                o = fin.run(j.id)
                if o.state in (RecordingJobState.DONE, RecordingJobState.SKIPPED, RecordingJobState.FAILED):
                    bar.update(1)
                    print(f"job {j.id}: {o.state.value}"
                          + (f" → recording {o.recording_id}" if o.recording_id else "")
                          + (f" ({o.reason})" if o.reason and o.state != RecordingJobState.DONE else ""),
                          file=sys.stderr)
                    failed += o.state == RecordingJobState.FAILED
                    deadline = time.monotonic() + JOB_WAIT_S
                elif o.reason and not o.postponed:
                    print(f"job {j.id}: {o.reason} (will be retried)", file=sys.stderr)
            todo = open_jobs()
    finally:
        bar.close()
    left = open_jobs()
    if left:
        print(f"{len(left)} job(s) not finished yet (captures still open, or retrying later): "
              + ", ".join(f"{j.id} {j.state.value}" for j in left), file=sys.stderr)
    return 1 if failed else 0


def cmd_finalise(args: argparse.Namespace) -> int:
    from huiyan.recordings import store

    s, sessions, root = _open(args)
    if not args.no_sweep:
        with sessions() as db:
            made = store.sweep(db, 0.0)
        if made:
            print(f"queued {made} capture(s) that had no job", file=sys.stderr)
    return _run_jobs(args, sessions, root, s, args.job or None, "finalise")


def cmd_reencode(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from huiyan.db.models import Recording, RecordingStatus
    from huiyan.recordings.ops import queue_reencode

    s, sessions, root = _open(args)
    ids = list(args.id)
    if args.all or args.session_type:
        with sessions() as db:
            stmt = select(Recording.id).where(Recording.status == RecordingStatus.COMPLETE)
            if args.session_type:
                stmt = stmt.where(Recording.session_type == args.session_type)
            ids += list(db.scalars(stmt.order_by(Recording.seq)))
    if not ids:
        print("nothing selected: give --id, --session-type or --all", file=sys.stderr)
        return 2
    try:
        jobs = queue_reencode(sessions, sorted(set(ids)))
    except ValueError as e:
        print(f"huiyan: {e}", file=sys.stderr)
        return 2
    return _run_jobs(args, sessions, root, s, jobs, "reencode")


def cmd_purge(args: argparse.Namespace) -> int:
    from huiyan.recordings.ops import purge

    s, sessions, root = _open(args)
    out = purge(sessions, root, s.recordings.retention, now=datetime.now(UTC), dry_run=args.dry_run, actor="cli")
    verb = "would delete" if args.dry_run else "deleted"
    for p in out:
        print(f"{verb} recording {p.id} ({p.session_type}, ended {p.ended_at:%Y-%m-%d}, kept until "
              f"{p.retain_until:%Y-%m-%d}): {p.path}" if p.retain_until else f"{verb} {p.id}")
    print(f"{len(out)} recording(s) {verb}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from huiyan.db.models import RecordingJob
    from huiyan.recordings import store

    _, sessions, _root = _open(args)
    with sessions() as db:
        jobs = list(db.scalars(select(RecordingJob).order_by(RecordingJob.id))) if args.all else store.pending_jobs(db)
    for j in jobs:
        print(json.dumps({"id": j.id, "key": j.key, "state": j.state.value, "attempts": j.attempts,
                          "error": j.error, "recording_id": j.recording_id, "not_before": j.not_before.isoformat()},
                         ensure_ascii=False))
    return 0
