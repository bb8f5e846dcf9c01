"""The hotline report (热线统计): per local day and per organisation — offered, answered, abandoned, service
level, abandon rate, average wait — aggregated from hotline call rows. Pure: rows in, figures out.

Definitions (the same as the supervisor wall's live figures, `Distributor.stats`, so the two agree):

- A call counts on the **local day** (the province's time zone, Asia/Shanghai) it entered a queue
  (`enqueued_at`). Calls that never reached a queue (hung up in the voice menu) and calls still waiting or
  ringing are not counted.
- **offered**: calls that entered a queue and ended. **answered**: an agent answered (`answered_at` set).
  **answered within SL**: answered after waiting at most the queue's `sl_threshold_s` (the boundary counts
  as within).
- **short abandons**: callers who hung up within `short_abandon_s` of entering the queue (misdials, a
  change of mind). They are counted apart and left out of `offered`, `abandoned` and the abandon rate.
  **abandoned**: the other hang-ups while waiting. **other**: offered calls neither answered nor
  abandoned (timed out, overflowed, failed).
- **service level** = answered within SL / (answered + abandoned after the threshold); a caller who gave
  up before the threshold does not count either way. None when nothing counts.
- **abandon rate** = abandoned / offered. **average wait**: over answered calls (speed of answer) and over
  every offered call (answered or not, until answer or hang-up).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

PROVINCE_TZ = "Asia/Shanghai"
MAX_DAYS = 366
DEFAULT_SHORT_ABANDON_S = 5.0
ANSWERED = "answered"
ABANDONED = "abandoned"
IN_PROGRESS = frozenset({"waiting", "ringing"})
NO_ORG = 0  # the per-organisation key of queues attached to no organisation


@dataclass(frozen=True, slots=True)
class CallRow:
    """What the report needs of one hotline call (a `HotlineCall` row plus its queue's organisation and
    service-level threshold)."""

    enqueued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str
    wait_s: float | None
    queue_id: int | None
    organisation_id: int | None
    sl_threshold_s: float

    def wait(self) -> float | None:
        """Seconds in the queue: until answered, or until the caller hung up / the call left the queue."""
        if self.wait_s is not None:
            return self.wait_s
        if self.enqueued_at is None:
            return None
        end = self.answered_at or self.ended_at
        return (end - self.enqueued_at).total_seconds() if end is not None else None


@dataclass(slots=True)
class Figures:
    """The counts of one bucket (a day, an organisation, the whole range) and the rates made from them."""

    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    abandoned_after: int = 0  # abandoned after the SL threshold: in the service level's denominator
    short_abandoned: int = 0
    other: int = 0
    answer_wait_sum: float = 0.0
    wait_sum: float = 0.0
    wait_n: int = 0

    def add(self, call: CallRow, short_abandon_s: float) -> None:
        wait = call.wait()
        if call.outcome == ABANDONED and call.answered_at is None:
            if wait is not None and wait < short_abandon_s:
                self.short_abandoned += 1
                return
            self.offered += 1
            self.abandoned += 1
            if wait is not None and wait > call.sl_threshold_s:
                self.abandoned_after += 1
        elif call.answered_at is not None:
            self.offered += 1
            self.answered += 1
            w = wait or 0.0
            self.answer_wait_sum += w
            if w <= call.sl_threshold_s:
                self.answered_within += 1
        else:
            self.offered += 1
            self.other += 1
        if wait is not None:
            self.wait_sum += wait
            self.wait_n += 1

    @property
    def service_level(self) -> float | None:
        denom = self.answered + self.abandoned_after
        return self.answered_within / denom if denom else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def avg_answer_wait_s(self) -> float | None:
        return self.answer_wait_sum / self.answered if self.answered else None

    @property
    def avg_wait_s(self) -> float | None:
        return self.wait_sum / self.wait_n if self.wait_n else None

    def view(self) -> dict[str, Any]:
        r = lambda v, n=4: None if v is None else round(v, n)  # noqa: E731
        return {
            "offered": self.offered, "answered": self.answered, "answered_within_sl": self.answered_within,
            "abandoned": self.abandoned, "short_abandoned": self.short_abandoned, "other": self.other,
            "service_level": r(self.service_level), "abandon_rate": r(self.abandon_rate),
            "avg_wait_s": r(self.avg_wait_s, 1), "avg_answer_wait_s": r(self.avg_answer_wait_s, 1),
        }  # fmt: skip


@dataclass
class HotlineReport:
    start: date
    end: date  # inclusive
    timezone: str
    short_abandon_s: float
    days: dict[date, Figures]
    organisations: dict[int, Figures]
    total: Figures = field(default_factory=Figures)
    sl_target: float | None = None  # the queues' target (their mean, when they differ)

    def view(self, org_names: dict[int, str] | None = None) -> dict[str, Any]:
        names = org_names or {}
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(), "timezone": self.timezone,
            "short_abandon_s": self.short_abandon_s, "sl_target": self.sl_target,
            "days": [{"date": d.isoformat(), **f.view()} for d, f in sorted(self.days.items())],
            "organisations": [{"organisation_id": oid or None, "organisation": names.get(oid, "") if oid else "",
                               **f.view()} for oid, f in sorted(self.organisations.items(), key=lambda kv: (kv[0] == NO_ORG, kv[0]))],
            "total": self.total.view(),
        }  # fmt: skip


def day_bounds(start: date, end: date, timezone: str = PROVINCE_TZ) -> tuple[datetime, datetime]:
    """[local midnight starting `start`, local midnight after `end`) as UTC instants."""
    tz = ZoneInfo(timezone)
    lo = datetime.combine(start, time(0), tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tz)
    return lo.astimezone(UTC), hi.astimezone(UTC)


def check_range(start: date, end: date) -> None:
    """ValueError with the reason for a range the report will not make."""
    if end < start:
        raise ValueError(f"'to' ({end}) is before 'from' ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at a time; asked for {(end - start).days + 1}")


def aggregate(calls: Iterable[CallRow], start: date, end: date, *, timezone: str = PROVINCE_TZ,
              short_abandon_s: float = DEFAULT_SHORT_ABANDON_S, sl_targets: Sequence[float] = ()) -> HotlineReport:
    """Every day of [start, end] (zeros for days with no call) and every organisation with a call."""
    check_range(start, end)
    tz = ZoneInfo(timezone)
    days = {start + timedelta(days=i): Figures() for i in range((end - start).days + 1)}
    orgs: dict[int, Figures] = {}
    total = Figures()
    for c in calls:
        if c.enqueued_at is None or c.outcome in IN_PROGRESS:
            continue
        day = c.enqueued_at.astimezone(tz).date()
        if day not in days:
            continue
        for bucket in (days[day], orgs.setdefault(c.organisation_id or NO_ORG, Figures()), total):
            bucket.add(c, short_abandon_s)
    target = sum(sl_targets) / len(sl_targets) if sl_targets else None
    return HotlineReport(start, end, timezone, short_abandon_s, days, orgs, total, target)


CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("date", "日期 date"),
    ("organisation", "机构 organisation"),
    ("offered", "呼入 offered"),
    ("answered", "接通 answered"),
    ("answered_within_sl", "服务水平内接通 answered within SL"),
    ("abandoned", "放弃 abandoned"),
    ("short_abandoned", "短时放弃 short abandons"),
    ("other", "其他未接 other"),
    ("service_level", "服务水平 service level"),
    ("abandon_rate", "放弃率 abandon rate"),
    ("avg_wait_s", "平均等待(秒) avg wait s"),
    ("avg_answer_wait_s", "平均应答(秒) avg answer s"),
)
BOM = "\ufeff"  # Excel (zh-CN) reads UTF-8 without it as GBK


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v  # CSV injection: Excel would run it as a formula
    return v


def csv_bytes(view: dict[str, Any]) -> bytes:
    """The report as CSV (UTF-8 with BOM): one line per day, then one per organisation, then the total."""
    buf = io.StringIO()
    buf.write(BOM)
    w = csv.writer(buf)
    w.writerow([title for _, title in CSV_COLUMNS])
    lines = [{**d, "organisation": "全部 all"} for d in view["days"]]
    lines += [{**o, "date": f"{view['from']}..{view['to']}",
               "organisation": o["organisation"] or "未归属 unassigned"} for o in view["organisations"]]
    lines.append({**view["total"], "date": f"{view['from']}..{view['to']}", "organisation": "合计 total"})
    for line in lines:
        w.writerow([_cell(line.get(k)) for k, _ in CSV_COLUMNS])
    return buf.getvalue().encode("utf-8")
