"""The admin console's reports and recordings pages in real Chromium against the real controller.

Reports: hotline calls seeded as rows (three local days in Asia/Shanghai, two organisations); the SVG charts
show one bar per day with the figures the rows make, the service-level line with its target, per-organisation
bars; the English switch relabels them; the CSV export downloads the same totals.
Recordings: a hotline call's WAV finalised to M4A by the real pipeline (ffmpeg); the page finds it, plays it
(the media element gets data), downloads it (bytes hash to the chain's SHA-256), the share link serves a
Range (206), the in-page verify agrees, and the admin sees the access audit."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.e2e.conftest import DESKTOP, PHONE, Pages, wait_until
from tests.e2e.test_hotline_web import both_sizes
from tests.integration.conftest import Running
from tests.integration.test_recordings import tone_wav

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ADMIN = ("liu.admin", "admin-password-12348")


def _admin(huiyan: Running) -> None:
    from huiyan.db import store
    from huiyan.db.models import User

    with huiyan.ctl.session_factory() as s:
        if s.scalar(select(User).where(User.username == ADMIN[0])) is None:
            store.create_user(s, username=ADMIN[0], password=ADMIN[1], role="admin", display_name="刘管理员")
            s.commit()


def _local(day: int, hour: int = 10) -> datetime:
    """`hour`:00 on 2026-03-`day` in Shanghai, as UTC."""
    return datetime(2026, 3, day, hour, tzinfo=UTC) - timedelta(hours=8)


def _seed_calls(huiyan: Running) -> tuple[str, str]:
    """吉林省司法厅 > 白山市司法局, a queue each; calls on 10 and 12 March (none on the 11th)."""
    from huiyan.db import hotline as db
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        prov = store.create_organisation(s, name="吉林省司法厅(报表)", code="229901", level="province")
        s.flush()
        city = store.create_organisation(s, name="白山市司法局(报表)", code="229902", level="city", parent_id=prov.id)
        s.flush()
        qp = db.create_queue(s, name="报表测试省厅", organisation_id=prov.id, sl_threshold_s=20, sl_target=0.8)
        qc = db.create_queue(s, name="报表测试白山", organisation_id=city.id, sl_threshold_s=10, sl_target=0.8)
        s.flush()
        calls = [  # id, queue, local day, wait s, answered
            ("rpt-1", qp.id, 10, 5, True), ("rpt-2", qp.id, 10, 25, True), ("rpt-3", qp.id, 10, 40, False),
            ("rpt-4", qc.id, 12, 8, True), ("rpt-5", qc.id, 12, 30, False),
            ("rpt-6", qc.id, 12, 2, False),  # a short abandon: not in the figures
        ]
        for cid, qid, day, wait, answered in calls:
            at = _local(day)
            db.upsert_hotline_call(s, cid, node="pbx1", queue_id=qid, enqueued_at=at,
                                   answered_at=at + timedelta(seconds=wait) if answered else None,
                                   ended_at=at + timedelta(seconds=wait + (90 if answered else 0)),
                                   outcome="completed" if answered else "abandoned",
                                   wait_s=float(wait) if answered else None)
        s.commit()
        return prov.name, city.name


def _seed_checkins(huiyan: Running, city_name: str) -> str:
    """An office under the city with one subject; March 2026: four windows due (three passed, one missed) and
    the check-ins that settled them, the miss alerted."""
    from huiyan.checkin import store as ck
    from huiyan.db import store
    from huiyan.db.models import CheckinOutcome, CheckinKind, CheckinWindow, Organisation, ScheduleKind, WindowResult
    from huiyan.db.numbering import ExtensionPlan

    with huiyan.ctl.session_factory() as s:
        city = s.scalar(select(Organisation).where(Organisation.name == city_name))
        office = store.create_organisation(s, name="抚松县司法所(报表)", code="229903", level="office",
                                           parent_id=city.id)
        officer = store.create_user(s, username="sun.officer", password="officer-password-1", role="officer",
                                    organisation_id=office.id)
        s.flush()
        subject = ck.create_subject(s, name="钱七", officer_id=officer.id, organisation_id=office.id,
                                    supervision_start=datetime(2026, 1, 1).date(),
                                    supervision_end=datetime(2027, 1, 1).date(), pin="246810",
                                    plan=ExtensionPlan.from_pattern(huiyan.settings.internal_extension_pattern))
        sched = ck.add_schedule(s, subject, kind=ScheduleKind.ONCE, timezone="Asia/Shanghai",
                                opens_at=_local(5, 9), closes_at=_local(5, 11), at=_local(1))
        for day, result in ((5, WindowResult.PASSED), (6, WindowResult.PASSED), (7, WindowResult.PASSED),
                            (8, WindowResult.MISSED)):
            s.add(CheckinWindow(subject_id=subject.id, schedule_id=sched.id, kind=ScheduleKind.ONCE,
                                opens_at=_local(day, 9), closes_at=_local(day, 11), grace_until=_local(day, 11),
                                remind_at=_local(day, 8), result=result))
            row = ck.start_checkin(s, subject, CheckinKind.BROWSER if result == WindowResult.PASSED
                                   else CheckinKind.WINDOW, _local(day, 10))
            ck.finish(s, row, CheckinOutcome.ON_TIME if result == WindowResult.PASSED else CheckinOutcome.MISSED,
                      _local(day, 10), escalate_after=timedelta(hours=1))
        s.commit()
        return office.name


def _sign_in(page: Any) -> None:
    page.wait_for_selector("#login-form")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#board:not([hidden])")


def _marks(page: Any, chart: str, series: str, tag: str = "rect.col") -> list[tuple[str, float, str]]:
    return page.eval_on_selector_all(
        f"#{chart} {tag}[data-series='{series}']",
        "els => els.map(e => [e.dataset.label, Number(e.dataset.value), e.querySelector('title').textContent])")


def test_reports_page_charts_the_seeded_calls_and_switches_to_english(pages: Pages, huiyan: Running,
                                                                      tmp_path: Path) -> None:
    _admin(huiyan)
    prov, city = _seed_calls(huiyan)
    office = _seed_checkins(huiyan, city)
    page = pages.open(f"{huiyan.api}/reports?from=2026-03-10&to=2026-03-12&month=2026-03",
                      viewport=DESKTOP, name="reports")
    _sign_in(page)
    page.wait_for_selector("#chart-calls rect.col")

    # Calls per day, stacked: one bar per series per day, the 11th empty, the short abandon left out.
    answered = _marks(page, "chart-calls", "answered")
    abandoned = _marks(page, "chart-calls", "abandoned")
    assert [(lab, v) for lab, v, _ in answered] == [("03-10", 2), ("03-11", 0), ("03-12", 1)]
    assert [(lab, v) for lab, v, _ in abandoned] == [("03-10", 1), ("03-11", 0), ("03-12", 1)]
    assert answered[0][2] == "03-10 · 接通: 2"
    # Service level = answered within / (answered + abandoned after the threshold); no dot on the empty day.
    sl = _marks(page, "chart-sl", "service_level", "circle.pt")
    assert [(lab, round(v, 3)) for lab, v, _ in sl] == [("03-10", 0.333), ("03-12", 0.5)]
    assert page.get_attribute("#chart-sl line.target", "data-value") == "0.8"
    ab = _marks(page, "chart-abandon", "abandon_rate", "circle.pt")
    assert [(lab, round(v, 3)) for lab, v, _ in ab] == [("03-10", 0.333), ("03-12", 0.5)]
    # Per organisation: the queue's organisation, not rolled up.
    offered = {lab: v for lab, v, _ in _marks(page, "chart-orgs", "offered")}
    assert offered[prov] == 3 and offered[city] == 2
    assert page.inner_text("#days tr[data-date='total'] td:nth-child(2)") == "5"
    assert page.inner_text("[data-figure='short_abandoned'] dd") == "1"
    # The check-in month per office: completion = windows passed / due, misses and alerts as bars.
    # (Other tests of this package may have made offices of their own, with nothing due in March: bars of 0.)
    page.wait_for_selector(f"#chart-completion rect.col[data-label='{office}']", state="attached")

    def ours(chart: str, series: str) -> list[tuple[str, float]]:
        marks = [(lab, v) for lab, v, _ in _marks(page, chart, series)]
        assert all(v == 0 for lab, v in marks if lab != office), marks
        return [(lab, v) for lab, v in marks if lab == office]

    assert ours("chart-completion", "completion_rate") == [(office, 0.75)]
    assert ours("chart-misses", "misses") == [(office, 1)]
    assert ours("chart-misses", "alerts") == [(office, 1)]
    assert page.inner_text("#offices tr[data-office='total'] td:nth-child(5)") == "75%"
    both_sizes(page, "reports")

    # The organisation filter: the city alone.
    page.select_option("#org", label=city)
    page.click("#filters button[type=submit]")
    wait_until(lambda: page.inner_text("#days tr[data-date='total'] td:nth-child(2)") == "2", 10, "city filter")

    # English: the same marks, relabelled.
    page.click("#lang")
    wait_until(lambda: _marks(page, "chart-calls", "answered")[2][2] == "03-12 · Answered: 1", 5, "English tooltip")
    assert page.inner_text("h1") == "huiyan · Reports"
    assert "Asia/Shanghai" in page.inner_text("#days-note")

    # CSV export (fetched with the token, saved by the browser) has the same total.
    with page.expect_download() as dl:
        page.click("#hotline-csv")
    path = tmp_path / "hotline.csv"
    dl.value.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    assert lines[-1][1:4] == ["合计 total", "2", "1"]
    # The check-in month report's exports download the same figures.
    with page.expect_download() as dl:
        page.click("#checkin-xlsx")
    assert dl.value.suggested_filename == "checkin-report-2026-03.xlsx"
    with page.expect_download() as dl:
        page.click("#checkin-csv")
    path = tmp_path / "checkin.csv"
    dl.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))
    mine = next(r for r in rows if r["司法所 office"] == office)
    assert (mine["应点验 windows due"], mine["已完成 passed"], mine["告警 alerts"]) == ("4", "3", "1")
    page.set_viewport_size(PHONE)
    both_sizes(page, "reports-en")


def _finalised_recording(huiyan: Running) -> Any:
    """A hotline call with a real 6 s WAV capture, finalised by the real pipeline into an M4A in the chain."""
    from huiyan.db.models import HotlineCall, Recording
    from huiyan.recordings import store
    from huiyan.recordings.pipeline import Finaliser

    call_id = f"{int(time.time())}.77"
    root = huiyan.settings.data_dir / "recordings"
    raw = tone_wav(root / "hotline" / "2026" / "11" / "29" / f"hotline-{call_id}.wav", 6.0)
    past = time.time() - 30
    os.utime(raw, (past, past))
    end = datetime.now(UTC) - timedelta(seconds=30)
    with huiyan.ctl.session_factory() as s:
        s.add(HotlineCall(id=call_id, node="pbx1", caller_number="13904310077", caller_name="赵六",
                          answered_at=end - timedelta(seconds=6), ended_at=end, recording_path=str(raw),
                          outcome="completed"))
        s.commit()
    fin = Finaliser(huiyan.ctl.session_factory, root, huiyan.settings.recordings)

    def done() -> Any:
        with huiyan.ctl.session_factory() as s:
            store.sweep(s, 0.0)
            s.commit()
        fin.run_due()  # the controller's own finaliser may take it first: either way one row appears
        with huiyan.ctl.session_factory() as s:
            return s.scalar(select(Recording).where(Recording.call_id == call_id))

    return wait_until(done, 60, "the recording finalised")


def test_recordings_page_finds_plays_downloads_and_verifies_a_recording(pages: Pages, huiyan: Running,
                                                                        tmp_path: Path) -> None:
    _admin(huiyan)
    rec = _finalised_recording(huiyan)
    page = pages.open(f"{huiyan.api}/recordings", viewport=DESKTOP, name="recordings")
    _sign_in(page)
    page.select_option("#f-type", "hotline")
    page.fill("#f-participant", "赵六")
    page.click("#search")
    wait_until(lambda: page.evaluate("window.huiyan.results()") == [rec.id], 10, "the search finds the recording")
    assert "赵六" in page.inner_text(f"#rows tr[data-id='{rec.id}']")

    # Play in the page: the media element (audio for an M4A) gets data and plays.
    page.click(f"[data-play='{rec.id}']")
    page.wait_for_selector("#player")
    assert page.evaluate("document.getElementById('player').tagName") == "AUDIO"
    wait_until(lambda: page.evaluate("document.getElementById('player').readyState") >= 2, 15, "media data")
    page.evaluate("document.getElementById('player').play().catch(() => null)")
    wait_until(lambda: page.evaluate("document.getElementById('player').currentTime") > 0.2, 15, "playback advances")
    assert page.inner_text("#d-sha") == rec.sha256 and page.inner_text("#d-seq") == str(rec.seq)

    # The share link the player uses serves HTTP Range without a token (it is its own, expiring credential).
    src = page.evaluate("document.getElementById('player').currentSrc")
    assert "/api/recordings/shared/" in src
    r = httpx.get(src, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100 and r.headers["content-range"].endswith(f"/{rec.size_bytes}")

    # Download: the bytes are the recording's, as the chain says.
    with page.expect_download() as dl:
        page.click(f"[data-download='{rec.id}']")
    saved = tmp_path / "rec.m4a"
    dl.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == rec.sha256
    assert dl.value.suggested_filename.endswith(f"-{rec.id}.m4a")

    # Verify in the page: re-hashed in the browser, equal to the recorded SHA-256.
    page.click("#d-verify")
    wait_until(lambda: page.get_attribute("#d-verify-result", "data-ok") == "1", 20, "in-page verify")
    # The admin sees the audit of this recording: the share link asked for and used.
    wait_until(lambda: page.locator("#audit tr[data-action='shared']").count() >= 1, 10, "audit lines")
    assert page.locator("#audit tr[data-action='share']").count() >= 1
    both_sizes(page, "recordings")
    page.click("#lang")
    wait_until(lambda: page.inner_text("#search") == "Search", 5, "English")
    both_sizes(page, "recordings-en")
