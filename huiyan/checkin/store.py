"""The check-in tables, kept by their rules (for the API, the call flow and the scheduler), and the report
queries. Synchronous: called from worker threads and sync API routes. Functions flush but never commit,
except where the name says otherwise.

Rules kept here: a subject's officer is an active officer or supervisor; the office exists; the
supervision period runs forwards; the PIN is 4-8 digits and stored hashed (argon2, like passwords); the
registered client is an internal extension or a SIP URI; the area is a centre + radius or a polygon
(validated in `model.check_area`); a schedule makes sense (`model.ScheduleSpec.check`); a window is made
once per schedule and opening time; an outcome that is a miss or a failure raises an alert for the officer.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from huiyan.db.orgtree import organisation_subtree, oversees
from huiyan.checkin.model import (
    ALERT_TEXT,
    ALERTED,
    PASSES,
    PIN_RE,
    SUBJECT_NUMBER_RE,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReportRow,
    ScheduleSpec,
    SubjectScope,
    check_area,
    classify,
    code_digest,
    format_time,
    is_present,
    minutes_present,
    new_code,
    next_subject_number,
    parse_time,
    passed,
    windows_of,
)
from huiyan.db.models import (
    CheckIn,
    CheckinAlert,
    CheckinCode,
    CheckinKind,
    CheckinNotification,
    CheckinOutcome,
    CheckinSchedule,
    CheckinSnapshot,
    CheckinSubject,
    CheckinWindow,
    EducationAttendee,
    EducationPresence,
    EducationSession,
    Organisation,
    RiskLevel,
    Role,
    RollCall,
    RoomKind,
    ScheduleKind,
    User,
    VideoMode,
    WindowResult,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

NAME_RE = r'^[^\x00-\x1f\x7f";<>\\]{1,100}$'
SIP_URI_RE = re.compile(r"^sips?:[A-Za-z0-9._~%+-]+@[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")
OFFICER_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR})
SUBJECT_FIELDS = frozenset({"name", "officer_id", "organisation_id", "supervision_start", "supervision_end",
                            "risk_level", "client", "area", "pin", "active", "number"})


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---- scope --------------------------------------------------------------------------------------------------


def scope_of(session: Session, user_id: int, role: Role) -> SubjectScope:
    everything, organisations = oversees(session, user_id, role)
    return SubjectScope(user_id, role, everything=everything, organisations=organisations)


def _scoped(stmt: Any, scope: SubjectScope, org_col: Any, officer_col: Any) -> Any:
    if scope.everything:
        return stmt
    conds = [officer_col == scope.user_id]
    if scope.organisations:
        conds.append(org_col.in_(scope.organisations))
    return stmt.where(or_(*conds))


# ---- subjects ----------------------------------------------------------------------------------------------


def get_subject(session: Session, subject_id: int) -> CheckinSubject:
    subject = session.get(CheckinSubject, subject_id)
    if subject is None:
        raise NotFound(f"subject {subject_id} not found")
    return subject


def visible_subject(session: Session, scope: SubjectScope, subject_id: int) -> CheckinSubject:
    subject = get_subject(session, subject_id)
    if not scope.sees(subject.organisation_id, subject.officer_id):
        raise Forbidden(f"subject {subject.number} is not yours: an officer sees the subjects they supervise, a "
                        "supervisor those of their organisation")
    return subject


def subject_by_number(session: Session, number: str) -> CheckinSubject | None:
    return session.scalar(select(CheckinSubject).where(CheckinSubject.number == number.strip()))


def subject_by_client(session: Session, client: str) -> CheckinSubject | None:
    """The active subject whose registered client is `client` (an extension): how a call identifies them."""
    if not client:
        return None
    return session.scalar(select(CheckinSubject).where(CheckinSubject.client == client,
                                                       CheckinSubject.active.is_(True)).limit(1))


def _check_client(client: str | None, plan: ExtensionPlan) -> str | None:
    if client is None or not client.strip():
        return None
    c = client.strip()
    if c.isdigit():
        if not plan.contains(c):
            raise Invalid(f"client {c!r} is not an extension of the internal plan {plan.pattern}")
        return c
    if SIP_URI_RE.match(c):
        return c
    raise Invalid(f"client {c!r} must be an internal extension ({plan.pattern}) or a SIP URI (sip:user@host)")


def _check_officer(session: Session, officer_id: int) -> User:
    user = session.get(User, officer_id)
    if user is None:
        raise Invalid(f"officer: user {officer_id} does not exist")
    if not user.active:
        raise Invalid(f"officer: user {user.username} is disabled")
    if user.role not in OFFICER_ROLES:
        raise Invalid(f"user {user.username} has role {user.role.value}: a subject's officer in charge is an officer "
                      "or a supervisor")
    return user


def _check_values(session: Session, values: dict[str, Any], subject: CheckinSubject | None,
                  plan: ExtensionPlan) -> None:
    if re.fullmatch(NAME_RE, values["name"] or "") is None:
        raise Invalid("name must be 1-100 characters, without control characters, quotes, ; < > or \\")
    if re.fullmatch(SUBJECT_NUMBER_RE, values["number"]) is None:
        raise Invalid(f"subject number {values['number']!r} must be 4-16 digits")
    other = session.scalar(select(CheckinSubject.id).where(CheckinSubject.number == values["number"]))
    if other is not None and (subject is None or other != subject.id):
        raise Conflict(f"subject number {values['number']} is already used by subject {other}")
    _check_officer(session, values["officer_id"])
    if session.get(Organisation, values["organisation_id"]) is None:
        raise Invalid(f"organisation {values['organisation_id']} does not exist")
    if not values["supervision_start"] <= values["supervision_end"]:
        raise Invalid("supervision_start must not be after supervision_end")
    values["client"] = _check_client(values.get("client"), plan)
    if values["client"] is not None and values["client"].isdigit():
        other = session.scalar(select(CheckinSubject.id).where(CheckinSubject.client == values["client"],
                                                               CheckinSubject.active.is_(True)))
        if other is not None and (subject is None or other != subject.id) and values.get("active", True):
            raise Conflict(f"extension {values['client']} is already the registered client of subject {other}: a "
                           "call from it must identify one subject")
    values["area"] = check_area(values.get("area"))
    values["risk_level"] = RiskLevel(values["risk_level"])


def _pin_hash(pin: str) -> str:
    if re.fullmatch(PIN_RE, pin or "") is None:
        raise Invalid("the PIN must be 4-8 digits")
    return hash_password(pin)


def create_subject(session: Session, *, name: str, officer_id: int, organisation_id: int, supervision_start: date,
                   supervision_end: date, pin: str, plan: ExtensionPlan, risk_level: RiskLevel | str = RiskLevel.LOW,
                   client: str | None = None, area: dict[str, Any] | None = None, number: str | None = None,
                   active: bool = True) -> CheckinSubject:
    values: dict[str, Any] = {
        "name": name, "officer_id": officer_id, "organisation_id": organisation_id,
        "supervision_start": supervision_start, "supervision_end": supervision_end, "risk_level": risk_level,
        "client": client, "area": area, "active": active,
        "number": number or next_subject_number(session.scalars(select(CheckinSubject.number))),
    }
    _check_values(session, values, None, plan)
    subject = CheckinSubject(**values, pin_hash=_pin_hash(pin))
    session.add(subject)
    session.flush()
    return subject


def update_subject(session: Session, subject_id: int, changes: Mapping[str, Any], *, plan: ExtensionPlan
                   ) -> CheckinSubject:
    subject = get_subject(session, subject_id)
    changes = dict(changes)
    unknown = set(changes) - SUBJECT_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a subject")
    pin = changes.pop("pin", None)
    keys = SUBJECT_FIELDS - {"pin"}
    values = {k: getattr(subject, k) for k in keys} | changes
    _check_values(session, values, subject, plan)
    for key in keys:
        setattr(subject, key, values[key])
    if pin is not None:
        subject.pin_hash = _pin_hash(pin)
        subject.pin_failures = 0
    if changes.get("active") is False:
        cancel_windows(session, subject_id=subject.id, after=now())
    session.flush()
    return subject


def list_subjects(session: Session, scope: SubjectScope, *, organisation_id: int | None = None,
                  officer_id: int | None = None, active: bool | None = None, q: str | None = None,
                  offset: int = 0, limit: int = 50) -> tuple[list[CheckinSubject], int]:
    stmt = _scoped(select(CheckinSubject), scope, CheckinSubject.organisation_id, CheckinSubject.officer_id)
    if organisation_id is not None:
        stmt = stmt.where(CheckinSubject.organisation_id.in_(organisation_subtree(session, organisation_id)))
    if officer_id is not None:
        stmt = stmt.where(CheckinSubject.officer_id == officer_id)
    if active is not None:
        stmt = stmt.where(CheckinSubject.active.is_(active))
    if q:
        stmt = stmt.where(CheckinSubject.name.icontains(q, autoescape=True)
                          | CheckinSubject.number.icontains(q, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(CheckinSubject.number).offset(offset).limit(limit)))
    return items, int(total)


def check_pin(subject: CheckinSubject, pin: str) -> bool:
    return verify_password(subject.pin_hash, pin)


# ---- one-time codes -----------------------------------------------------------------------------------------


def issue_code(session: Session, subject: CheckinSubject, *, ttl_s: int, actor_id: int | None) -> tuple[str, datetime]:
    for _ in range(20):
        code = new_code()
        if session.scalar(select(CheckinCode.id).where(CheckinCode.code_hash == code_digest(code))) is None:
            break
    else:
        raise Conflict("could not find a free one-time code")
    expires = now() + timedelta(seconds=ttl_s)
    session.add(CheckinCode(subject_id=subject.id, code_hash=code_digest(code), expires_at=expires,
                            created_by_id=actor_id))
    session.flush()
    return code, expires


def redeem_code(session: Session, code: str, at: datetime) -> CheckinSubject | None:
    """The subject a valid, unused, unexpired code is for (the code is used up), or None."""
    row = session.scalar(select(CheckinCode).where(CheckinCode.code_hash == code_digest(code)))
    if row is None or row.used_at is not None or row.expires_at <= at:
        return None
    row.used_at = at
    subject = session.get(CheckinSubject, row.subject_id)
    session.flush()
    return subject


# ---- schedules and windows ----------------------------------------------------------------------------------


def spec_of(s: CheckinSchedule) -> ScheduleSpec:
    return ScheduleSpec(
        kind=s.kind, start_time=parse_time(s.start_time) if s.start_time else None,
        end_time=parse_time(s.end_time) if s.end_time else None, days=tuple(s.days or ()), per_week=s.per_week,
        spot_s=s.spot_s, seed=s.seed, opens_at=s.opens_at, closes_at=s.closes_at, grace_s=s.grace_s,
        remind_s=s.remind_s, timezone=s.timezone)


def add_schedule(session: Session, subject: CheckinSubject, *, kind: ScheduleKind | str, timezone: str,
                 start_time: str | None = None, end_time: str | None = None, days: Iterable[int] = (),
                 per_week: int = 0, spot_s: int = 1800, seed: int | None = None, opens_at: datetime | None = None,
                 closes_at: datetime | None = None, grace_s: int = 0, remind_s: int = 900,
                 actor_id: int | None = None, at: datetime | None = None) -> CheckinSchedule:
    """A schedule for `subject`; its windows count from `at` (now) on: none is made for a past time."""
    kind = ScheduleKind(kind)
    if kind == ScheduleKind.SPOT and seed is None:
        seed = secrets.randbits(31)
    spec = ScheduleSpec(
        kind=kind, start_time=parse_time(start_time) if start_time else None,
        end_time=parse_time(end_time) if end_time else None, days=tuple(days), per_week=per_week, spot_s=spot_s,
        seed=seed or 0, opens_at=opens_at, closes_at=closes_at, grace_s=grace_s, remind_s=remind_s,
        timezone=timezone).check()
    if not subject.active:
        raise Conflict(f"subject {subject.number} is not active")
    row = CheckinSchedule(
        subject_id=subject.id, kind=kind, start_time=format_time(spec.start_time) if spec.start_time else None,
        end_time=format_time(spec.end_time) if spec.end_time else None, days=sorted(spec.days), per_week=per_week,
        spot_s=spot_s, seed=spec.seed, opens_at=_aware(opens_at) if opens_at else None,
        closes_at=_aware(closes_at) if closes_at else None, grace_s=grace_s, remind_s=remind_s, timezone=timezone,
        created_by_id=actor_id, created_at=at or now())
    session.add(row)
    session.flush()
    return row


def cancel_windows(session: Session, *, subject_id: int | None = None, schedule_id: int | None = None,
                   after: datetime) -> int:
    """Windows not opened yet are cancelled (a removed schedule, a deactivated subject)."""
    stmt = select(CheckinWindow).where(CheckinWindow.result == WindowResult.PENDING, CheckinWindow.opens_at > after)
    if subject_id is not None:
        stmt = stmt.where(CheckinWindow.subject_id == subject_id)
    if schedule_id is not None:
        stmt = stmt.where(CheckinWindow.schedule_id == schedule_id)
    n = 0
    for w in session.scalars(stmt):
        w.result, w.closed_at = WindowResult.CANCELLED, after
        n += 1
    return n


def remove_schedule(session: Session, schedule_id: int) -> CheckinSchedule:
    row = session.get(CheckinSchedule, schedule_id)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    row.active = False
    cancel_windows(session, schedule_id=row.id, after=now())
    session.flush()
    return row


def _local_date(at: datetime, tz: str) -> date:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).date()


def materialise(session: Session, at: datetime, *, horizon: timedelta, lookback: timedelta) -> list[CheckinWindow]:
    """Make the windows every active schedule has from `at - lookback` (but never before the schedule was
    made) to `at + horizon`, within the subject's supervision period. Idempotent."""
    made: list[CheckinWindow] = []
    rows = session.execute(
        select(CheckinSchedule, CheckinSubject).join(CheckinSubject, CheckinSubject.id == CheckinSchedule.subject_id)
        .where(CheckinSchedule.active.is_(True), CheckinSubject.active.is_(True))).all()
    for sched, subject in rows:
        since = max(at - lookback, sched.created_at)
        existing = set(session.scalars(select(CheckinWindow.opens_at).where(CheckinWindow.schedule_id == sched.id,
                                                                            CheckinWindow.grace_until > since)))
        for w in windows_of(spec_of(sched), since, at + horizon):
            if w.opens_at in existing:
                continue
            day = _local_date(w.opens_at, sched.timezone)
            if not subject.supervision_start <= day <= subject.supervision_end:
                continue
            row = CheckinWindow(subject_id=subject.id, schedule_id=sched.id, kind=sched.kind, opens_at=w.opens_at,
                                closes_at=w.closes_at, grace_until=w.grace_until, remind_at=w.remind_at)
            session.add(row)
            made.append(row)
    session.flush()
    return made


def due_reminders(session: Session, at: datetime) -> list[tuple[CheckinWindow, CheckinNotification]]:
    """Windows whose reminder is due (and that have not closed): marked reminded, a notification each."""
    out = []
    for w in session.scalars(select(CheckinWindow).where(
            CheckinWindow.result == WindowResult.PENDING, CheckinWindow.reminded_at.is_(None),
            CheckinWindow.remind_at <= at, CheckinWindow.closes_at > at).order_by(CheckinWindow.remind_at)):
        w.reminded_at = at
        n = CheckinNotification(kind="reminder", subject_id=w.subject_id, window_id=w.id, created_at=at,
                                message=f"check-in window {_local(w.opens_at)} - {_local(w.closes_at)}: please check in")
        session.add(n)
        out.append((w, n))
    session.flush()
    return out


def _local(at: datetime, tz: str = "Asia/Shanghai") -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def due_openings(session: Session, at: datetime) -> list[CheckinWindow]:
    out = list(session.scalars(select(CheckinWindow).where(
        CheckinWindow.result == WindowResult.PENDING, CheckinWindow.opened_at.is_(None),
        CheckinWindow.opens_at <= at, CheckinWindow.grace_until > at)))
    for w in out:
        w.opened_at = at
    session.flush()
    return out


def open_window(session: Session, subject_id: int, at: datetime) -> CheckinWindow | None:
    """The window `subject_id` may check in for at `at` (grace included), the earliest if several."""
    return session.scalar(select(CheckinWindow).where(
        CheckinWindow.subject_id == subject_id, CheckinWindow.result == WindowResult.PENDING,
        CheckinWindow.opens_at <= at, CheckinWindow.grace_until > at).order_by(CheckinWindow.opens_at).limit(1))


@dataclass
class Closed:
    window: CheckinWindow
    checkin: CheckIn | None  # the row recording a miss
    alert: CheckinAlert | None


def close_due(session: Session, at: datetime, *, escalate_after: timedelta) -> list[Closed]:
    """Windows past their grace: passed if a check-in in them passed, failed if there were attempts (each
    alerted already), missed otherwise (a row records the miss and the officer is alerted)."""
    out: list[Closed] = []
    for w in session.scalars(select(CheckinWindow).where(CheckinWindow.result == WindowResult.PENDING,
                                                         CheckinWindow.grace_until <= at)
                             .order_by(CheckinWindow.grace_until)).all():
        subject = session.get(CheckinSubject, w.subject_id)
        attempts = list(session.scalars(select(CheckIn).where(CheckIn.window_id == w.id)))
        w.closed_at = at
        for c in attempts:  # a page that never sent "finish": it is over now
            if c.kind == CheckinKind.BROWSER and c.outcome == CheckinOutcome.PENDING:
                c.outcome, c.ended_at = CheckinOutcome.INCOMPLETE, at
                c.reason = "the window closed before the check-in was finished"
        if any(passed(c.outcome, c.review) for c in attempts):
            w.result = WindowResult.PASSED
            out.append(Closed(w, None, None))
            continue
        if any(c.kind != CheckinKind.WINDOW and c.outcome in ALERTED for c in attempts):
            w.result = WindowResult.FAILED
            out.append(Closed(w, None, None))
            continue
        # Nothing, or only attempts that never finished (hung up, gave up): a miss, alerted now.
        w.result = WindowResult.MISSED
        assert subject is not None
        unfinished = sum(1 for c in attempts if c.kind != CheckinKind.WINDOW)
        row = CheckIn(subject_id=subject.id, organisation_id=subject.organisation_id, officer_id=subject.officer_id,
                      window_id=w.id, kind=CheckinKind.WINDOW, outcome=CheckinOutcome.MISSED,
                      reason=f"no check-in between {_local(w.opens_at)} and {_local(w.grace_until)}"
                             + (f" ({unfinished} attempt(s) not completed)" if unfinished else ""),
                      started_at=w.opens_at, ended_at=w.grace_until)
        session.add(row)
        session.flush()
        alert = raise_alert(session, subject, row, at=at, escalate_after=escalate_after)
        out.append(Closed(w, row, alert))
    session.flush()
    return out


def settle_window(session: Session, window_id: int | None, at: datetime) -> None:
    """A review changed whether a check-in passed: a closed window's result follows."""
    if window_id is None:
        return
    w = session.get(CheckinWindow, window_id)
    if w is None or w.result in (WindowResult.PENDING, WindowResult.CANCELLED):
        return
    attempts = list(session.scalars(select(CheckIn).where(CheckIn.window_id == w.id)))
    if any(passed(c.outcome, c.review) for c in attempts):
        w.result = WindowResult.PASSED
    elif any(c.kind != CheckinKind.WINDOW and (c.outcome in ALERTED or c.review == "fail") for c in attempts):
        w.result = WindowResult.FAILED
    else:
        w.result = WindowResult.MISSED


# ---- check-ins ------------------------------------------------------------------------------------------------


def get_checkin(session: Session, checkin_id: int) -> CheckIn:
    row = session.get(CheckIn, checkin_id)
    if row is None:
        raise NotFound(f"check-in {checkin_id} not found")
    return row


def start_checkin(session: Session, subject: CheckinSubject, kind: CheckinKind, at: datetime, *,
                  window: CheckinWindow | None = None, node: str = "", call_id: str | None = None,
                  caller: str = "", rollcall_id: int | None = None, challenge: str = "") -> CheckIn:
    row = CheckIn(subject_id=subject.id, organisation_id=subject.organisation_id, officer_id=subject.officer_id,
                  window_id=window.id if window else None, rollcall_id=rollcall_id, kind=kind,
                  outcome=CheckinOutcome.PENDING, node=node, call_id=call_id, caller=caller[:100], started_at=at,
                  challenge=challenge)
    session.add(row)
    session.flush()
    return row


def finish(session: Session, row: CheckIn, outcome: CheckinOutcome, at: datetime, *, reason: str = "",
           escalate_after: timedelta) -> CheckinAlert | None:
    """Give the check-in its outcome; a miss or a failure alerts the officer. Returns the alert, if any."""
    row.outcome, row.ended_at = outcome, row.ended_at or at
    if reason:
        row.reason = reason[:300]
    session.flush()
    if row.window_id is not None and outcome in PASSES:
        w = session.get(CheckinWindow, row.window_id)
        if w is not None and w.result != WindowResult.PENDING:
            settle_window(session, w.id, at)
    if outcome in ALERTED:
        return raise_alert(session, row.subject, row, at=at, escalate_after=escalate_after)
    return None


def outcome_for(window: CheckinWindow | None, at: datetime) -> CheckinOutcome | None:
    """on_time / late for a check-in completed at `at` in `window`; None outside it. No window (a roll-call):
    on time."""
    if window is None:
        return CheckinOutcome.ON_TIME
    return classify(at, window.opens_at, window.closes_at, window.grace_until)


def review(session: Session, checkin_id: int, result: str, note: str, actor_id: int, at: datetime) -> CheckIn:
    row = get_checkin(session, checkin_id)
    if row.outcome == CheckinOutcome.PENDING:
        raise Conflict(f"check-in {row.id} is still in progress: review it once it has ended")
    if row.kind == CheckinKind.WINDOW:
        raise Conflict(f"check-in {row.id} records a window nobody checked in for: there is nothing to review")
    row.review, row.review_note, row.reviewed_by_id, row.reviewed_at = result, note, actor_id, at
    settle_window(session, row.window_id, at)
    session.flush()
    return row


def list_checkins(session: Session, scope: SubjectScope, *, subject_id: int | None = None,
                  outcome: CheckinOutcome | None = None, kind: CheckinKind | None = None,
                  rollcall_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
                  offset: int = 0, limit: int = 50) -> tuple[list[CheckIn], int]:
    stmt = _scoped(select(CheckIn), scope, CheckIn.organisation_id, CheckIn.officer_id)
    if subject_id is not None:
        stmt = stmt.where(CheckIn.subject_id == subject_id)
    if outcome is not None:
        stmt = stmt.where(CheckIn.outcome == outcome)
    if kind is not None:
        stmt = stmt.where(CheckIn.kind == kind)
    if rollcall_id is not None:
        stmt = stmt.where(CheckIn.rollcall_id == rollcall_id)
    if since is not None:
        stmt = stmt.where(CheckIn.started_at >= since)
    if until is not None:
        stmt = stmt.where(CheckIn.started_at < until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(CheckIn.started_at.desc(), CheckIn.id.desc()).offset(offset)
                                 .limit(limit)))
    return items, int(total)


def snapshots_of(session: Session, checkin_id: int) -> list[CheckinSnapshot]:
    return list(session.scalars(select(CheckinSnapshot).where(CheckinSnapshot.checkin_id == checkin_id)
                                .order_by(CheckinSnapshot.id)))


# ---- alerts and notifications -------------------------------------------------------------------------------


def raise_alert(session: Session, subject: CheckinSubject, row: CheckIn | None, *, at: datetime,
                escalate_after: timedelta, kind: str | None = None, message: str | None = None) -> CheckinAlert:
    kind = kind or (row.outcome.value if row is not None else "alert")
    what = next((text for outcome, text in ALERT_TEXT.items() if outcome.value == kind), kind)
    text = message or f"{subject.name} ({subject.number}) {what}"
    if row is not None and row.reason:
        text += f": {row.reason}"
    alert = CheckinAlert(subject_id=subject.id, checkin_id=row.id if row is not None else None,
                         organisation_id=subject.organisation_id, kind=kind, message=text[:500],
                         officer_id=subject.officer_id, created_at=at, escalate_at=at + escalate_after)
    session.add(alert)
    session.flush()
    session.add(CheckinNotification(kind="alert", user_id=subject.officer_id, subject_id=subject.id, alert_id=alert.id,
                                    message=text[:500], created_at=at))
    session.flush()
    return alert


def office_head(session: Session, subject: CheckinSubject, configured: str | None) -> User | None:
    """Who an unacknowledged alert goes to: a supervisor of the subject's office; else the configured user;
    else a supervisor of the nearest office above. Never the officer themself."""
    def supervisor_of(org_id: int) -> User | None:
        return session.scalar(select(User).where(User.organisation_id == org_id, User.role == Role.SUPERVISOR,
                                                 User.active.is_(True), User.id != subject.officer_id)
                              .order_by(User.id).limit(1))

    head = supervisor_of(subject.organisation_id)
    if head is not None:
        return head
    if configured:
        user = session.scalar(select(User).where(User.username == configured, User.active.is_(True)))
        if user is not None:
            return user
        log.warning("check-in: escalate_to user %r does not exist or is disabled", configured)
    org = session.get(Organisation, subject.organisation_id)
    while org is not None and org.parent_id is not None:
        org = session.get(Organisation, org.parent_id)
        if org is not None and (head := supervisor_of(org.id)) is not None:
            return head
    return None


def due_escalations(session: Session, at: datetime, configured: str | None) -> list[tuple[CheckinAlert, User | None]]:
    out = []
    for alert in session.scalars(select(CheckinAlert).where(CheckinAlert.acknowledged_at.is_(None),
                                                            CheckinAlert.escalated_at.is_(None),
                                                            CheckinAlert.escalate_at <= at)).all():
        subject = session.get(CheckinSubject, alert.subject_id)
        head = office_head(session, subject, configured) if subject is not None else None
        alert.escalated_at = at
        alert.escalated_to_id = head.id if head is not None else None
        if head is not None:
            session.add(CheckinNotification(kind="escalation", user_id=head.id, subject_id=alert.subject_id,
                                            alert_id=alert.id, created_at=at,
                                            message=f"not acknowledged in time: {alert.message}"[:500]))
        else:
            log.warning("check-in alert %s: nobody to escalate to (no supervisor of the office, no escalate_to)",
                        alert.id)
        out.append((alert, head))
    session.flush()
    return out


def get_alert(session: Session, alert_id: int) -> CheckinAlert:
    alert = session.get(CheckinAlert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def acknowledge(session: Session, alert_id: int, actor_id: int, note: str, at: datetime) -> CheckinAlert:
    alert = get_alert(session, alert_id)
    if alert.acknowledged_at is not None:
        raise Conflict(f"alert {alert.id} was already acknowledged at {alert.acknowledged_at.isoformat()}")
    alert.acknowledged_at, alert.acknowledged_by_id, alert.ack_note = at, actor_id, note
    session.flush()
    return alert


def list_alerts(session: Session, scope: SubjectScope, user_id: int, *, open_only: bool = False,
                subject_id: int | None = None, offset: int = 0, limit: int = 50) -> tuple[list[CheckinAlert], int]:
    stmt = select(CheckinAlert)
    if not scope.everything:
        conds = [CheckinAlert.officer_id == user_id, CheckinAlert.escalated_to_id == user_id]
        if scope.organisations:
            conds.append(CheckinAlert.organisation_id.in_(scope.organisations))
        stmt = stmt.where(or_(*conds))
    if open_only:
        stmt = stmt.where(CheckinAlert.acknowledged_at.is_(None))
    if subject_id is not None:
        stmt = stmt.where(CheckinAlert.subject_id == subject_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = list(session.scalars(stmt.order_by(CheckinAlert.created_at.desc(), CheckinAlert.id.desc())
                                 .offset(offset).limit(limit)))
    return items, int(total)


def notifications_for(session: Session, user_id: int, *, unread_only: bool = False, limit: int = 100
                      ) -> list[CheckinNotification]:
    stmt = select(CheckinNotification).where(CheckinNotification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(CheckinNotification.read_at.is_(None))
    return list(session.scalars(stmt.order_by(CheckinNotification.id.desc()).limit(limit)))


def subject_notifications(session: Session, subject_id: int, limit: int = 50) -> list[CheckinNotification]:
    return list(session.scalars(select(CheckinNotification).where(CheckinNotification.subject_id == subject_id,
                                                                   CheckinNotification.user_id.is_(None))
                                .order_by(CheckinNotification.id.desc()).limit(limit)))


# ---- roll-calls ---------------------------------------------------------------------------------------------


def create_rollcall(session: Session, scope: SubjectScope, subject_ids: list[int], *, actor_id: int, ring_s: int,
                    at: datetime, node: str) -> tuple[RollCall, list[CheckIn]]:
    if not subject_ids:
        raise Invalid("subject_ids: name at least one subject")
    if len(set(subject_ids)) != len(subject_ids):
        raise Invalid("subject_ids: a subject is listed twice")
    subjects = [visible_subject(session, scope, sid) for sid in subject_ids]
    for s in subjects:
        if not s.active:
            raise Conflict(f"subject {s.number} is not active")
        if not s.client:
            raise Conflict(f"subject {s.number} has no registered client to call: set client (an extension or a "
                           "SIP URI)")
    rc = RollCall(created_by_id=actor_id, status="running", ring_s=ring_s, created_at=at)
    session.add(rc)
    session.flush()
    rows = [start_checkin(session, s, CheckinKind.ROLLCALL, at, node=node, rollcall_id=rc.id,
                          caller=s.client or "") for s in subjects]
    return rc, rows


def get_rollcall(session: Session, rollcall_id: int) -> RollCall:
    rc = session.get(RollCall, rollcall_id)
    if rc is None:
        raise NotFound(f"roll-call {rollcall_id} not found")
    return rc


def rollcall_items(session: Session, rollcall_id: int) -> list[CheckIn]:
    return list(session.scalars(select(CheckIn).where(CheckIn.rollcall_id == rollcall_id).order_by(CheckIn.id)))


# ---- education sessions -----------------------------------------------------------------------------------------


def create_education(session: Session, scope: SubjectScope, *, title: str, organisation_id: int | None,
                     starts_at: datetime, ends_at: datetime, subject_ids: list[int], min_share: float,
                     actor_id: int, plan: ExtensionPlan, video_mode: VideoMode = VideoMode.FOLLOW_TALKER
                     ) -> EducationSession:
    from huiyan.rooms import store as rooms

    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Invalid("starts_at and ends_at must carry a time zone (e.g. 2026-12-01T14:00:00+08:00)")
    if not starts_at < ends_at:
        raise Invalid("starts_at must be before ends_at")
    if re.fullmatch(r'^[^\x00-\x1f\x7f";<>\\]{1,100}$', title) is None:
        raise Invalid("title must be 1-100 characters, without control characters, quotes, ; < > or \\")
    if len(set(subject_ids)) != len(subject_ids):
        raise Invalid("subject_ids: a subject is listed twice")
    subjects = [visible_subject(session, scope, sid) for sid in subject_ids]
    room = rooms.create_room(session, plan=plan, name=title, kind=RoomKind.EDUCATION, video_mode=video_mode,
                             organisation_id=organisation_id, starts_at=starts_at, ends_at=ends_at, record=True,
                             max_participants=max(10, len(subjects) + 5), moderator_user_ids=[actor_id],
                             invitees=[{"target": s.client, "name": s.name} for s in subjects
                                       if s.client and s.client.isdigit()])
    edu = EducationSession(title=title, room_id=room.id, organisation_id=organisation_id, starts_at=_aware(starts_at),
                           ends_at=_aware(ends_at), min_share=min_share, created_by_id=actor_id, created_at=now())
    edu.attendees = [EducationAttendee(subject_id=s.id) for s in subjects]
    session.add(edu)
    session.flush()
    return edu


def get_education(session: Session, edu_id: int) -> EducationSession:
    edu = session.get(EducationSession, edu_id)
    if edu is None:
        raise NotFound(f"education session {edu_id} not found")
    return edu


def education_by_room(session: Session) -> dict[int, int]:
    """room id -> education session id (what the room events are matched with)."""
    return {r: e for e, r in session.execute(select(EducationSession.id, EducationSession.room_id))}


def presence_joined(session: Session, room_id: int, participant_id: str, number: str, at: datetime) -> int | None:
    """A participant joined an education room: if their number is an attendee's registered client, a stretch
    of presence starts. Returns the subject id, or None for someone else (the teacher, a guest)."""
    edu = session.scalar(select(EducationSession).where(EducationSession.room_id == room_id))
    if edu is None or not number:
        return None
    subject = session.scalar(select(CheckinSubject).join(EducationAttendee, EducationAttendee.subject_id == CheckinSubject.id)
                             .where(EducationAttendee.session_id == edu.id, CheckinSubject.client == number))
    if subject is None:
        return None
    if session.scalar(select(EducationPresence.id).where(EducationPresence.session_id == edu.id,
                                                         EducationPresence.participant_id == participant_id)) is None:
        session.add(EducationPresence(session_id=edu.id, subject_id=subject.id, participant_id=participant_id,
                                      joined_at=at))
        session.flush()
    return subject.id


def presence_left(session: Session, participant_id: str, at: datetime) -> int:
    n = 0
    for p in session.scalars(select(EducationPresence).where(EducationPresence.participant_id == participant_id,
                                                             EducationPresence.left_at.is_(None))):
        p.left_at = at
        n += 1
    session.flush()
    return n


def attendance(session: Session, edu: EducationSession, at: datetime) -> list[dict[str, Any]]:
    rows = []
    for a in edu.attendees:
        stretches = [(p.joined_at, p.left_at) for p in session.scalars(
            select(EducationPresence).where(EducationPresence.session_id == edu.id,
                                            EducationPresence.subject_id == a.subject_id))]
        minutes = minutes_present(stretches, edu.starts_at, edu.ends_at, at)
        rows.append({"subject_id": a.subject_id, "number": a.subject.number, "name": a.subject.name,
                     "minutes": minutes, "joins": len(stretches),
                     "present": is_present(minutes, edu.starts_at, edu.ends_at, edu.min_share)})
    return rows


# ---- reports ------------------------------------------------------------------------------------------------------


def report(session: Session, scope: SubjectScope, month: str, since: datetime, until: datetime, *,
           organisation_id: int | None = None) -> list[ReportRow]:
    """Per office (the subject's organisation when the event happened) for one month: windows due (those
    whose grace ended in the month) and how they ended, roll-calls, check-ins by outcome, alerts."""
    within = set(organisation_subtree(session, organisation_id)) if organisation_id is not None else None
    rows: dict[int, ReportRow] = {}
    names = {i: n for i, n in session.execute(select(Organisation.id, Organisation.name))}

    def row(org: int | None, officer: int | None) -> ReportRow | None:
        if org is None or (within is not None and org not in within) or not scope.sees(org, officer):
            return None
        r = rows.get(org)
        if r is None:
            r = rows[org] = ReportRow(org, names.get(org, f"#{org}"), month)
        return r

    subj = select(CheckinSubject.organisation_id, CheckinSubject.officer_id).where(
        CheckinSubject.active.is_(True))
    for org, officer in session.execute(subj):
        if (r := row(org, officer)) is not None:
            r.subjects += 1
    wins = (select(CheckinWindow.result, CheckinSubject.organisation_id, CheckinSubject.officer_id)
            .join(CheckinSubject, CheckinSubject.id == CheckinWindow.subject_id)
            .where(CheckinWindow.grace_until >= since, CheckinWindow.grace_until < until,
                   CheckinWindow.result.in_((WindowResult.PASSED, WindowResult.FAILED, WindowResult.MISSED))))
    for result, org, officer in session.execute(wins):
        if (r := row(org, officer)) is not None:
            r.windows_due += 1
            if result == WindowResult.PASSED:
                r.windows_passed += 1
            elif result == WindowResult.FAILED:
                r.windows_failed += 1
            else:
                r.windows_missed += 1
    cks = select(CheckIn.kind, CheckIn.outcome, CheckIn.review, CheckIn.organisation_id, CheckIn.officer_id).where(
        CheckIn.started_at >= since, CheckIn.started_at < until, CheckIn.outcome != CheckinOutcome.PENDING)
    for kind, outcome, rev, org, officer in session.execute(cks):
        if (r := row(org, officer)) is None:
            continue
        if outcome == CheckinOutcome.MISSED:
            r.misses += 1
        elif outcome.value in ("on_time", "late", "identity_failed", "outside_area", "rejected", "outside_window"):
            setattr(r, outcome.value, getattr(r, outcome.value) + 1)
        if kind == CheckinKind.ROLLCALL:
            r.rollcalls += 1
            if passed(outcome, rev):
                r.rollcalls_passed += 1
    als = select(CheckinAlert.organisation_id, CheckinAlert.officer_id, CheckinAlert.acknowledged_at,
                 CheckinAlert.escalated_at).where(CheckinAlert.created_at >= since, CheckinAlert.created_at < until)
    for org, officer, acked, escalated in session.execute(als):
        if (r := row(org, officer)) is not None:
            r.alerts += 1
            r.alerts_acknowledged += acked is not None
            r.alerts_escalated += escalated is not None
    return [rows[k] for k in sorted(rows)]

