"""The recordings runtime without Asterisk: bus hooks queue finalisation jobs (hotline answer/end, room
recording start/joins/stop), low disk raises an alarm and degrades the health part, and recovers."""

from __future__ import annotations

import asyncio
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.models import RecordingJob
from huiyan.hotline.service import HotlineEvent
from huiyan.recordings.service import RecordingsAlarm, RecordingsService
from huiyan.rooms.service import RoomEvent

Usage = namedtuple("Usage", "total used free")


class FakeDisk:
    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: Path) -> Usage:
        return Usage(100 * 1024**3, 0, self.free)


async def _service(tmp_path: Path, db_sessions: sessionmaker[Session], disk: FakeDisk,
                   bus: EventBus) -> RecordingsService:
    settings = Settings(data_dir=tmp_path / "data")
    settings.recordings.min_free_bytes = 5 * 1024**3
    svc = RecordingsService("pbx1", db_sessions, settings, bus, disk_usage=disk)
    await svc.start()
    return svc


async def _jobs(db_sessions: sessionmaker[Session], n: int) -> list[RecordingJob]:
    for _ in range(100):
        with db_sessions() as s:
            jobs = list(s.scalars(select(RecordingJob).order_by(RecordingJob.id)))
        if len(jobs) >= n:
            return jobs
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} job(s), got {len(jobs)}")


async def test_low_disk_raises_an_alarm_and_degrades_health(tmp_path: Path,
                                                            db_sessions: sessionmaker[Session]) -> None:
    bus = EventBus()
    seen: list[Any] = []
    bus.on(seen.append)
    disk = FakeDisk(50 * 1024**3)
    svc = await _service(tmp_path, db_sessions, disk, bus)
    try:
        assert svc.health()["ok"] is True and svc.health()["free_bytes"] == 50 * 1024**3
        assert not [e for e in seen if isinstance(e, RecordingsAlarm)]
        disk.free = 1 * 1024**3  # below the 5 GiB threshold
        await svc.check_disk()
        alarms = [e for e in seen if isinstance(e, RecordingsAlarm)]
        assert [a.kind for a in alarms] == ["low_disk"] and alarms[0].data["free_bytes"] == 1 * 1024**3
        h = svc.health()
        assert h["ok"] is False and "low disk" in h["error"] and h["min_free_bytes"] == 5 * 1024**3
        await svc.check_disk()  # still low: not raised again at once
        assert len([e for e in seen if isinstance(e, RecordingsAlarm)]) == 1
        disk.free = 10 * 1024**3
        await svc.check_disk()
        assert [a.kind for a in seen if isinstance(a, RecordingsAlarm)] == ["low_disk", "disk_ok"]
        assert svc.health()["ok"] is True
    finally:
        await svc.stop()


async def test_hotline_events_queue_one_job_per_call(tmp_path: Path, db_sessions: sessionmaker[Session]) -> None:
    bus = EventBus()
    svc = await _service(tmp_path, db_sessions, FakeDisk(50 * 1024**3), bus)
    bus.on(svc.on_event)
    try:
        now = time.time()
        bus.publish(HotlineEvent("pbx1", "CallAnswered", {"call_id": "1700.5", "agent_id": "3"}, now))
        bus.publish(HotlineEvent("pbx1", "CallCompleted", {"call_id": "1700.5"}, now + 5))
        bus.publish(HotlineEvent("pbx1", "CallQueued", {"call_id": "1700.6"}, now))  # not an answer or an end
        bus.publish(HotlineEvent("other-node", "CallCompleted", {"call_id": "1700.7"}, now))  # not ours
        jobs = await _jobs(db_sessions, 1)
        await asyncio.sleep(0.3)
        with db_sessions() as s:
            jobs = list(s.scalars(select(RecordingJob)))
        assert [(j.key, j.source, j.source_ref, j.state.value) for j in jobs] == [
            ("hotline:1700.5", "hotline_call", "1700.5", "queued")]
        # the end made it due soon (settle time), not in 30 s as at the answer
        assert (jobs[0].not_before - jobs[0].created_at).total_seconds() < 10
    finally:
        await svc.stop()


async def test_room_recording_events_queue_a_job_with_who_joined(tmp_path: Path,
                                                                  db_sessions: sessionmaker[Session]) -> None:
    bus = EventBus()
    svc = await _service(tmp_path, db_sessions, FakeDisk(50 * 1024**3), bus)
    bus.on(svc.on_event)
    path = str(tmp_path / "data" / "recordings" / "meeting" / "m.wav")
    try:
        bus.publish(RoomEvent("pbx1", 3, "6001", "recording_started", {"path": path}, time.time()))
        jobs = await _jobs(db_sessions, 1)
        assert jobs[0].key == f"room:{path}" and jobs[0].meta["open"] is True
        bus.publish(RoomEvent("pbx1", 3, "6001", "joined", {"id": "u1", "number": "80001", "name": "甲",
                                                            "role": "moderator"}, time.time()))
        bus.publish(RoomEvent("pbx1", 3, "6002", "joined", {"id": "u9", "number": "80009", "name": "别的会"},
                              time.time()))  # another room: not this recording's
        bus.publish(RoomEvent("pbx1", 3, "6001", "recording_stopped", {"path": path}, time.time()))
        for _ in range(100):
            with db_sessions() as s:
                job = s.scalar(select(RecordingJob))
            if job is not None and job.meta.get("open") is False:
                break
            await asyncio.sleep(0.05)
        assert job is not None and job.meta["open"] is False
        assert job.meta["joined"] == [{"number": "80001", "name": "甲", "role": "moderator"}]
    finally:
        await svc.stop()
