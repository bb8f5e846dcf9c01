"""Finalisation: a raw capture becomes a verified, hashed, chained M4A/MP4, one idempotent step at a time.

    queued ──(capture closed)──▶ encoding ──(ffmpeg → temp → rename)──▶ encoded ──(ffprobe: duration within
    tolerance of the capture's, right codecs)──▶ verified ──(SHA-256 + chain row, one commit)──▶ recorded
    ──(raw deleted unless keep_raw)──▶ done

Each state is committed before the next step starts, and each step checks what is already on disk, so a
runner killed anywhere (even with SIGKILL while ffmpeg runs) leaves a job that the next run completes:
ffmpeg writes a temporary file named after its runner and the final name appears only by an atomic rename;
a chain row is written in the same commit as the job's `recorded` state (and `recordings.job_id` is
unique), so nothing is ever recorded twice; the raw capture is deleted last. A failing step is retried
with backoff and, after `max_attempts`, the job is `failed` with its raw capture kept.

Video (the media tap, tap.py): a capture with a tap manifest beside it gets one more step at the start of
`encoding` - once the tap is closed, its pcap segments become one H.264 stream per leg (video.py), which
join the audio as inputs; the output is then an MP4 (still an M4A if no leg sent decodable video). The pcap
and the manifest are raw capture like the WAV: kept until the recording is `done` (deleted then unless
`keep_raw`); the per-leg streams are made again by a resumed run and always deleted at the end.

Blocking (ffmpeg, hashing, the database): runs in a worker thread or the CLI, never on the event loop.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from huiyan.db.models import (
    Device,
    Dispatch,
    HotlineCall,
    MediationCase,
    MediationParty,
    MediationSession,
    Queue,
    Recording,
    RecordingJob,
    RecordingJobState,
    RecordingStatus,
    Room,
    RoomRecording,
    User,
)
from huiyan.recordings import media, store, tap, video
from huiyan.recordings.settings import RecordingSettings

log = logging.getLogger(__name__)

S = RecordingJobState
GIVE_UP_WAITING_S = 120.0  # a source row that never appears (the runtime's writer died): fail after this
STALE_CAPTURE_S = 3600.0  # a capture untouched this long is closed, whatever its session row says


class Postpone(Exception):
    """Not yet: the capture is still being written, or its session row is not there yet."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.seconds = seconds


class Skip(Exception):
    """Nothing to finalise (a call never bridged records nothing); the job ends `skipped`."""


class Fatal(Exception):
    """Retrying cannot help (the source does not exist, the raw capture is gone): fail now, alarm."""


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: int
    state: RecordingJobState | None  # None: not run (another runner holds it)
    recording_id: int | None = None
    reason: str = ""
    postponed: bool = False


def rel(path: Path, root: Path) -> str:
    """A path as stored: relative to the recordings directory when inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def absolute(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def temp_name(final: Path, owner_pid: int | str) -> Path:
    return final.with_name(f".{final.stem}.{owner_pid}.part{final.suffix}")


def stale_temps(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f".{final.stem}.*.part{final.suffix}"))


class Finaliser:
    """Runs jobs. `channel_alive(uniqueid)` (from the AMI tracker, when there is one) keeps a hotline job
    waiting while the caller's channel still exists."""

    def __init__(self, sessions: sessionmaker[Session], recordings_dir: Path, settings: RecordingSettings, *,
                 owner: str | None = None, channel_alive: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.root = recordings_dir
        self.settings = settings
        self.owner = owner or store.this_owner()
        self.channel_alive = channel_alive
        self.clock = clock

    # ---- running ----------------------------------------------------------------------------------
    def run_due(self, limit: int = 20) -> list[Outcome]:
        with self.sessions() as s:
            ids = store.due_jobs(s, store.now(), limit)
        return [self.run(i) for i in ids]

    def run(self, job_id: int) -> Outcome:
        with self.sessions() as s:
            job = store.claim(s, job_id, self.owner)
            if job is None:
                return Outcome(job_id, None)
        try:
            return self._run(job_id)
        except Postpone as p:
            self._update(job_id, not_before=store.now() + timedelta(seconds=p.seconds), error="")
            return Outcome(job_id, self._state(job_id), reason=str(p), postponed=True)
        except Skip as sk:
            self._update(job_id, state=S.SKIPPED, error=str(sk))
            log.info("recording job %s skipped: %s", job_id, sk)
            return Outcome(job_id, S.SKIPPED, reason=str(sk))
        except Fatal as f:
            self._update(job_id, state=S.FAILED, error=str(f))
            log.error("recording job %s failed: %s (raw capture kept)", job_id, f)
            return Outcome(job_id, S.FAILED, reason=str(f))
        except Exception as exc:  # noqa: BLE001 - a failed step is retried, then the job fails
            return self._retry(job_id, exc)
        finally:
            with self.sessions() as s:
                store.release(s, job_id, self.owner)

    def _retry(self, job_id: int, exc: Exception) -> Outcome:
        with self.sessions() as s:
            job = s.get(RecordingJob, job_id)
            assert job is not None
            job.attempts += 1
            job.error = f"{type(exc).__name__}: {exc}"[:2000]
            job.updated_at = store.now()
            if job.attempts >= self.settings.max_attempts:
                job.state = S.FAILED
                log.error("recording job %s failed for good after %d attempts: %s (raw capture kept)",
                          job_id, job.attempts, exc)
            else:
                job.not_before = store.now() + timedelta(seconds=15 * 2 ** job.attempts)
                log.warning("recording job %s: attempt %d failed (%s); retrying", job_id, job.attempts, exc)
            s.commit()
            return Outcome(job_id, job.state, reason=job.error)

    def _state(self, job_id: int) -> RecordingJobState | None:
        with self.sessions() as s:
            job = s.get(RecordingJob, job_id)
            return job.state if job else None

    def _update(self, job_id: int, **changes: Any) -> None:
        with self.sessions() as s:
            job = s.get(RecordingJob, job_id)
            if job is None:
                return
            for k, v in changes.items():
                setattr(job, k, v)
            job.updated_at = store.now()
            s.commit()

    def _load(self, job_id: int) -> tuple[RecordingJobState, dict[str, Any], RecordingJob]:
        with self.sessions() as s:
            job = s.get(RecordingJob, job_id)
            assert job is not None
            s.expunge(job)
            return job.state, dict(job.meta or {}), job

    # ---- the steps ----------------------------------------------------------------------------------
    def _run(self, job_id: int) -> Outcome:
        state, meta, job = self._load(job_id)
        if not meta.get("resolved"):
            meta = self._resolve(job, meta)
            self._update(job_id, meta=meta, output_path=meta["output"])
        if meta.get("tap") and state in (S.QUEUED, S.ENCODING):
            meta = self._prepare_video(job, meta)
        inputs = [media.MediaInput(absolute(i["path"], self.root), i.get("kind", "audio"), float(i.get("offset_s", 0)),
                                   dict(i.get("options", {}))) for i in meta["inputs"]]
        final = absolute(meta["output"], self.root)

        if state in (S.QUEUED, S.ENCODING):
            state, meta = self._encode(job, meta, inputs, final)
        if state == S.ENCODED:
            state, meta = self._verify(job, meta, inputs, final)
        if state == S.VERIFIED:
            state, meta = self._record(job, meta, final)
        if state == S.RECORDED:
            state = self._clean(job, meta, inputs, final)
        with self.sessions() as s:
            done = s.get(RecordingJob, job_id)
            rid = done.recording_id if done else None
        return Outcome(job_id, state, rid)

    def _prepare_video(self, job: RecordingJob, meta: dict[str, Any]) -> dict[str, Any]:
        """Once the tap is closed: its capture -> one H.264 stream per leg, added to the inputs; the output
        becomes an MP4 (an M4A when no leg sent decodable video). Run again after a crash, it makes the same."""
        audio = [i for i in meta["inputs"] if not i.get("derived")]
        raw_audio = [media.MediaInput(absolute(i["path"], self.root), i.get("kind", "audio")) for i in audio]
        if not all(i.path.exists() for i in raw_audio):
            return meta  # the encoding step decides (skip, fail, or a finished file)
        mf = absolute(meta["tap"], self.root)
        if not mf.exists():
            legs: list[video.LegVideo] = []
            meta["video_error"] = f"tap manifest {meta['tap']} is missing: audio only"
        else:
            m = tap.TapManifest.load(mf)
            if not m.closed and tap.owner_alive(m.owner) and self.clock() - mf.stat().st_mtime < STALE_CAPTURE_S:
                raise Postpone("the video capture is still running", 2.0)
            self._wait_closed(job, meta, raw_audio)
            meta["raw"] = [rel(mf, self.root)] + [rel(f, self.root) for f in video.segment_files(mf, m)]
            try:
                legs = video.extract(mf)
            except Exception as exc:  # noqa: BLE001 - a video the tap got wrong must not cost the audio
                log.error("recording job %s: video from %s could not be made (%s): audio only, tap files kept",
                          job.id, mf.name, exc)
                legs = []
                meta["video_error"] = f"{type(exc).__name__}: {exc}"[:500]
                meta["tap_kept"] = True
            meta["video_legs"] = [g.describe() for g in legs]
            meta["video_not_captured"] = [{"leg": g.id, "channel": g.channel, "number": g.number, "why": g.note}
                                          for g in m.not_captured()]
            if m.errors:
                meta["video_errors"] = list(m.errors)
        meta["inputs"] = audio + [{"path": rel(g.path, self.root), "kind": "video", "offset_s": round(g.offset_s, 3),
                                   "derived": True} for g in legs]
        meta["derived"] = [rel(g.path, self.root) for g in legs]
        meta["output"] = rel(absolute(meta["output"], self.root).with_suffix(".mp4" if legs else ".m4a"), self.root)
        self._update(job.id, meta=meta, output_path=meta["output"])
        return meta

    def _encode(self, job: RecordingJob, meta: dict[str, Any], inputs: list[media.MediaInput], final: Path
                ) -> tuple[RecordingJobState, dict[str, Any]]:
        missing = [i for i in inputs if not i.path.exists()]
        if missing:
            if final.exists() and job.state == S.ENCODING and meta.get("expected_s") is not None:
                # Raw gone but the final file made it (a kept-raw cleanup raced us): let verification judge.
                self._update(job.id, state=S.ENCODED)
                return S.ENCODED, meta
            if meta.get("capture_optional"):
                raise Skip(meta.get("skip_reason") or "no capture was made")
            raise Fatal(f"raw capture missing: {', '.join(str(i.path) for i in missing)}")
        derived = set(meta.get("derived", []))
        self._wait_closed(job, meta, [i for i in inputs if rel(i.path, self.root) not in derived])
        expected = max(media.capture_duration(i) for i in inputs)
        if expected < 0.05:
            raise Skip(f"empty capture ({expected:.3f} s): nothing to finalise; raw kept")
        meta["expected_s"] = round(expected, 3)
        probes = [media.probe(i.path, i.options) for i in inputs]
        the_plan = media.plan(inputs, probes, layout=self.settings.video_layout, duration_s=expected)
        meta["plan"] = {"container": the_plan.container, "audio": the_plan.audio, "video": list(the_plan.video)}
        if final.exists():
            # A run killed after the rename but before saying so: the file is complete (renames are atomic);
            # verification decides whether it is right.
            self._update(job.id, state=S.ENCODED, meta=meta)
            return S.ENCODED, meta
        self._update(job.id, state=S.ENCODING, meta=meta)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in stale_temps(final):  # left by a runner that died (we hold the lease: nobody else writes)
            log.info("removing %s left by an interrupted finalisation", stale)
            stale.unlink(missing_ok=True)
        tmp = temp_name(final, os.getpid())
        try:
            media.encode(inputs, the_plan, tmp, audio_bitrate=self.settings.audio_bitrate,
                         timeout=600.0 + 2 * expected)
            media.fsync_file(tmp)
            os.replace(tmp, final)
            media.fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
        self._update(job.id, state=S.ENCODED, meta=meta)
        return S.ENCODED, meta

    def _wait_closed(self, job: RecordingJob, meta: dict[str, Any], inputs: list[media.MediaInput]) -> None:
        """The capture is closed when its session ended (or its channel is gone) and it has not been
        written for `settle_s`; a capture untouched for an hour is closed whatever its session says."""
        newest = max(i.path.stat().st_mtime for i in inputs)
        idle = self.clock() - newest
        if idle > STALE_CAPTURE_S:
            return
        if meta.get("open"):
            raise Postpone("the session is still being recorded", 30.0)
        uid = meta.get("channel")
        if uid and self.channel_alive is not None and self.channel_alive(uid):
            raise Postpone("the call's channel is still up", max(self.settings.settle_s, 2.0))
        if idle < self.settings.settle_s:
            raise Postpone("the capture was written to a moment ago", self.settings.settle_s - idle + 0.2)

    def _verify(self, job: RecordingJob, meta: dict[str, Any], inputs: list[media.MediaInput], final: Path
                ) -> tuple[RecordingJobState, dict[str, Any]]:
        p = media.probe(final)
        expected = float(meta["expected_s"])
        problems = []
        if p.duration_s is None or abs(p.duration_s - expected) > self.settings.duration_tolerance_s:
            problems.append(f"duration {p.duration_s} s, the capture's is {expected} s "
                            f"(tolerance {self.settings.duration_tolerance_s} s)")
        if any(i.kind == "audio" for i in inputs) and p.codecs("audio") != ["aac"]:
            problems.append(f"audio streams {p.codecs('audio')}, expected one AAC")
        # One H.264 track per planned video output (the grid makes one of all the parties).
        planned = (meta.get("plan") or {}).get("video")
        want_video = len(planned) if planned is not None else sum(1 for i in inputs if i.kind == "video")
        if p.codecs("video") != ["h264"] * want_video:
            problems.append(f"video streams {p.codecs('video')}, expected {want_video} H.264")
        if problems:
            final.unlink(missing_ok=True)  # a wrong file never reaches the chain; the raw is still there
            self._update(job.id, state=S.QUEUED)
            raise media.MediaError(f"{final.name} failed verification: {'; '.join(problems)}")
        meta["duration_ms"] = int(round(p.duration_s * 1000)) if p.duration_s is not None else 0
        meta["codecs"] = p.codecs()
        meta["container"] = final.suffix.lstrip(".")
        self._update(job.id, state=S.VERIFIED, meta=meta)
        return S.VERIFIED, meta

    def _record(self, job: RecordingJob, meta: dict[str, Any], final: Path) -> tuple[RecordingJobState, dict[str, Any]]:
        sha, size = media.sha256_file(final)
        for _ in range(5):
            with self.sessions() as s:
                row = s.get(RecordingJob, job.id)
                assert row is not None
                existing = s.scalar(select(Recording).where(Recording.job_id == job.id))
                if existing is not None:  # recorded by a run that died before saying so
                    row.recording_id, row.state = existing.id, S.RECORDED
                    s.commit()
                    return S.RECORDED, meta
                fields = {
                    "job_id": job.id, "session_type": meta["session_type"], "session_id": str(meta["session_id"]),
                    "call_id": meta.get("call_id"), "room_id": meta.get("room_id"), "case_id": meta.get("case_id"),
                    "organisation_id": meta.get("organisation_id"), "participants": meta.get("participants", []),
                    "started_at": _dt(meta["started_at"]), "ended_at": _dt(meta["ended_at"]),
                    "duration_ms": int(meta["duration_ms"]), "size_bytes": size, "container": meta["container"],
                    "codecs": list(meta["codecs"]), "sha256": sha, "path": rel(final, self.root),
                    "supersedes_id": meta.get("supersedes_id"), "created_at": store.now(),
                }
                try:
                    rec = store.append(s, fields, meta.get("participants", []))
                    row.recording_id, row.state, row.updated_at = rec.id, S.RECORDED, store.now()
                    s.commit()
                    log.info("recording %s (seq %s) finalised: %s, %.1f s, %d bytes, sha256 %s", rec.id, rec.seq,
                             fields["path"], fields["duration_ms"] / 1000, size, sha[:16])
                    return S.RECORDED, meta
                except IntegrityError:  # another writer took this seq: read the new end of the chain, retry
                    s.rollback()
        raise RuntimeError("could not append to the recordings chain (contention)")

    def _clean(self, job: RecordingJob, meta: dict[str, Any], inputs: list[media.MediaInput], final: Path
               ) -> RecordingJobState:
        finals = {final.resolve()}
        keep = self.settings.keep_raw or meta.get("keep_inputs", False)
        if not keep:
            for i in inputs:
                if i.path.exists() and i.path.resolve() not in finals:
                    i.path.unlink()
            for r in [] if meta.get("tap_kept") else meta.get("raw", []):  # the video tap's manifest and pcaps
                absolute(r, self.root).unlink(missing_ok=True)
            if inputs:
                media.fsync_dir(inputs[0].path.parent)
        for d in meta.get("derived", []):  # per-leg video made from the pcap: made again whenever needed
            f = absolute(d, self.root)
            if f.resolve() not in finals:
                f.unlink(missing_ok=True)
        meta["raw_kept"] = bool(keep)
        with self.sessions() as s:
            row = s.get(RecordingJob, job.id)
            assert row is not None
            old_id = meta.get("supersedes_id")
            if old_id is not None:
                old = s.get(Recording, int(old_id))
                if old is not None and old.status == RecordingStatus.COMPLETE:
                    old.status, old.status_at = RecordingStatus.SUPERSEDED, store.now()
                    old_file = absolute(old.path, self.root)
                    if old_file.resolve() not in finals:
                        old_file.unlink(missing_ok=True)
                    store.audit(s, action="supersede", allowed=True, recording_id=old.id, username="system",
                                reason=f"re-encoded as recording {row.recording_id}",
                                detail={"by_recording": row.recording_id, "path": old.path})
            row.state, row.meta, row.updated_at, row.error = S.DONE, meta, store.now(), ""
            s.commit()
        return S.DONE

    # ---- what the capture is of -------------------------------------------------------------------
    def _resolve(self, job: RecordingJob, meta: dict[str, Any]) -> dict[str, Any]:
        with self.sessions() as s:
            if job.source == "hotline_call":
                out = self._hotline(s, job)
            elif job.source == "room_recording":
                out = self._room(s, job, meta)
            elif job.source == "recording":
                out = self._reencode(s, job, meta)
            else:
                raise Fatal(f"unknown job source {job.source!r}")
        merged = {**meta, **out, "resolved": True}
        merged.pop("open", None)
        return merged

    def _waited_too_long(self, job: RecordingJob) -> bool:
        return (store.now() - job.created_at).total_seconds() > GIVE_UP_WAITING_S

    def _hotline(self, s: Session, job: RecordingJob) -> dict[str, Any]:
        call = s.get(HotlineCall, job.source_ref)
        if call is None or not call.recording_path:
            if self._waited_too_long(job):
                raise Fatal(f"hotline call {job.source_ref} has no row with a recording")
            raise Postpone("the call's row is not written yet", 1.0)
        raw = Path(call.recording_path)
        if call.ended_at is None and not (raw.exists() and time.time() - raw.stat().st_mtime > STALE_CAPTURE_S):
            raise Postpone("the call is still going on", 30.0)
        parts: list[dict[str, Any]] = [{"role": "caller", "user_id": None, "number": call.caller_number or "",
                                        "name": call.caller_name or ""}]
        org = None
        if call.queue_id is not None:
            q = s.get(Queue, call.queue_id)
            org = q.organisation_id if q else None
        if call.agent_user_id is not None:
            agent = s.get(User, call.agent_user_id)
            if agent is not None:
                parts.append({"role": "agent", "user_id": agent.id, "number": agent.extension,
                              "name": agent.display_name or agent.username})
                org = org if org is not None else agent.organisation_id
        started = call.answered_at or call.enqueued_at or call.created_at
        ended = call.ended_at or store.now()
        return {
            "session_type": "hotline", "session_id": call.id, "call_id": call.id, "organisation_id": org,
            "participants": parts, "started_at": started.isoformat(), "ended_at": max(ended, started).isoformat(),
            "channel": call.id, "inputs": [{"path": str(raw), "kind": "audio"}],
            "output": rel(raw.with_suffix(".m4a"), self.root), **self._tap_of(raw),
            # MixMonitor's `b`: a call never bridged to an agent writes no file at all.
            "capture_optional": call.answered_at is None,
            "skip_reason": "the call was never answered: nothing was recorded",
        }

    def _room(self, s: Session, job: RecordingJob, meta: dict[str, Any]) -> dict[str, Any]:
        rec = s.scalar(select(RoomRecording).where(RoomRecording.path == job.source_ref)
                       .order_by(RoomRecording.id.desc()).limit(1))
        if rec is None:
            if self._waited_too_long(job):
                raise Fatal(f"no room recording with path {job.source_ref}")
            raise Postpone("the room recording's row is not written yet", 1.0)
        raw = Path(rec.path)
        if rec.ended_at is None and not (raw.exists() and time.time() - raw.stat().st_mtime > STALE_CAPTURE_S):
            raise Postpone("the room is still being recorded", 30.0)
        if meta.get("open") and rec.ended_at is not None and (store.now() - rec.ended_at).total_seconds() < 60:
            raise Postpone("waiting for the runtime's list of who joined", 1.0)
        room = s.get(Room, rec.room_id)
        kind = room.kind.value if room is not None else "meeting"
        out: dict[str, Any] = {
            "session_type": kind, "session_id": str(rec.session_id) if rec.session_id else f"rec{rec.id}",
            "room_id": rec.room_id, "organisation_id": room.organisation_id if room else None,
            "started_at": rec.started_at.isoformat(), "ended_at": (rec.ended_at or store.now()).isoformat(),
            "inputs": [{"path": str(raw), "kind": "audio"}], "output": rel(raw.with_suffix(".m4a"), self.root),
            "room_recording_id": rec.id, **self._tap_of(raw),
        }
        parts = [self._who(s, p) for p in meta.get("joined", [])]
        if kind == "mediation":
            ms = s.scalar(select(MediationSession).where(MediationSession.room_id == rec.room_id,
                                                         MediationSession.started_at <= rec.started_at + timedelta(seconds=5))
                          .order_by(MediationSession.started_at.desc()).limit(1))
            case = s.get(MediationCase, ms.case_id) if ms else s.scalar(
                select(MediationCase).where(MediationCase.room_id == rec.room_id))
            if ms is not None:
                out["session_id"] = str(ms.id)
            if case is not None:
                out["case_id"] = case.id
                out["organisation_id"] = case.organisation_id if case.organisation_id is not None else out["organisation_id"]
                mediator = s.get(User, case.mediator_id)
                if mediator is not None and not any(p.get("user_id") == mediator.id for p in parts):
                    parts.append({"role": "mediator", "user_id": mediator.id, "number": mediator.extension,
                                  "name": mediator.display_name or mediator.username})
                for party in s.scalars(select(MediationParty).where(MediationParty.case_id == case.id)):
                    parts.append({"role": party.role.value, "user_id": None, "number": party.phone,
                                  "name": party.name})
        elif kind == "dispatch":
            d = s.scalar(select(Dispatch).where(Dispatch.room_id == rec.room_id,
                                                Dispatch.started_at <= rec.started_at + timedelta(seconds=5))
                         .order_by(Dispatch.started_at.desc()).limit(1))
            if d is not None:
                out["session_id"] = f"dispatch{d.id}"
        out["participants"] = parts
        return out

    def _tap_of(self, raw: Path) -> dict[str, Any]:
        """The video tap's manifest beside an audio capture, if the session's video was tapped."""
        mf = tap.manifest_path(raw)
        return {"tap": rel(mf, self.root)} if self.settings.video and mf.exists() else {}

    def _who(self, s: Session, p: dict[str, Any]) -> dict[str, Any]:
        """A room participant (from the join events) with the user or device behind its number."""
        number = str(p.get("number") or "")
        out = {"role": str(p.get("role") or "participant"), "user_id": None, "number": number,
               "name": str(p.get("name") or "")}
        if number:
            user = s.scalar(select(User).where(User.extension == number))
            if user is not None:
                out["user_id"] = user.id
                out["name"] = out["name"] or user.display_name or user.username
            else:
                dev = s.scalar(select(Device).where(Device.extension == number))
                if dev is not None:
                    out["device_id"] = dev.id
                    out["name"] = out["name"] or dev.display_name
        return out

    def _reencode(self, s: Session, job: RecordingJob, meta: dict[str, Any]) -> dict[str, Any]:
        old = s.get(Recording, int(job.source_ref))
        if old is None:
            raise Fatal(f"no recording {job.source_ref} to re-encode")
        if old.status != RecordingStatus.COMPLETE:
            raise Fatal(f"recording {old.id} is {old.status.value}: nothing to re-encode")
        # From the raw capture when it was kept (the better source), else from the current file.
        first = s.scalar(select(RecordingJob).where(RecordingJob.recording_id == old.id))
        inputs = [i for i in ((first.meta or {}).get("inputs", []) if first else [])
                  if not i.get("derived") and absolute(i["path"], self.root).exists()]
        kept_tap = (first.meta or {}).get("tap") if first else None
        if kept_tap and not absolute(kept_tap, self.root).exists():
            kept_tap = None
        if inputs and old.container == "mp4" and not kept_tap:
            raise Fatal(f"recording {old.id}: its video capture was not kept; re-encoding would lose the video")
        if not inputs:
            inputs = [{"path": old.path, "kind": "video" if old.container == "mp4" else "audio"}]
            if old.container == "mp4":
                raise Fatal(f"recording {old.id}: re-encoding an MP4 without its raw captures is not supported")
        src = absolute(old.path, self.root)
        # Named after the job: unique, whatever was re-encoded before.
        output = src.with_name(f"{re.sub(r'[.]r[0-9]+$', '', src.stem)}.r{job.id}{src.suffix}")
        return {
            "session_type": old.session_type, "session_id": old.session_id, "call_id": old.call_id,
            "room_id": old.room_id, "case_id": old.case_id, "organisation_id": old.organisation_id,
            "participants": list(old.participants or []), "started_at": old.started_at.isoformat(),
            "ended_at": old.ended_at.isoformat(), "inputs": inputs, "output": rel(output, self.root),
            **({"tap": kept_tap} if kept_tap else {}),
            # A raw capture kept before stays kept; the old file goes when the new row supersedes it.
            "supersedes_id": old.id, "keep_inputs": True,
        }


def _dt(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
