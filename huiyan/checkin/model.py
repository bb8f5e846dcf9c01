"""Check-ins' pure decisions, no I/O: which windows a schedule makes, whether a moment is on time or late,
where a point lies against the allowed area, PIN and code formats, the liveness challenge, who sees which
subject, attendance of an education session, and the figures of a monthly report."""

from __future__ import annotations

import hashlib
import math
import random
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from huiyan.db.models import CheckinOutcome, Role, ScheduleKind

# ---- errors (the API maps `status` to HTTP) ---------------------------------------------------------------


class CheckinError(Exception):
    status = 400


class NotFound(CheckinError):
    status = 404


class Conflict(CheckinError):
    status = 409


class Invalid(CheckinError):
    status = 422


class Forbidden(CheckinError):
    status = 403


class Unauthorized(CheckinError):
    status = 401


class Locked(CheckinError):
    """Too many wrong PINs: this attempt was rejected (and alerted)."""

    status = 423


# ---- outcomes ------------------------------------------------------------------------------------------------

PASSES = frozenset({CheckinOutcome.ON_TIME, CheckinOutcome.LATE})
ALERTED = frozenset({CheckinOutcome.MISSED, CheckinOutcome.IDENTITY_FAILED, CheckinOutcome.OUTSIDE_AREA,
                     CheckinOutcome.REJECTED})
FINAL = frozenset(CheckinOutcome) - {CheckinOutcome.PENDING}

ALERT_TEXT = {
    CheckinOutcome.MISSED: "missed a check-in",
    CheckinOutcome.IDENTITY_FAILED: "failed the identity check (face did not match the enrolled photo)",
    CheckinOutcome.OUTSIDE_AREA: "checked in from outside the allowed area",
    CheckinOutcome.REJECTED: "was rejected after too many wrong PINs",
}


def passed(outcome: CheckinOutcome | str, review: str | None) -> bool:
    """The officer's review, when there is one, is the last word; otherwise on time and late pass."""
    if review is not None:
        return review == "pass"
    return CheckinOutcome(outcome) in PASSES


# ---- windows ---------------------------------------------------------------------------------------------------

TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")


def parse_time(value: str) -> time:
    """"09:00" or "09:00:30" (24 h)."""
    m = TIME_RE.match(value.strip())
    if m is None:
        raise Invalid(f"time {value!r} is not HH:MM or HH:MM:SS (24-hour)")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def format_time(t: time) -> str:
    return t.strftime("%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Window:
    opens_at: datetime  # UTC
    closes_at: datetime
    grace_until: datetime
    remind_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A schedule as `windows_of` needs it."""

    kind: ScheduleKind
    start_time: time | None = None
    end_time: time | None = None
    days: tuple[int, ...] = ()
    per_week: int = 0
    spot_s: int = 1800
    seed: int = 0
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    grace_s: int = 0
    remind_s: int = 900
    timezone: str = "Asia/Shanghai"

    def check(self) -> ScheduleSpec:
        """Raises Invalid with the reason for a schedule that cannot make sense."""
        if self.grace_s < 0 or self.remind_s < 0:
            raise Invalid("grace_s and remind_s must not be negative")
        if self.kind == ScheduleKind.ONCE:
            if self.opens_at is None or self.closes_at is None:
                raise Invalid("a once schedule needs opens_at and closes_at")
            if self.opens_at.tzinfo is None or self.closes_at.tzinfo is None:
                raise Invalid("opens_at and closes_at must carry a time zone (e.g. 2026-12-01T09:00:00+08:00)")
            if not self.opens_at < self.closes_at:
                raise Invalid("opens_at must be before closes_at")
            return self
        if self.start_time is None or self.end_time is None:
            raise Invalid(f"a {self.kind.value} schedule needs start_time and end_time")
        if not self.start_time < self.end_time:
            raise Invalid("start_time must be before end_time (a window does not run past midnight)")
        bad = [d for d in self.days if not 1 <= d <= 7]
        if bad or len(set(self.days)) != len(self.days):
            raise Invalid("days are ISO weekdays 1 (Monday) .. 7 (Sunday), each once")
        if self.kind == ScheduleKind.WEEKLY and not self.days:
            raise Invalid("a weekly schedule needs days (ISO weekdays 1-7)")
        if self.kind == ScheduleKind.SPOT:
            span = _seconds(self.end_time) - _seconds(self.start_time)
            if self.spot_s < 10 or self.spot_s > span:
                raise Invalid(f"spot_s must be 10 s .. the allowed hours ({span} s)")
            days = len(self.days) or 7
            room = days * (span // self.spot_s)
            if not 1 <= self.per_week <= min(room, 50):
                raise Invalid(f"per_week must be 1..{min(room, 50)} (spot checks that fit the allowed hours and days "
                              "without overlapping)")
        return self


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _at(day: date, t: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, t, tzinfo=tz).astimezone(UTC)


def _window(spec: ScheduleSpec, opens: datetime, closes: datetime) -> Window:
    return Window(opens, closes, closes + timedelta(seconds=spec.grace_s), opens - timedelta(seconds=spec.remind_s))


def spot_checks(seed: int, iso_year: int, iso_week: int, per_week: int, days: Sequence[int], start: time, end: time,
                spot_s: int) -> list[tuple[date, int]]:
    """The week's spot checks as (local date, start second of the day), the same for the same inputs: the
    seed stored with the schedule and the ISO week seed the generator. Checks never overlap."""
    rng = random.Random(f"{seed}:{iso_year}-W{iso_week:02d}")
    allowed = sorted(days) if days else list(range(1, 8))
    lo, hi = _seconds(start), _seconds(end) - spot_s
    chosen: list[tuple[int, int]] = []
    for _ in range(per_week):
        for _attempt in range(200):
            day, at = rng.choice(allowed), rng.randint(lo, hi)
            if all(d != day or abs(a - at) >= spot_s for d, a in chosen):
                chosen.append((day, at))
                break
    monday = date.fromisocalendar(iso_year, iso_week, 1)
    return sorted((monday + timedelta(days=d - 1), at) for d, at in chosen)


def windows_of(spec: ScheduleSpec, since: datetime, until: datetime) -> list[Window]:
    """The windows of `spec` still running after `since` (grace included) that open before `until`."""
    if spec.kind == ScheduleKind.ONCE:
        assert spec.opens_at is not None and spec.closes_at is not None
        w = _window(spec, spec.opens_at.astimezone(UTC), spec.closes_at.astimezone(UTC))
        return [w] if w.grace_until > since and w.opens_at < until else []
    tz = ZoneInfo(spec.timezone)
    assert spec.start_time is not None and spec.end_time is not None
    first, last = since.astimezone(tz).date() - timedelta(days=1), until.astimezone(tz).date() + timedelta(days=1)
    out: list[Window] = []
    if spec.kind == ScheduleKind.SPOT:
        weeks: list[tuple[int, int]] = []
        day = first
        while day <= last:
            y, w, _ = day.isocalendar()
            if (y, w) not in weeks:
                weeks.append((y, w))
            day += timedelta(days=1)
        for y, w in weeks:
            for d, at in spot_checks(spec.seed, y, w, spec.per_week, spec.days, spec.start_time, spec.end_time,
                                     spec.spot_s):
                opens = datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC) + timedelta(seconds=at)
                # (wall-clock seconds: on a day with a DST change this is off by the change; China has none)
                out.append(_window(spec, opens, opens + timedelta(seconds=spec.spot_s)))
    else:
        day = first
        while day <= last:
            if spec.kind == ScheduleKind.DAILY or day.isoweekday() in spec.days:
                out.append(_window(spec, _at(day, spec.start_time, tz), _at(day, spec.end_time, tz)))
            day += timedelta(days=1)
    return sorted((w for w in out if w.grace_until > since and w.opens_at < until), key=lambda w: w.opens_at)


def classify(now: datetime, opens_at: datetime, closes_at: datetime, grace_until: datetime) -> CheckinOutcome | None:
    """ON_TIME inside the window, LATE in its grace period, None outside both."""
    if opens_at <= now < closes_at:
        return CheckinOutcome.ON_TIME
    if closes_at <= now < grace_until:
        return CheckinOutcome.LATE
    return None


# ---- the allowed area ------------------------------------------------------------------------------------------

EARTH_RADIUS_M = 6_371_008.8
MAX_POLYGON_POINTS = 500


def check_point(lat: Any, lon: Any, what: str = "point") -> tuple[float, float]:
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError):
        raise Invalid(f"{what}: latitude and longitude must be numbers") from None
    if not (math.isfinite(la) and math.isfinite(lo)):
        raise Invalid(f"{what}: latitude and longitude must be finite numbers")
    if not -90 <= la <= 90:
        raise Invalid(f"{what}: latitude {la} is outside -90..90")
    if not -180 <= lo <= 180:
        raise Invalid(f"{what}: longitude {lo} is outside -180..180")
    return la, lo


def check_area(area: Any) -> dict[str, Any] | None:
    """The area normalised, or Invalid with the reason: {"center": [lat, lon], "radius_m": r > 0} or
    {"polygon": [[lat, lon], ...]} with at least 3 distinct points. None means anywhere."""
    if area is None:
        return None
    if not isinstance(area, dict):
        raise Invalid("area must be an object: {center, radius_m} or {polygon}")
    keys = set(area)
    if keys == {"center", "radius_m"}:
        c = area["center"]
        if not isinstance(c, (list, tuple)) or len(c) != 2:
            raise Invalid("area.center must be [latitude, longitude]")
        lat, lon = check_point(c[0], c[1], "area.center")
        try:
            r = float(area["radius_m"])
        except (TypeError, ValueError):
            raise Invalid("area.radius_m must be a number of metres") from None
        if not math.isfinite(r) or r <= 0:
            raise Invalid("area.radius_m must be greater than 0")
        if r > 1_000_000:
            raise Invalid("area.radius_m must be at most 1,000,000 m")
        return {"center": [lat, lon], "radius_m": r}
    if keys == {"polygon"}:
        pts = area["polygon"]
        if not isinstance(pts, (list, tuple)):
            raise Invalid("area.polygon must be a list of [latitude, longitude] points")
        out = []
        for i, p in enumerate(pts):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise Invalid(f"area.polygon[{i}] must be [latitude, longitude]")
            out.append(list(check_point(p[0], p[1], f"area.polygon[{i}]")))
        if len(out) > 1 and out[0] == out[-1]:
            out = out[:-1]  # a closed ring: the first point repeated at the end
        if len({tuple(p) for p in out}) < 3:
            raise Invalid("area.polygon needs at least 3 distinct points")
        if len(out) > MAX_POLYGON_POINTS:
            raise Invalid(f"area.polygon may have at most {MAX_POLYGON_POINTS} points")
        return {"polygon": out}
    raise Invalid("area must be {\"center\": [lat, lon], \"radius_m\": r} or {\"polygon\": [[lat, lon], ...]}")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _inside_polygon(lat: float, lon: float, poly: Sequence[Sequence[float]]) -> bool:
    """Ray casting on (lon, lat): right for the town-sized areas this is for (not across the 180° line)."""
    inside = False
    n = len(poly)
    for i in range(n):
        (la1, lo1), (la2, lo2) = poly[i], poly[(i + 1) % n]
        if (la1 > lat) != (la2 > lat):
            x = lo1 + (lat - la1) * (lo2 - lo1) / (la2 - la1)
            if lon < x:
                inside = not inside
    return inside


def _to_polygon_distance_m(lat: float, lon: float, poly: Sequence[Sequence[float]]) -> float:
    """Metres from the point to the polygon's nearest edge (local equirectangular projection)."""
    k = math.cos(math.radians(lat))

    def xy(p: Sequence[float]) -> tuple[float, float]:
        return (math.radians(p[1] - lon) * k * EARTH_RADIUS_M, math.radians(p[0] - lat) * EARTH_RADIUS_M)

    best = math.inf
    n = len(poly)
    for i in range(n):
        (ax, ay), (bx, by) = xy(poly[i]), xy(poly[(i + 1) % n])
        dx, dy = bx - ax, by - ay
        t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def locate(area: dict[str, Any] | None, lat: float, lon: float) -> tuple[str, float | None]:
    """("in_area" | "outside_area" | "no_area", metres outside the area or None)."""
    if not area:
        return "no_area", None
    if "center" in area:
        d = haversine_m(area["center"][0], area["center"][1], lat, lon) - float(area["radius_m"])
        return ("in_area", None) if d <= 0 else ("outside_area", round(d, 1))
    poly = area["polygon"]
    if _inside_polygon(lat, lon, poly):
        return "in_area", None
    return "outside_area", round(_to_polygon_distance_m(lat, lon, poly), 1)


# ---- PINs, codes, subject numbers, the challenge ------------------------------------------------------------

PIN_RE = r"^[0-9]{4,8}$"
SUBJECT_NUMBER_RE = r"^[0-9]{4,16}$"
CODE_LENGTH = 8
FIRST_SUBJECT_NUMBER = 100001


def code_digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH))


def next_subject_number(existing: Iterable[str]) -> str:
    nums = [int(n) for n in existing if n.isdigit()]
    return str(max([FIRST_SUBJECT_NUMBER - 1, *nums]) + 1)


def challenge(n: int, rng: random.Random | secrets.SystemRandom | None = None) -> str:
    """Digits to read out on camera / on the phone: random, no digit twice in a row (a doubled digit is
    easy to mishear), so a recording made earlier cannot answer it."""
    rng = rng or secrets.SystemRandom()
    out = [rng.choice("0123456789")]
    while len(out) < n:
        d = rng.choice("0123456789")
        if d != out[-1]:
            out.append(d)
    return "".join(out)


# ---- who sees which subject ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectScope:
    """Admins (and supervisors attached to no organisation) see every subject; a supervisor those of their
    organisation and below; an officer those they supervise."""

    user_id: int
    role: Role
    everything: bool = False
    organisations: frozenset[int] = frozenset()

    def sees(self, organisation_id: int | None, officer_id: int | None) -> bool:
        return (self.everything or officer_id == self.user_id
                or (organisation_id is not None and organisation_id in self.organisations))

    @property
    def manages(self) -> bool:
        """May give a subject to another officer, and create subjects for others."""
        return self.role in (Role.ADMIN, Role.SUPERVISOR)


# ---- education attendance ------------------------------------------------------------------------------------


def minutes_present(stretches: Iterable[tuple[datetime, datetime | None]], starts: datetime, ends: datetime,
                    now: datetime) -> float:
    """Minutes within [starts, ends] covered by the (joined, left) stretches; an open stretch runs until now.
    Overlapping stretches (two devices at once) count once."""
    cut: list[tuple[datetime, datetime]] = []
    for joined, left in stretches:
        a, b = max(joined, starts), min(left or now, ends)
        if b > a:
            cut.append((a, b))
    cut.sort()
    total = 0.0
    cur: tuple[datetime, datetime] | None = None
    for a, b in cut:
        if cur is None or a > cur[1]:
            if cur is not None:
                total += (cur[1] - cur[0]).total_seconds()
            cur = (a, b)
        else:
            cur = (cur[0], max(cur[1], b))
    if cur is not None:
        total += (cur[1] - cur[0]).total_seconds()
    return round(total / 60, 2)


def is_present(minutes: float, starts: datetime, ends: datetime, share: float) -> bool:
    return minutes * 60 >= share * (ends - starts).total_seconds() - 1e-6


# ---- reports --------------------------------------------------------------------------------------------------

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of "YYYY-MM" in the province's zone, as UTC."""
    m = MONTH_RE.match(month)
    if m is None:
        raise Invalid(f"month {month!r} is not YYYY-MM")
    y, mo = int(m.group(1)), int(m.group(2))
    tz = ZoneInfo(timezone)
    start = datetime(y, mo, 1, tzinfo=tz)
    end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("organisation_id", "机构ID organisation id"),
    ("organisation", "司法所 office"),
    ("month", "月份 month"),
    ("subjects", "矫正对象 subjects"),
    ("windows_due", "应点验 windows due"),
    ("windows_passed", "已完成 passed"),
    ("windows_failed", "未通过 failed"),
    ("windows_missed", "漏点验 missed"),
    ("completion_rate", "完成率 completion rate"),
    ("rollcalls", "点名 roll-calls"),
    ("rollcalls_passed", "点名通过 roll-calls passed"),
    ("misses", "缺失合计 misses"),
    ("on_time", "按时 on time"),
    ("late", "迟到 late"),
    ("identity_failed", "身份未通过 identity failed"),
    ("outside_area", "越界 outside area"),
    ("rejected", "密码拒绝 rejected"),
    ("outside_window", "时段外尝试 outside window"),
    ("alerts", "告警 alerts"),
    ("alerts_acknowledged", "已处理 acknowledged"),
    ("alerts_escalated", "已上报 escalated"),
)


@dataclass
class ReportRow:
    organisation_id: int
    organisation: str
    month: str
    subjects: int = 0
    windows_due: int = 0
    windows_passed: int = 0
    windows_failed: int = 0
    windows_missed: int = 0
    rollcalls: int = 0
    rollcalls_passed: int = 0
    misses: int = 0
    on_time: int = 0
    late: int = 0
    identity_failed: int = 0
    outside_area: int = 0
    rejected: int = 0
    outside_window: int = 0
    alerts: int = 0
    alerts_acknowledged: int = 0
    alerts_escalated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completion_rate(self) -> float | None:
        """Share of the windows due that were passed; None when none was due."""
        return round(self.windows_passed / self.windows_due, 4) if self.windows_due else None

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k, _ in REPORT_COLUMNS}
