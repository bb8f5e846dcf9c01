"""The hotline report: figures equal hand-built call rows (service-level boundary, short abandons, empty days,
local days in Asia/Shanghai), and the API's dates, scoping and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from huiyan.reports.hotline import CallRow, aggregate, csv_bytes, day_bounds

if TYPE_CHECKING:
    from conftest import ApiHarness

D = date(2026, 3, 10)
# 00:30 on 10 March in Shanghai is 16:30 on 9 March in UTC: a call then belongs to the 10th.
T0 = datetime(2026, 3, 9, 16, 30, tzinfo=UTC)


def call(outcome: str, wait: float | None, *, at: datetime = T0, org: int | None = 1, sl: float = 20,
         answered: bool | None = None) -> CallRow:
    ans = outcome in ("answered", "completed", "transferred") if answered is None else answered
    end = at + timedelta(seconds=(wait or 0) + (60 if ans else 0))
    return CallRow(enqueued_at=at, answered_at=at + timedelta(seconds=wait or 0) if ans else None, ended_at=end,
                   outcome=outcome, wait_s=None, queue_id=1, organisation_id=org, sl_threshold_s=sl)


def test_figures_equal_hand_built_rows_with_the_sl_boundary_inclusive() -> None:
    rows = [
        call("completed", 20.0),  # exactly at the threshold: within
        call("completed", 20.5),  # just past: answered, not within
        call("completed", 3.0),
        call("abandoned", 30.0),  # after the threshold: counts against the service level
        call("abandoned", 10.0),  # before the threshold: abandoned, but not in the service level
        call("timeout", 120.0),
    ]
    rep = aggregate(rows, D, D, short_abandon_s=5)
    day = rep.days[D].view()
    assert day["offered"] == 6
    assert day["answered"] == 3
    assert day["answered_within_sl"] == 2
    assert day["abandoned"] == 2 and day["short_abandoned"] == 0 and day["other"] == 1
    assert day["service_level"] == round(2 / (3 + 1), 4)  # answered within / (answered + abandoned after)
    assert day["abandon_rate"] == round(2 / 6, 4)
    assert day["avg_answer_wait_s"] == round((20 + 20.5 + 3) / 3, 1)
    assert day["avg_wait_s"] == round((20 + 20.5 + 3 + 30 + 10 + 120) / 6, 1)
    assert rep.total.view() == day


def test_short_abandons_are_counted_apart_and_left_out_of_the_rates() -> None:
    rows = [call("abandoned", 4.9), call("abandoned", 5.0), call("completed", 1.0)]
    rep = aggregate(rows, D, D, short_abandon_s=5)
    v = rep.days[D].view()
    assert (v["short_abandoned"], v["abandoned"], v["offered"]) == (1, 1, 2)
    assert v["abandon_rate"] == 0.5
    # With no short-abandon allowance both hang-ups count.
    v0 = aggregate(rows, D, D, short_abandon_s=0).days[D].view()
    assert (v0["short_abandoned"], v0["abandoned"], v0["offered"]) == (0, 2, 3)


def test_days_are_local_days_and_days_without_calls_are_zeros() -> None:
    rows = [
        call("completed", 5, at=T0),  # 10 March 00:30 local
        call("completed", 5, at=T0 - timedelta(hours=1)),  # 9 March 23:30 local: the day before
        call("abandoned", 40, at=T0 + timedelta(days=2)),  # 12 March
        call("waiting", None, at=T0),  # still waiting: not counted
    ]
    rep = aggregate(rows, date(2026, 3, 9), date(2026, 3, 13))
    view = rep.view()
    assert [d["date"] for d in view["days"]] == ["2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13"]
    assert [d["offered"] for d in view["days"]] == [1, 1, 0, 1, 0]
    empty = view["days"][2]
    assert empty["answered"] == 0 and empty["service_level"] is None and empty["abandon_rate"] is None
    lo, hi = day_bounds(date(2026, 3, 10), date(2026, 3, 10))
    assert lo == datetime(2026, 3, 9, 16, tzinfo=UTC) and hi == datetime(2026, 3, 10, 16, tzinfo=UTC)


def test_per_organisation_totals_and_the_csv() -> None:
    rows = [call("completed", 5, org=1), call("abandoned", 40, org=2), call("completed", 25, org=2),
            call("completed", 1, org=None)]
    view = aggregate(rows, D, D).view({1: "长春市司法局", 2: "=白山"})
    orgs = {o["organisation_id"]: o for o in view["organisations"]}
    assert orgs[1]["offered"] == 1 and orgs[1]["service_level"] == 1.0
    assert orgs[2]["offered"] == 2 and orgs[2]["answered_within_sl"] == 0 and orgs[2]["abandon_rate"] == 0.5
    assert orgs[None]["offered"] == 1 and orgs[None]["organisation"] == ""
    text = csv_bytes(view).decode("utf-8")
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines[1][:4] == ["2026-03-10", "全部 all", "4", "3"]
    assert ["2026-03-10..2026-03-10", "长春市司法局", "1", "1"] == lines[2][:4]
    assert lines[3][1] == "'=白山"  # no formula injection
    assert lines[-1][1] == "合计 total" and lines[-1][2] == "4"


def test_a_range_backwards_or_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        aggregate([], D, D - timedelta(days=1))
    with pytest.raises(ValueError, match="at most 366"):
        aggregate([], D, D + timedelta(days=400))


# ---- the API ---------------------------------------------------------------------------------------


def _seed(api: ApiHarness) -> tuple[int, int, int]:
    """Province > city; a queue in each; two calls in the city's queue, one in the province's."""
    from huiyan.db import hotline as db
    from huiyan.db.models import User

    province = api.org("220000", "province")
    city = api.org("220600", "city", parent_id=province)
    with api.sessions() as s:
        qp = db.create_queue(s, name="省厅咨询", organisation_id=province, sl_threshold_s=20)
        qc = db.create_queue(s, name="白山咨询", organisation_id=city, sl_threshold_s=10)
        s.flush()
        for cid, qid, wait, outcome in (("c1", qc.id, 8, "completed"), ("c2", qc.id, 15, "completed"),
                                        ("p1", qp.id, 30, "abandoned")):
            ans = outcome == "completed"
            db.upsert_hotline_call(s, cid, node="n1", queue_id=qid, enqueued_at=T0,
                                   answered_at=T0 + timedelta(seconds=wait) if ans else None,
                                   ended_at=T0 + timedelta(seconds=wait + 30), outcome=outcome,
                                   wait_s=float(wait) if ans else None)
        s.get(User, api.user_ids["supervisor"]).organisation_id = city
        s.commit()
    return province, city, qc.id


def test_api_report_scoped_to_the_supervisors_subtree(api: ApiHarness) -> None:
    province, city, _ = _seed(api)
    q = {"from": "2026-03-10", "to": "2026-03-11"}
    admin = api.client.get("/api/reports/hotline", params=q, headers=api.auth("admin")).json()
    assert admin["timezone"] == "Asia/Shanghai"
    assert [d["offered"] for d in admin["days"]] == [3, 0]
    assert admin["total"]["answered"] == 2 and admin["total"]["abandoned"] == 1
    sup = api.client.get("/api/reports/hotline", params=q, headers=api.auth("supervisor"))
    assert sup.status_code == 200, sup.text
    body = sup.json()
    assert body["total"]["offered"] == 2 and body["total"]["answered_within_sl"] == 1  # 8 s ≤ 10 < 15 s
    assert [o["organisation_id"] for o in body["organisations"]] == [city]
    denied = api.client.get("/api/reports/hotline", params={**q, "org_id": province}, headers=api.auth("supervisor"))
    assert denied.status_code == 403 and "not yours" in denied.json()["detail"]
    only_city = api.client.get("/api/reports/hotline", params={**q, "org_id": city}, headers=api.auth("admin")).json()
    assert only_city["total"]["offered"] == 2
    assert api.client.get("/api/reports/hotline", params={**q, "org_id": 9999},
                          headers=api.auth("admin")).status_code == 404
    assert api.client.get("/api/reports/hotline", params=q, headers=api.auth("agent")).status_code == 403


def test_api_bad_dates_are_422_with_a_reason(api: ApiHarness) -> None:
    h = api.auth("admin")
    for params, words in (({"from": "2026-13-01"}, "date"), ({"from": "yesterday"}, "date"),
                          ({"from": "2026-03-10", "to": "2026-03-01"}, "before"),
                          ({"from": "2024-01-01", "to": "2026-01-01"}, "at most"),
                          ({"short_abandon_s": "-1"}, "greater")):
        r = api.client.get("/api/reports/hotline", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert words in str(r.json()["detail"]), r.text


def test_api_csv_export(api: ApiHarness) -> None:
    _seed(api)
    r = api.client.get("/api/reports/hotline.csv", params={"from": "2026-03-10", "to": "2026-03-10"},
                       headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="hotline-report-2026-03-10-2026-03-10.csv"' in r.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8").lstrip("\ufeff"))))
    assert lines[-1][1:4] == ["合计 total", "2", "2"]
