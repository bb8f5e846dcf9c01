"""Check-ins at run time: the scheduler (windows made ahead, reminders, windows opening and closing, misses),
alerts and their escalation, officers' roll-calls dialled one after another, the phone flow's database work,
and education attendance from the rooms' join/leave events. Every change goes on the bus as a
`CheckinEvent` or `CheckinAlertEvent` (and so to the event WebSocket).

The clock is a parameter (`clock`, and `tick(at)`): unit tests drive the scheduler through days in
milliseconds; the integration tests use the real clock with windows a few seconds long.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.aio import wait_event
from huiyan.bus import EventBus
from huiyan.checkin import store
from huiyan.checkin.model import challenge as new_challenge
from huiyan.config.settings import Settings
from huiyan.db.models import (
    CheckIn,
    CheckinAlert,
    CheckinKind,
    CheckinOutcome,
    CheckinSubject,
    RollCall,
    User,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.pbx.outcome import dial_failure

log = logging.getLogger(__name__)

ROLLCALL_CODECS = "ulaw,alaw,g722,h264,vp8,opus"  # without Codecs an originated channel carries no video
FAILURE_GRACE = 1.0  # a failed Originate waits this long for its channel's Hangup cause
FAILURE_TEXT = {
    "unreachable": "unreachable: the registered client is not registered, offline or refused by the network",
    "declined": "declined: the subject rejected the call",
    "no_answer": "no answer: the call rang out",
    "busy": "busy",
    "failed": "the call failed",
}


@dataclass(frozen=True, slots=True)
class CheckinEvent:
    """Published on the bus. kind: window_opened, reminder, window_closed, started, outside_window,
    pin_rejected, completed, incomplete, recorded, location, snapshot, finished, reviewed, dialling,
    rollcall_progress, rollcall_done, education_created, attended, call (the subject's page called in)."""

    node: str
    kind: str
    subject_id: int | None
    checkin_id: int | None
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class CheckinAlertEvent:
    """Published on the bus: an alert was raised (to the officer), escalated (to the office head) or
    acknowledged."""

    alert_id: int
    kind: str  # raised, escalated, acknowledged
    alert: str  # what it is about: missed, rejected, identity_failed, outside_area
    subject_id: int
    officer_id: int | None
    escalated_to_id: int | None
    message: str
    at: float


def alert_event(alert: CheckinAlert, kind: str) -> CheckinAlertEvent:
    return CheckinAlertEvent(alert.id, kind, alert.kind, alert.subject_id, alert.officer_id, alert.escalated_to_id,
                             alert.message, time.time())


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    id: int
    number: str
    name: str
    client: str | None
    officer_id: int
    organisation_id: int

    @classmethod
    def of(cls, s: CheckinSubject) -> SubjectInfo:
        return cls(s.id, s.number, s.name, s.client, s.officer_id, s.organisation_id)


@dataclass
class _Dial:
    checkin_id: int
    uid: str
    channel_created: bool = False
    rang: bool = False
    cause: int | None = None
    reason: int | None = None
    answered: bool = False
    pending: Any = None


class CheckinService:
    def __init__(self, node: str, sessions: sessionmaker[Session], settings: Settings, bus: EventBus, *,
                 ami: Any = None, clock: Callable[[], datetime] | None = None) -> None:
        self.node = node
        self.sessions = sessions
        self.settings = settings
        self.bus = bus
        self.ami = ami
        self.clock = clock or (lambda: datetime.now(UTC))
        self.recordings_dir = settings.data_dir / "recordings"
        self.internal = ExtensionPlan.from_pattern(settings.internal_extension_pattern)
        self.service_number = next((n for n, r in sorted(settings.services.items()) if r == "checkin"), "12340")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()
        self._dials: dict[str, _Dial] = {}
        self._finished: dict[int, asyncio.Event] = {}
        self._browser_calls: dict[str, tuple[int, float]] = {}  # call token -> (check-in id, valid until)
        self._education_rooms: set[int] = set()
        self._writes: asyncio.Queue[Callable[[], None]] | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def cfg(self) -> Any:
        return self.settings.checkin

    @property
    def escalate_after(self) -> timedelta:
        return timedelta(seconds=self.cfg.escalate_after_s)

    # ---- lifecycle ------------------------------------------------------------------------------------------
    async def start(self, *, run_scheduler: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        self._writes = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="checkin-writer")
        await self.refresh_education()
        await self._resume()
        if run_scheduler:
            self._ticker = asyncio.create_task(self._tick_loop(), name="checkin-scheduler")

    async def stop(self) -> None:
        for t in [self._ticker, self._writer, *self._tasks]:
            if t is not None:
                t.cancel()
        await asyncio.gather(*[t for t in [self._ticker, self._writer, *self._tasks] if t is not None],
                             return_exceptions=True)
        self._tasks.clear()

    def emit(self, event: Any) -> None:
        """Publish from anywhere: the event loop, a worker thread, or an API route's thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.bus.publish(event)
        else:
            loop.call_soon_threadsafe(self.bus.publish, event)

    def _event(self, kind: str, subject_id: int | None, checkin_id: int | None, **data: Any) -> None:
        self.emit(CheckinEvent(self.node, kind, subject_id, checkin_id, data, time.time()))

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("check-in: background task %s failed", task.get_name(), exc_info=task.exception())

    # ---- the scheduler ----------------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the scheduler never dies; the next tick tries again
                log.exception("check-in scheduler")
            await asyncio.sleep(self.cfg.tick_s)

    async def tick(self, at: datetime | None = None) -> dict[str, int]:
        """One pass: make windows ahead, send due reminders, open and close windows (misses alerted),
        escalate unacknowledged alerts. Safe to call at any time (tests call it with their own clock)."""
        at = at or self.clock()
        async with self._tick_lock:
            return await asyncio.to_thread(self._tick, at)

    def _tick(self, at: datetime) -> dict[str, int]:
        cfg = self.cfg
        with self.sessions() as s:
            made = store.materialise(s, at, horizon=timedelta(hours=cfg.horizon_h),
                                     lookback=timedelta(hours=cfg.lookback_h))
            s.commit()
            reminders = store.due_reminders(s, at)
            s.commit()
            for w, n in reminders:
                self._event("reminder", w.subject_id, None, window_id=w.id, notification_id=n.id,
                            opens_at=w.opens_at.isoformat(), closes_at=w.closes_at.isoformat(), message=n.message)
            opened = store.due_openings(s, at)
            s.commit()
            for w in opened:
                self._event("window_opened", w.subject_id, None, window_id=w.id, opens_at=w.opens_at.isoformat(),
                            closes_at=w.closes_at.isoformat(), grace_until=w.grace_until.isoformat())
            closed = store.close_due(s, at, escalate_after=self.escalate_after)
            s.commit()
            for c in closed:
                self._event("window_closed", c.window.subject_id, c.checkin.id if c.checkin else None,
                            window_id=c.window.id, result=c.window.result.value)
                if c.alert is not None:
                    self.emit(alert_event(c.alert, "raised"))
            escalated = store.due_escalations(s, at, cfg.escalate_to)
            s.commit()
            for alert, _head in escalated:
                self.emit(alert_event(alert, "escalated"))
        return {"made": len(made), "reminded": len(reminders), "opened": len(opened), "closed": len(closed),
                "escalated": len(escalated)}

    # ---- the phone flow's database work (all off the event loop) -------------------------------------------
    async def _db(self, fn: Callable[[Session], Any]) -> Any:
        def run() -> Any:
            with self.sessions() as s:
                out = fn(s)
                s.commit()
                return out

        return await asyncio.to_thread(run)

    async def subject_by_client(self, extension: str | None) -> SubjectInfo | None:
        def q(s: Session) -> SubjectInfo | None:
            subject = store.subject_by_client(s, extension or "")
            return SubjectInfo.of(subject) if subject is not None else None

        return await self._db(q) if extension else None

    async def subject_by_number(self, digits: str) -> SubjectInfo | None:
        def q(s: Session) -> SubjectInfo | None:
            subject = store.subject_by_number(s, digits)
            return SubjectInfo.of(subject) if subject is not None and subject.active else None

        return await self._db(q) if digits else None

    async def check_pin(self, subject_id: int, pin: str) -> bool:
        def q(s: Session) -> bool:
            return bool(pin) and store.check_pin(store.get_subject(s, subject_id), pin)

        return await self._db(q)

    async def unknown_subject(self, digits: str, call_id: str, caller: str) -> None:
        self._event("unknown_subject", None, None, digits=digits[:16], call_id=call_id, caller=caller)

    async def begin_phone(self, subject_id: int, *, call_id: str, caller: str) -> tuple[int, bool]:
        """A subject identified on the phone: the check-in row, and whether a window is open (if not, the
        row is an `outside_window` attempt, already final)."""
        at = self.clock()

        def q(s: Session) -> tuple[int, bool]:
            subject = store.get_subject(s, subject_id)
            window = store.open_window(s, subject.id, at)
            row = store.start_checkin(s, subject, CheckinKind.PHONE, at, window=window, node=self.node,
                                      call_id=call_id, caller=caller)
            if window is None:
                store.finish(s, row, CheckinOutcome.OUTSIDE_WINDOW, at, reason="called with no check-in window open",
                             escalate_after=self.escalate_after)
            return row.id, window is not None

        checkin_id, ok = await self._db(q)
        self._event("started" if ok else "outside_window", subject_id, checkin_id, via="phone", call_id=call_id)
        return checkin_id, ok

    async def rollcall_answered(self, checkin_id: int, call_id: str) -> SubjectInfo | None:
        """A roll-call's call was answered and reached the flow: the subject, or None when this check-in is
        not a pending roll-call (answered twice, or already given up on)."""
        def q(s: Session) -> SubjectInfo | None:
            row = s.get(CheckIn, checkin_id)
            if row is None or row.kind != CheckinKind.ROLLCALL or row.outcome != CheckinOutcome.PENDING:
                return None
            row.call_id = call_id
            return SubjectInfo.of(row.subject)

        info = await self._db(q)
        if info is not None:
            self._event("started", info.id, checkin_id, via="rollcall", call_id=call_id)
        return info

    async def rejected(self, subject_id: int, checkin_id: int | None, *, call_id: str, caller: str) -> int:
        """Too many wrong PINs: the check-in is rejected and the officer alerted."""
        at = self.clock()

        def q(s: Session) -> tuple[int, CheckinAlert | None]:
            subject = store.get_subject(s, subject_id)
            row = s.get(CheckIn, checkin_id) if checkin_id is not None else None
            if row is None:
                row = store.start_checkin(s, subject, CheckinKind.PHONE, at, node=self.node, call_id=call_id,
                                          caller=caller, window=store.open_window(s, subject.id, at))
            alert = store.finish(s, row, CheckinOutcome.REJECTED, at,
                                 reason=f"{self.cfg.pin_tries} wrong PINs", escalate_after=self.escalate_after)
            return row.id, alert

        cid, alert = await self._db(q)
        self._event("pin_rejected", subject_id, cid, call_id=call_id)
        if alert is not None:
            self.emit(alert_event(alert, "raised"))
        self._done(cid)
        return cid

    def new_challenge(self) -> str:
        return new_challenge(self.cfg.challenge_digits)

    # ---- the subject's page calling in ----------------------------------------------------------------
    BROWSER_CALL_TTL_S = 120.0

    def expect_browser_call(self, checkin_id: int) -> str:
        """The subject's page is about to call the check-in number for its (already PIN-checked) check-in: a
        one-time token the INVITE carries in a SIP header, so the flow records this call against that
        check-in instead of asking for the subject number and PIN again."""
        now = time.monotonic()
        for token, (_, until) in list(self._browser_calls.items()):
            if until < now:
                del self._browser_calls[token]
        token = secrets.token_urlsafe(24)
        self._browser_calls[token] = (checkin_id, now + self.BROWSER_CALL_TTL_S)
        return token

    async def browser_call(self, token: str, call_id: str) -> tuple[int, SubjectInfo, str] | None:
        """The page's call reached the flow: (check-in id, subject, its challenge digits), or None for an
        unknown, used or expired token, or a check-in that is no longer pending."""
        found = self._browser_calls.pop(token, None)
        if found is None or found[1] < time.monotonic():
            return None
        checkin_id = found[0]

        def q(s: Session) -> tuple[SubjectInfo, str] | None:
            row = s.get(CheckIn, checkin_id)
            if row is None or row.kind != CheckinKind.BROWSER or row.outcome != CheckinOutcome.PENDING:
                return None
            row.call_id, row.node = call_id, self.node
            return SubjectInfo.of(row.subject), row.challenge or new_challenge(self.cfg.challenge_digits)

        got = await self._db(q)
        if got is None:
            return None
        self._event("call", got[0].id, checkin_id, via="browser", call_id=call_id)
        return checkin_id, got[0], got[1]

    async def evidence(self, checkin_id: int, *, challenge: str, recording_path: str | None) -> None:
        def q(s: Session) -> None:
            row = store.get_checkin(s, checkin_id)
            row.pin_ok, row.challenge = True, challenge
            row.recording_path = recording_path
            if row.kind in (CheckinKind.PHONE, CheckinKind.ROLLCALL):
                row.location = "no_location"  # only the browser page can send a geolocation

        await self._db(q)

    async def complete(self, checkin_id: int) -> CheckinOutcome:
        """The phone flow got through: on time or late by the window (a roll-call is on time); a window that
        closed meanwhile leaves an attempt outside the window."""
        at = self.clock()

        def q(s: Session) -> tuple[CheckinOutcome, CheckinAlert | None, int]:
            row = store.get_checkin(s, checkin_id)
            window = s.get(store.CheckinWindow, row.window_id) if row.window_id else None
            outcome = store.outcome_for(window, at) or CheckinOutcome.OUTSIDE_WINDOW
            alert = store.finish(s, row, outcome, at, escalate_after=self.escalate_after)
            return outcome, alert, row.subject_id

        outcome, alert, subject_id = await self._db(q)
        self._event("completed", subject_id, checkin_id, outcome=outcome.value, location="no_location",
                    identity="not_checked")
        if alert is not None:
            self.emit(alert_event(alert, "raised"))
        self._done(checkin_id)
        return outcome

    async def incomplete(self, checkin_id: int, reason: str) -> None:
        at = self.clock()

        def q(s: Session) -> int | None:
            row = store.get_checkin(s, checkin_id)
            if row.outcome != CheckinOutcome.PENDING:
                return None
            store.finish(s, row, CheckinOutcome.INCOMPLETE, at, reason=reason, escalate_after=self.escalate_after)
            return row.subject_id

        subject_id = await self._db(q)
        if subject_id is not None:
            self._event("incomplete", subject_id, checkin_id, reason=reason)
        self._done(checkin_id)

    async def call_ended(self, checkin_id: int) -> None:
        """The call is over: hand its recording to the recordings service (RecordingsService listens for
        CheckinEvent "recorded") with everything the finaliser needs to know about it."""
        def q(s: Session) -> dict[str, Any] | None:
            row = store.get_checkin(s, checkin_id)
            if not row.recording_path:
                return None
            row.ended_at = row.ended_at or self.clock()
            return self.job_meta(s, row)

        meta = await self._db(q)
        if meta is not None:
            self._event("recorded", meta["subject_id"], checkin_id, job=meta, path=meta["inputs"][0]["path"])

    def job_meta(self, s: Session, row: CheckIn) -> dict[str, Any]:
        """The finalisation job's description, resolved here (the finaliser knows hotline calls and rooms,
        not check-ins): session, participants (the subject and the officer in charge), times, files."""
        subject = row.subject
        officer = s.get(User, subject.officer_id)
        raw = row.recording_path or ""
        parts: list[dict[str, Any]] = [{"role": "subject", "user_id": None, "number": subject.client or row.caller,
                                        "name": subject.name}]
        if officer is not None:
            parts.append({"role": "officer", "user_id": officer.id, "number": officer.extension,
                          "name": officer.display_name or officer.username})
        started = row.started_at
        ended = max(row.ended_at or self.clock(), started)
        return {
            "resolved": True, "session_type": "checkin", "session_id": f"checkin{row.id}", "call_id": row.call_id,
            "organisation_id": row.organisation_id, "participants": parts, "checkin_id": row.id,
            "subject_id": subject.id, "started_at": started.isoformat(), "ended_at": ended.isoformat(),
            "channel": row.call_id, "inputs": [{"path": raw, "kind": "audio"}],
            "output": os.path.relpath(os.path.splitext(raw)[0] + ".m4a", self.recordings_dir)
            if raw.startswith(str(self.recordings_dir)) else os.path.splitext(raw)[0] + ".m4a",
            "capture_optional": True, "skip_reason": "the call ended before anything was recorded",
        }

    async def _resume(self) -> None:
        """After a restart: recordings of calls that ended while nobody listened are handed over again
        (queuing is idempotent), and running roll-calls carry on."""
        since = self.clock() - timedelta(days=2)

        def q(s: Session) -> tuple[list[dict[str, Any]], list[int]]:
            from huiyan.db.models import RecordingJob

            metas = []
            for row in s.scalars(select(CheckIn).where(CheckIn.recording_path.is_not(None),
                                                       CheckIn.ended_at.is_not(None), CheckIn.started_at >= since)):
                if s.scalar(select(RecordingJob.id).where(RecordingJob.key == f"checkin:{row.id}")) is None:
                    metas.append(self.job_meta(s, row))
            running = list(s.scalars(select(RollCall.id).where(RollCall.status == "running")))
            return metas, running

        try:
            metas, running = await self._db(q)
        except Exception:  # noqa: BLE001 - never stops the controller
            log.exception("check-in: resuming after a restart")
            return
        for meta in metas:
            self._event("recorded", meta["subject_id"], meta["checkin_id"], job=meta, path=meta["inputs"][0]["path"])
        for rid in running:
            self._spawn(self._run_rollcall(rid), f"rollcall-{rid}")

    # ---- roll-calls ----------------------------------------------------------------------------------------
    def _done(self, checkin_id: int) -> None:
        ev = self._finished.get(checkin_id)
        if ev is not None:
            ev.set()

    async def start_rollcall(self, scope: Any, subject_ids: list[int], *, actor_id: int,
                             ring_s: int | None = None) -> dict[str, Any]:
        at = self.clock()
        ring = ring_s or self.cfg.rollcall_ring_s

        def q(s: Session) -> int:
            rc, _rows = store.create_rollcall(s, scope, subject_ids, actor_id=actor_id, ring_s=ring, at=at,
                                              node=self.node)
            return rc.id

        rid = await self._db(q)
        self._spawn(self._run_rollcall(rid), f"rollcall-{rid}")
        return await self.rollcall_view(rid)

    async def rollcall_view(self, rollcall_id: int) -> dict[str, Any]:
        return await asyncio.to_thread(self._rollcall_view, rollcall_id)

    def _rollcall_view(self, rollcall_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            return rollcall_view(s, rollcall_id)

    async def _run_rollcall(self, rollcall_id: int) -> None:
        def items(s: Session) -> tuple[int, list[tuple[int, bool]]]:
            rc = store.get_rollcall(s, rollcall_id)
            return rc.ring_s, [(r.id, r.outcome == CheckinOutcome.PENDING and r.call_id is None)
                               for r in store.rollcall_items(s, rollcall_id)]

        ring_s, todo = await self._db(items)
        total = len(todo)
        for n, (checkin_id, fresh) in enumerate(todo, 1):
            ev = self._finished.setdefault(checkin_id, asyncio.Event())
            if fresh:
                await self._dial(checkin_id, ring_s)
            if not await wait_event(ev, ring_s + self.cfg.rollcall_max_s + 10):
                await self.incomplete(checkin_id, "the roll-call call did not finish in time")
            self._finished.pop(checkin_id, None)
            view = await self.rollcall_view(rollcall_id)
            item = next((i for i in view["items"] if i["checkin_id"] == checkin_id), {})
            self._event("rollcall_progress", item.get("subject_id"), checkin_id, rollcall_id=rollcall_id, done=n,
                        total=total, outcome=item.get("outcome"), reason=item.get("reason", ""))

        def finish(s: Session) -> None:
            rc = store.get_rollcall(s, rollcall_id)
            rc.status, rc.finished_at = "done", self.clock()

        await self._db(finish)
        view = await self.rollcall_view(rollcall_id)
        self._event("rollcall_done", None, None, rollcall_id=rollcall_id, total=total, summary=view["summary"])

    async def _dial(self, checkin_id: int, ring_s: int) -> None:
        from huiyan.config.render import TRUNK_ENDPOINT
        from huiyan.dialplan import RUN
        from huiyan.rooms.h323 import H323Plan
        from huiyan.rooms.model import RoomError, dial_target

        def q(s: Session) -> tuple[int, str]:
            row = store.get_checkin(s, checkin_id)
            return row.subject_id, row.subject.client or ""

        subject_id, client = await self._db(q)
        uid = f"{self.node}-ck{checkin_id}-{uuid.uuid4().hex[:10]}"
        trunk = self.settings.trunk
        try:
            dial = dial_target(client, internal=self.internal, trunk_endpoint=TRUNK_ENDPOINT if trunk.host else None,
                               trunk_host=trunk.host, h323=H323Plan.from_settings(self.settings.h323))
        except RoomError as exc:
            await self._dial_failed_with(checkin_id, f"cannot call {client!r}: {exc}")
            return

        def mark(s: Session) -> None:
            store.get_checkin(s, checkin_id).call_id = uid

        await self._db(mark)
        self._dials[uid] = _Dial(checkin_id, uid)
        self._event("dialling", subject_id, checkin_id, dial=dial, call_id=uid)
        if self.ami is None:
            await self._dial_failed_with(checkin_id, "no PBX connection")
            return
        try:
            await self.ami.action(
                "Originate", Channel=dial, Context=RUN, Exten=self.service_number, Priority=1, Async="true",
                ChannelId=uid, CallerID=f'"社区矫正点验" <{self.service_number}>', Timeout=str(ring_s * 1000),
                Codecs=ROLLCALL_CODECS,
                Variable={"HUIYAN_ROUTE": "checkin", "HUIYAN_CLASS": "invited", "HUIYAN_CK_ID": str(checkin_id)})
        except Exception as exc:  # noqa: BLE001 - AMI refused: the roll-call of this subject failed
            self._dials.pop(uid, None)
            await self._dial_failed_with(checkin_id, f"the PBX refused the call: {exc}")

    async def _dial_failed_with(self, checkin_id: int, reason: str) -> None:
        at = self.clock()

        def q(s: Session) -> tuple[int, CheckinAlert | None] | None:
            row = store.get_checkin(s, checkin_id)
            if row.outcome != CheckinOutcome.PENDING:
                return None
            alert = store.finish(s, row, CheckinOutcome.MISSED, at, reason=reason, escalate_after=self.escalate_after)
            return row.subject_id, alert

        out = await self._db(q)
        if out is not None:
            subject_id, alert = out
            self._event("finished", subject_id, checkin_id, outcome="missed", reason=reason)
            if alert is not None:
                self.emit(alert_event(alert, "raised"))
        self._done(checkin_id)

    # ---- bus listener: AMI events of roll-call dials, rooms' events for attendance -------------------------
    def on_event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "RoomEvent":
            self._on_room(event)
            return
        if kind == "CheckinEvent" and event.kind == "education_created":
            self._spawn(self.refresh_education(), "checkin-education-refresh")
            return
        name = getattr(event, "name", None)
        if name not in ("OriginateResponse", "Newchannel", "Newstate", "Hangup"):
            return
        d = self._dials.get(event.get("Uniqueid") or "")
        if d is None or d.answered:
            return
        try:
            if name == "OriginateResponse":
                self._on_originate(d, event)
            else:
                d.channel_created = True
                if name == "Newstate" and event.get("ChannelStateDesc") == "Ringing":
                    d.rang = True
                elif name == "Hangup":
                    cause = event.get("Cause") or ""
                    d.cause = int(cause) if cause.isdigit() else None
                    if d.pending is not None:
                        d.pending.cancel()
                        self._dial_failed(d)
        except Exception:  # noqa: BLE001
            log.exception("check-in: could not apply %s", name)

    def _on_originate(self, d: _Dial, event: Any) -> None:
        if event.get("Response") == "Success":
            d.answered = True
            self._dials.pop(d.uid, None)
            return
        raw = event.get("Reason") or ""
        d.reason = int(raw) if raw.isdigit() else None
        if d.channel_created and d.cause is None:
            d.pending = asyncio.get_running_loop().call_later(FAILURE_GRACE, self._dial_failed, d)
            return
        self._dial_failed(d)

    def _dial_failed(self, d: _Dial) -> None:
        d.pending = None
        if self._dials.pop(d.uid, None) is None:
            return
        why = dial_failure(d.reason, d.cause, channel_created=d.channel_created, rang=d.rang)
        self._spawn(self._dial_failed_with(d.checkin_id, FAILURE_TEXT.get(why, why)), f"rollcall-failed-{d.uid}")

    # ---- education attendance --------------------------------------------------------------------------------
    async def refresh_education(self) -> None:
        def q(s: Session) -> set[int]:
            return set(store.education_by_room(s))

        try:
            self._education_rooms = await self._db(q)
        except Exception:  # noqa: BLE001
            log.exception("check-in: loading education rooms")

    def _on_room(self, event: Any) -> None:
        if event.room_id not in self._education_rooms or event.kind not in ("joined", "left"):
            return
        at = datetime.fromtimestamp(event.at, UTC)
        pid = str(event.data.get("id") or "")
        if event.kind == "joined":
            number = str(event.data.get("number") or "")
            room_id = event.room_id

            def joined() -> None:
                with self.sessions() as s:
                    subject_id = store.presence_joined(s, room_id, pid, number, at)
                    s.commit()
                if subject_id is not None:
                    self._event("attended", subject_id, None, room_id=room_id, participant=pid, joined=True)

            self._write(joined)
        else:
            def left() -> None:
                with self.sessions() as s:
                    n = store.presence_left(s, pid, at)
                    s.commit()
                if n:
                    self._event("attended", None, None, room_id=event.room_id, participant=pid, joined=False)

            self._write(left)

    def _write(self, fn: Callable[[], None]) -> None:
        if self._writes is not None:
            self._writes.put_nowait(fn)

    async def _write_loop(self) -> None:
        """Writes in arrival order (a leave never overtakes its join), off the event loop."""
        assert self._writes is not None
        while True:
            fn = await self._writes.get()
            for attempt in range(3):
                try:
                    await asyncio.to_thread(fn)
                    break
                except Exception:  # noqa: BLE001
                    log.exception("check-in: database write failed (attempt %d)", attempt + 1)
                    await asyncio.sleep(0.5)

    async def drain(self) -> None:
        """Wait until the queued writes are done (tests)."""
        while self._writes is not None and not self._writes.empty():
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)


def rollcall_view(s: Session, rollcall_id: int) -> dict[str, Any]:
    rc = store.get_rollcall(s, rollcall_id)
    rows = store.rollcall_items(s, rollcall_id)
    items = [{"checkin_id": r.id, "subject_id": r.subject_id, "number": r.subject.number, "name": r.subject.name,
              "outcome": r.outcome.value, "reason": r.reason, "review": r.review,
              "state": "waiting" if r.outcome == CheckinOutcome.PENDING and r.call_id is None
              else "in_progress" if r.outcome == CheckinOutcome.PENDING else "done"} for r in rows]
    done = sum(1 for i in items if i["state"] == "done")
    summary: dict[str, int] = {}
    for i in items:
        if i["state"] == "done":
            summary[i["outcome"]] = summary.get(i["outcome"], 0) + 1
    return {"id": rc.id, "status": rc.status, "ring_s": rc.ring_s, "created_by_id": rc.created_by_id,
            "created_at": rc.created_at, "finished_at": rc.finished_at, "total": len(items), "done": done,
            "summary": summary, "items": items}
