"""The recordings at run time: queue finalisation when a recorded call or meeting ends, run the jobs off the
event loop, watch the disk, sweep for captures nobody queued, and purge by retention once a day.

Hooks come from the bus, so neither the hotline nor the rooms need to know about evidence:
- `HotlineEvent` CallAnswered queues the call's job (MixMonitor's `b` records only from the answer);
  CallCompleted / CallTransferred / CallAbandoned make it due once the capture has settled.
- `RoomEvent` recording_started queues the room recording's job (and starts noting who joins);
  recording_stopped hands over the participants and makes it due.
- `CheckinEvent` recorded (a check-in call ended) queues its job, described in full by the check-in service
  (which also re-announces, at its start, the calls that ended while no controller listened).
A sweep (at start and every `sweep_every_s`) queues whatever ended while no controller listened.
Video: the media tap (tap.py) listens to the same bus and captures each recorded session's video beside its
audio; the finaliser finds it there.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.aio import wait_event
from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.models import RecordingJob, RecordingJobState
from huiyan.recordings import ops, store
from huiyan.recordings.model import DiskState
from huiyan.recordings.pipeline import Finaliser, Outcome
from huiyan.recordings.tap import TapService

log = logging.getLogger(__name__)

LOW_DISK_REPEAT_S = 3600.0  # while the disk stays low, the alarm is raised again this often


@dataclass(frozen=True, slots=True)
class RecordingEvent:
    """Published on the bus: a recording was queued, finalised (in the chain), skipped, failed or purged."""

    node: str
    kind: str
    job_id: int | None
    recording_id: int | None
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class RecordingsAlarm:
    """Published on the bus: something endangers recordings (low_disk, finalisation_failed) or the danger
    passed (disk_ok)."""

    node: str
    kind: str
    message: str
    data: dict[str, Any]
    at: float


HOTLINE_END = ("CallCompleted", "CallTransferred", "CallAbandoned", "CallTimedOut")


@dataclass
class _Intent:
    key: str
    session_type: str
    source: str
    source_ref: str
    meta: dict[str, Any] = field(default_factory=dict)
    due_in: float | None = None


def recordings_dir(settings: Settings) -> Path:
    return settings.data_dir / "recordings"


class RecordingsService:
    def __init__(self, node: str, sessions: sessionmaker[Session], settings: Settings, bus: EventBus, *,
                 channel_alive: Callable[[str], bool] | None = None, rooms: Any = None,
                 disk_usage: Callable[[Path], Any] = shutil.disk_usage, ami: Any = None, tracker: Any = None) -> None:
        self.node = node
        self.sessions = sessions
        self.settings = settings
        self.bus = bus
        self.rooms = rooms
        self.root = recordings_dir(settings)
        self.disk_usage = disk_usage
        self.finaliser = Finaliser(sessions, self.root, settings.recordings, channel_alive=channel_alive)
        self.disk: DiskState | None = None
        self.pending = 0
        self.failed = 0
        self._low_since: float | None = None
        self._low_alarm_at = 0.0
        self._joined: dict[str, dict[str, dict[str, Any]]] = {}  # room number -> participant id -> who
        self._intents: asyncio.Queue[_Intent] | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.last_purge: list[ops.Purged] | None = None
        cfg = settings.recordings
        # The media tap needs AMI (Getvar of each leg's video port) and the channel tracker (bridge members).
        self.tap: TapService | None = None
        if ami is not None and tracker is not None and cfg.video:
            self.tap = TapService(node, ami, tracker, rooms=rooms, binary=cfg.tcpdump, interface=cfg.capture_interface,
                                  alarm=self._tap_alarm)

    @property
    def cfg(self) -> Any:
        return self.settings.recordings

    # ---- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if self.tap is not None:
            await self.tap.start()
        self._intents = asyncio.Queue()
        await self.check_disk()
        await self._count()
        for name, coro in (("recordings-intents", self._intent_loop()), ("recordings-worker", self._work_loop()),
                           ("recordings-disk", self._disk_loop()), ("recordings-sweep", self._sweep_loop()),
                           ("recordings-purge", self._purge_loop())):
            self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        if self.tap is not None:
            await self.tap.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    # ---- hooks (bus listener) -------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        if self.tap is not None:
            self.tap.on_event(event)
        kind = type(event).__name__
        if kind == "RoomEvent":
            self._on_room(event)
        elif kind == "HotlineEvent" and event.node == self.node:
            call_id = event.data.get("call_id")
            if not call_id:
                return
            if event.kind == "CallAnswered":
                self._intend(_Intent(store.hotline_key(call_id), "hotline", "hotline_call", call_id,
                                     due_in=30.0))
            elif event.kind in HOTLINE_END:
                self._intend(_Intent(store.hotline_key(call_id), "hotline", "hotline_call", call_id,
                                     due_in=self.cfg.settle_s))
        elif kind == "CheckinEvent" and event.node == self.node and event.kind == "recorded" and event.data.get("job"):
            # A check-in call ended (huiyan/checkin): its job comes already resolved (session, participants,
            # times, files), so the finaliser needs no check-in knowledge; `capture_optional` skips an empty one.
            self._intend(_Intent(f"checkin:{event.checkin_id}", "checkin", "checkin", str(event.checkin_id),
                                 meta=dict(event.data["job"]), due_in=self.cfg.settle_s))

    def _on_room(self, event: Any) -> None:
        if event.node != self.node:
            return
        number = event.number
        if event.kind == "recording_started" and event.data.get("path"):
            joined = self._joined.setdefault(number, {})
            state = getattr(self.rooms, "live", {}).get(number) if self.rooms is not None else None
            for p in (state.participants.values() if state is not None else ()):
                joined[p.id] = {"number": p.number, "name": p.name, "role": p.role.value}
            path = event.data["path"]
            self._intend(_Intent(store.room_key(path), "room", "room_recording", path,
                                 meta={"open": True, "joined": list(joined.values())}, due_in=30.0))
        elif event.kind == "joined" and number in self._joined:
            d = event.data
            self._joined[number][d.get("id", "")] = {"number": d.get("number", ""), "name": d.get("name", ""),
                                                     "role": d.get("role", "participant")}
        elif event.kind == "recording_stopped" and event.data.get("path"):
            joined = self._joined.pop(number, {})
            path = event.data["path"]
            self._intend(_Intent(store.room_key(path), "room", "room_recording", path,
                                 meta={"open": False, "joined": list(joined.values())}, due_in=self.cfg.settle_s))

    def _intend(self, intent: _Intent) -> None:
        if self._intents is not None:
            self._intents.put_nowait(intent)

    async def _intent_loop(self) -> None:
        assert self._intents is not None
        while True:
            intent = await self._intents.get()
            for attempt in range(5):
                try:
                    job_id = await asyncio.to_thread(self._enqueue, intent)
                    self.bus.publish(RecordingEvent(self.node, "queued", job_id, None,
                                                    {"key": intent.key, "session_type": intent.session_type},
                                                    time.time()))
                    break
                except Exception:  # noqa: BLE001 - the sweep catches anything that never got queued
                    log.exception("recordings: could not queue %s (attempt %d)", intent.key, attempt + 1)
                    await asyncio.sleep(0.5 * (attempt + 1))
            self.wake()

    def _enqueue(self, intent: _Intent) -> int:
        with self.sessions() as s:
            due = None if intent.due_in is None else store.now() + timedelta(seconds=intent.due_in)
            job = store.enqueue(s, key=intent.key, session_type=intent.session_type, source=intent.source,
                                source_ref=intent.source_ref, meta=intent.meta, not_before=due)
            return job.id

    # ---- the worker -----------------------------------------------------------------------------
    async def _work_loop(self) -> None:
        while True:
            try:
                outcomes = await asyncio.to_thread(self.finaliser.run_due)
                for o in outcomes:
                    self._announce(o)
                await self._count()
                if any(not o.postponed and o.state is not None for o in outcomes):
                    continue  # more may be due right away
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker never dies; the job is retried
                log.exception("recordings worker")
            self._wake.clear()
            await wait_event(self._wake, 2.0)

    def _tap_alarm(self, kind: str, message: str, data: dict[str, Any]) -> None:
        self.bus.publish(RecordingsAlarm(self.node, kind, message, data, time.time()))

    def _announce(self, o: Outcome) -> None:
        if o.postponed or o.state is None:
            return
        kind = {RecordingJobState.DONE: "finalised", RecordingJobState.SKIPPED: "skipped",
                RecordingJobState.FAILED: "failed"}.get(o.state)
        if kind is None:
            return  # a step failed and will be retried
        self.bus.publish(RecordingEvent(self.node, kind, o.job_id, o.recording_id, {"reason": o.reason}, time.time()))
        if kind == "failed":
            self.bus.publish(RecordingsAlarm(self.node, "finalisation_failed",
                                             f"recording job {o.job_id} failed: {o.reason} (raw capture kept)",
                                             {"job_id": o.job_id, "reason": o.reason}, time.time()))

    async def _count(self) -> None:
        def count() -> tuple[int, int]:
            with self.sessions() as s:
                rows = dict(s.execute(select(RecordingJob.state, func.count()).group_by(RecordingJob.state)).all())
            pending = sum(n for st, n in rows.items() if st not in store.TERMINAL)
            return pending, rows.get(RecordingJobState.FAILED, 0)

        self.pending, self.failed = await asyncio.to_thread(count)

    async def run_due_now(self) -> list[Outcome]:
        """Run whatever is due now (tests, operators); the worker keeps going as well."""
        outcomes = await asyncio.to_thread(self.finaliser.run_due)
        for o in outcomes:
            self._announce(o)
        return outcomes

    # ---- disk -----------------------------------------------------------------------------------
    async def check_disk(self) -> DiskState:
        """Free bytes of the recordings directory against `min_free_bytes`: an alarm on the bus when it goes
        low (and every hour while it stays low), another when it recovers; /healthz shows it meanwhile."""
        usage = await asyncio.to_thread(self.disk_usage, self.root)
        state = DiskState(int(usage.free), int(usage.total), int(self.cfg.min_free_bytes))
        self.disk = state
        now = time.time()
        data = {"free_bytes": state.free_bytes, "total_bytes": state.total_bytes, "threshold": state.threshold,
                "dir": str(self.root)}
        if state.low:
            if self._low_since is None or now - self._low_alarm_at >= LOW_DISK_REPEAT_S:
                self._low_since = self._low_since or now
                self._low_alarm_at = now
                log.error("recordings: low disk, %d bytes free in %s (alarm below %d)", state.free_bytes, self.root,
                          state.threshold)
                self.bus.publish(RecordingsAlarm(
                    self.node, "low_disk",
                    f"only {state.free_bytes / 1024**3:.2f} GiB free for recordings (alarm below "
                    f"{state.threshold / 1024**3:.2f} GiB): free space before recording has to stop", data, now))
        elif self._low_since is not None:
            self._low_since = None
            self.bus.publish(RecordingsAlarm(self.node, "disk_ok", "recordings disk space is back above the threshold",
                                             data, now))
        return state

    async def _disk_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.disk_check_every_s)
            try:
                await self.check_disk()
            except Exception:  # noqa: BLE001
                log.exception("recordings: disk check")

    def health(self) -> dict[str, Any]:
        d = self.disk
        out: dict[str, Any] = {"ok": d is not None and not d.low, "pending_jobs": self.pending,
                               "failed_jobs": self.failed}
        if d is not None:
            out.update(free_bytes=d.free_bytes, min_free_bytes=d.threshold)
            if d.low:
                out["error"] = "low disk: free space for recordings is below the threshold"
        if self.tap is not None:
            out["video"] = self.tap.health()
            if self.tap.problem:  # no tcpdump: video evidence is not being recorded (audio still is)
                out["ok"] = False
                out["error"] = self.tap.problem
        worker = next((t for t in self._tasks if t.get_name() == "recordings-worker"), None)
        if worker is not None and worker.done():
            out["ok"] = False
            out["error"] = "the finalisation worker stopped"
        return out

    # ---- sweep and purge ------------------------------------------------------------------------
    async def sweep(self) -> int:
        def run() -> int:
            with self.sessions() as s:
                return store.sweep(s, self.cfg.settle_s)

        made = await asyncio.to_thread(run)
        if made:
            log.info("recordings: queued %d capture(s) nobody had queued", made)
            self.wake()
        return made

    async def _sweep_loop(self) -> None:
        await asyncio.sleep(2.0)
        while True:
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001
                log.exception("recordings: sweep")
            await asyncio.sleep(self.cfg.sweep_every_s)

    async def purge(self, *, dry_run: bool = False) -> list[ops.Purged]:
        out = await asyncio.to_thread(ops.purge, self.sessions, self.root, self.cfg.retention, now=store.now(),
                                      dry_run=dry_run, actor="system")
        if not dry_run:
            self.last_purge = out
            for p in out:
                self.bus.publish(RecordingEvent(self.node, "purged", None, p.id,
                                                {"session_type": p.session_type, "path": p.path}, time.time()))
        return out

    async def _purge_loop(self) -> None:
        await asyncio.sleep(min(300.0, self.cfg.purge_every_s))
        while True:
            try:
                await self.purge()
            except Exception:  # noqa: BLE001
                log.exception("recordings: retention purge")
            await asyncio.sleep(self.cfg.purge_every_s)
