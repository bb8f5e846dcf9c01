"""Check-ins' pure decisions: windows from schedules (in Asia/Shanghai), seeded spot checks, on time / late,
the allowed area, attendance minutes, month bounds, the challenge."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from huiyan.checkin.model import (
    Invalid,
    ScheduleSpec,
    challenge,
    check_area,
    check_point,
    classify,
    haversine_m,
    is_present,
    locate,
    minutes_present,
    month_bounds,
    next_subject_number,
    parse_time,
    passed,
    spot_checks,
    windows_of,
)
from huiyan.db.models import CheckinOutcome, ScheduleKind

CST = timezone(timedelta(hours=8))


def cst(*a: int) -> datetime:
    return datetime(*a, tzinfo=CST)


def test_daily_window_is_in_the_provinces_time_zone() -> None:
    spec = ScheduleSpec(ScheduleKind.DAILY, time(9), time(11, 30), grace_s=600, remind_s=900).check()
    ws = windows_of(spec, cst(2026, 12, 1, 0, 0), cst(2026, 12, 3, 0, 0))
    assert [w.opens_at for w in ws] == [cst(2026, 12, 1, 9), cst(2026, 12, 2, 9)]
    w = ws[0]
    assert w.opens_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Beijing is 01:00 UTC
    assert w.closes_at == cst(2026, 12, 1, 11, 30)
    assert w.grace_until == cst(2026, 12, 1, 11, 40)
    assert w.remind_at == cst(2026, 12, 1, 8, 45)


def test_windows_still_in_their_grace_count_and_those_after_until_do_not() -> None:
    spec = ScheduleSpec(ScheduleKind.DAILY, time(9), time(11, 30), grace_s=600).check()
    ws = windows_of(spec, cst(2026, 12, 1, 11, 35), cst(2026, 12, 1, 23, 0))
    assert [w.opens_at for w in ws] == [cst(2026, 12, 1, 9)]
    assert windows_of(spec, cst(2026, 12, 1, 11, 41), cst(2026, 12, 2, 8, 59)) == []


def test_weekly_on_named_days_only() -> None:
    spec = ScheduleSpec(ScheduleKind.WEEKLY, time(14), time(15), days=(1, 4)).check()  # Monday, Thursday
    ws = windows_of(spec, cst(2026, 11, 30), cst(2026, 12, 14))  # Mon 30 Nov .. Sun 13 Dec
    assert [w.opens_at.astimezone(CST).date().isoweekday() for w in ws] == [1, 4, 1, 4]


def test_spot_checks_are_reproducible_from_the_seed_and_stay_in_hours() -> None:
    args = dict(per_week=5, days=(1, 2, 3, 4, 5), start=time(8), end=time(20), spot_s=1800)
    a = spot_checks(seed=42, iso_year=2026, iso_week=49, **args)  # type: ignore[arg-type]
    b = spot_checks(seed=42, iso_year=2026, iso_week=49, **args)  # type: ignore[arg-type]
    c = spot_checks(seed=43, iso_year=2026, iso_week=49, **args)  # type: ignore[arg-type]
    nxt = spot_checks(seed=42, iso_year=2026, iso_week=50, **args)  # type: ignore[arg-type]
    assert a == b and a != c and a != nxt
    assert len(a) == 5
    for day, at in a:
        assert day.isoweekday() <= 5
        assert 8 * 3600 <= at <= 20 * 3600 - 1800
    same_day = sorted(at for d, at in a if d == a[0][0])
    assert all(y - x >= 1800 for x, y in zip(same_day, same_day[1:]))  # never overlapping
    spec = ScheduleSpec(ScheduleKind.SPOT, time(8), time(20), days=(1, 2, 3, 4, 5), per_week=5, spot_s=1800,
                        seed=42, remind_s=0).check()
    ws = windows_of(spec, cst(2026, 11, 30), cst(2026, 12, 7))  # ISO week 49 of 2026
    assert len(ws) == 5
    assert all(w.closes_at - w.opens_at == timedelta(seconds=1800) and w.remind_at == w.opens_at for w in ws)
    assert windows_of(spec, cst(2026, 11, 30), cst(2026, 12, 7)) == ws


def test_once_and_short_windows_with_seconds() -> None:
    spec = ScheduleSpec(ScheduleKind.ONCE, opens_at=cst(2026, 12, 1, 10), closes_at=cst(2026, 12, 1, 10, 0, 20),
                        grace_s=10, remind_s=5).check()
    [w] = windows_of(spec, cst(2026, 12, 1), cst(2026, 12, 2))
    assert (w.closes_at - w.opens_at, w.grace_until - w.closes_at) == (timedelta(seconds=20), timedelta(seconds=10))
    assert parse_time("09:00:30") == time(9, 0, 30)


@pytest.mark.parametrize(("spec", "why"), [
    (ScheduleSpec(ScheduleKind.DAILY, time(12), time(9)), "before end_time"),
    (ScheduleSpec(ScheduleKind.DAILY), "needs start_time"),
    (ScheduleSpec(ScheduleKind.WEEKLY, time(9), time(10)), "needs days"),
    (ScheduleSpec(ScheduleKind.WEEKLY, time(9), time(10), days=(0, 8)), "ISO weekdays"),
    (ScheduleSpec(ScheduleKind.SPOT, time(9), time(10), per_week=30, spot_s=1800), "per_week"),
    (ScheduleSpec(ScheduleKind.SPOT, time(9), time(10), per_week=1, spot_s=7200), "spot_s"),
    (ScheduleSpec(ScheduleKind.ONCE), "opens_at and closes_at"),
    (ScheduleSpec(ScheduleKind.ONCE, opens_at=cst(2026, 1, 2), closes_at=cst(2026, 1, 1)), "before closes_at"),
])
def test_schedules_that_make_no_sense_are_refused_with_the_reason(spec: ScheduleSpec, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        spec.check()
    with pytest.raises(Invalid, match="HH:MM"):
        parse_time("25:00")


def test_on_time_late_and_outside() -> None:
    o, c, g = cst(2026, 12, 1, 9), cst(2026, 12, 1, 11, 30), cst(2026, 12, 1, 12)
    assert classify(cst(2026, 12, 1, 8, 59), o, c, g) is None
    assert classify(o, o, c, g) == CheckinOutcome.ON_TIME
    assert classify(c, o, c, g) == CheckinOutcome.LATE
    assert classify(g, o, c, g) is None
    assert passed(CheckinOutcome.LATE, None) and not passed(CheckinOutcome.OUTSIDE_AREA, None)
    assert passed(CheckinOutcome.IDENTITY_FAILED, "pass") and not passed(CheckinOutcome.ON_TIME, "fail")


def test_area_validation_says_what_is_wrong() -> None:
    assert check_area(None) is None
    assert check_area({"center": [43.8, 125.3], "radius_m": 500}) == {"center": [43.8, 125.3], "radius_m": 500.0}
    square = [[43.0, 125.0], [43.0, 125.1], [43.1, 125.1], [43.1, 125.0], [43.0, 125.0]]  # closed ring
    assert check_area({"polygon": square}) == {"polygon": square[:4]}
    for bad, why in [({"center": [91, 0], "radius_m": 1}, "latitude 91.0 is outside -90..90"),
                     ({"center": [0, 181], "radius_m": 1}, "longitude 181.0 is outside -180..180"),
                     ({"center": [0, 0], "radius_m": 0}, "greater than 0"),
                     ({"center": [0, 0], "radius_m": -5}, "greater than 0"),
                     ({"polygon": [[0, 0], [0, 1]]}, "at least 3 distinct points"),
                     ({"polygon": [[0, 0], [0, 1], [0, 0]]}, "at least 3 distinct points"),
                     ({"polygon": [[0, 0], [0, "x"], [1, 1]]}, "must be numbers"),
                     ({"center": [0, 0]}, "radius_m"), ("nowhere", "must be an object")]:
        with pytest.raises(Invalid, match=why):
            check_area(bad)
    with pytest.raises(Invalid, match="finite"):
        check_point(float("nan"), 0)


def test_where_a_point_lies() -> None:
    circle = {"center": [43.8171, 125.3235], "radius_m": 500.0}
    assert locate(circle, 43.8171, 125.3240) == ("in_area", None)
    where, d = locate(circle, 43.8271, 125.3235)  # ~1.11 km north
    assert where == "outside_area" and d is not None and 600 < d < 620
    square = {"polygon": [[43.0, 125.0], [43.0, 125.1], [43.1, 125.1], [43.1, 125.0]]}
    assert locate(square, 43.05, 125.05) == ("in_area", None)
    where, d = locate(square, 43.05, 125.2)
    assert where == "outside_area" and d is not None
    assert abs(d - haversine_m(43.05, 125.1, 43.05, 125.2)) < 50  # to the east edge
    assert locate(None, 0, 0) == ("no_area", None)


def test_attendance_minutes_merge_overlaps_and_clip_to_the_session() -> None:
    s, e = cst(2026, 12, 1, 14), cst(2026, 12, 1, 15)
    stretches = [(cst(2026, 12, 1, 13, 50), cst(2026, 12, 1, 14, 20)),  # joined early: counts from 14:00
                 (cst(2026, 12, 1, 14, 10), cst(2026, 12, 1, 14, 30)),  # a second device, overlapping
                 (cst(2026, 12, 1, 14, 40), None)]  # still in
    assert minutes_present(stretches, s, e, now=cst(2026, 12, 1, 14, 50)) == 40.0
    assert minutes_present(stretches, s, e, now=cst(2026, 12, 1, 16)) == 50.0
    assert is_present(48.0, s, e, 0.8) and not is_present(47.9, s, e, 0.8)


def test_month_bounds_in_beijing_time() -> None:
    a, b = month_bounds("2026-12", "Asia/Shanghai")
    assert a == datetime(2026, 11, 30, 16, tzinfo=UTC) and b == datetime(2026, 12, 31, 16, tzinfo=UTC)
    with pytest.raises(Invalid, match="YYYY-MM"):
        month_bounds("2026-13", "Asia/Shanghai")


def test_challenge_digits_and_subject_numbers() -> None:
    rng = random.Random(1)
    for _ in range(200):
        c = challenge(4, rng)
        assert len(c) == 4 and c.isdigit() and all(x != y for x, y in zip(c, c[1:]))
    assert next_subject_number([]) == "100001"
    assert next_subject_number(["100001", "100007", "abc"]) == "100008"
