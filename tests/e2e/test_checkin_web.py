"""The subject's check-in page (社区矫正视频点验) in real headless Chromium with a fake camera and a granted
geolocation, through the real controller, Asterisk and face model.

Scenarios: a subject inside the allowed area checks in with number + PIN in an open window - the page sends
the location, calls the check-in number (recorded), shows the liveness digits, takes snapshots, finishes
on time; the recording is finalised and linked to the check-in, the snapshots are stored, and since the
fake camera shows a test pattern, the identity part says honestly that no face was found (officer review).
A second subject, outside the area, is flagged and the officer alerted. Three wrong PINs: the page says
rejected and the officer has an alert. A refused geolocation is explained and recorded as `refused`. With a
drawn face played as the fake camera (tests/unit/test_checkin_face.py's people, as a y4m clip), the enrolled
subject's face matches, and another person's fails the identity check and alerts the officer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PHONE, Pages, wait_until
from tests.e2e.test_hotline_web import both_sizes
from tests.integration.conftest import Running
from tests.unit.test_checkin_face import enrolled_photo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CENTRE = (43.8171, 125.3235)  # 长春
PIN = "2468"


@dataclass
class Office:
    h: Running
    officer: dict[str, str]
    officer_id: int

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method.upper(), f"{self.h.api}{path}", headers={**self.officer, **kw.pop("headers", {})},
                             timeout=30, **kw)

    def subject(self, name: str, *, window: bool = True) -> dict[str, Any]:
        from huiyan.checkin.service import CheckinEvent

        r = self.api("post", "/api/checkin/subjects", json={
            "name": name, "supervision_start": "2026-01-01", "supervision_end": "2030-12-31", "pin": PIN,
            "area": {"center": list(CENTRE), "radius_m": 1000}})
        assert r.status_code == 201, r.text
        s = r.json()
        photo = self.api("put", f"/api/checkin/subjects/{s['id']}/photo", content=enrolled_photo(),
                         headers={"Content-Type": "image/png"})
        assert photo.status_code == 200 and photo.json()["face_enrolled"], photo.text
        if window:
            now = datetime.now(UTC)
            r = self.api("post", f"/api/checkin/subjects/{s['id']}/schedules", json={
                "kind": "once", "opens_at": (now + timedelta(seconds=1)).isoformat(),
                "closes_at": (now + timedelta(minutes=10)).isoformat()})
            assert r.status_code == 201, r.text
            self.h.wait_event(lambda e: isinstance(e, CheckinEvent) and e.kind == "window_opened"
                              and e.subject_id == s["id"], 30)
        return s

    def checkins(self, subject: dict[str, Any]) -> list[dict[str, Any]]:
        r = self.api("get", "/api/checkin/checkins", params={"subject_id": subject["id"]})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def alerts(self, subject: dict[str, Any]) -> list[str]:
        r = self.api("get", "/api/checkin/alerts", params={"subject_id": subject["id"]})
        return [a["kind"] for a in r.json()["items"]]


@pytest.fixture(scope="module")
def office(huiyan: Running) -> Iterator[Office]:
    from huiyan.db import store
    from huiyan.db.models import Role

    ns = time.monotonic_ns()
    with huiyan.ctl.session_factory() as s:
        org = store.create_organisation(s, name="朝阳区司法所", code=f"2201{ns % 10**8:08d}", level="office")
        s.flush()
        u = store.create_user(s, username=f"ck_officer_{ns}", password="officer-password", role=Role.OFFICER,
                              organisation_id=org.id, display_name="矫正干警")
        s.commit()
        officer_id, username = u.id, u.username
    r = httpx.post(f"{huiyan.api}/api/auth/login", json={"username": username, "password": "officer-password"})
    r.raise_for_status()
    cfg = huiyan.settings.checkin
    saved = cfg.tick_s
    cfg.tick_s = 0.5  # windows open within half a second of their time
    try:
        yield Office(huiyan, {"Authorization": f"Bearer {r.json()['access_token']}"}, officer_id)
    finally:
        cfg.tick_s = saved


def subject_page(pages: Pages, huiyan: Running, name: str, geolocation: tuple[float, float] | None) -> Any:
    """/checkin on a phone-sized page: camera and microphone granted, and the geolocation if given (else the
    page asks, and headless Chromium refuses). Console errors are collected like Pages.open does."""
    perms = ["camera", "microphone"] + (["geolocation"] if geolocation else [])
    ctx = pages.browser.new_context(viewport=PHONE, permissions=perms, geolocation=(
        {"latitude": geolocation[0], "longitude": geolocation[1], "accuracy": 25} if geolocation else None))
    pages.contexts.append(ctx)
    page = ctx.new_page()
    page.on("console", lambda m: m.type == "error" and pages.errors.append(f"{name}: console: {m.text}"))
    page.on("pageerror", lambda e: pages.errors.append(f"{name}: uncaught: {e}"))
    page.goto(f"{huiyan.api}/checkin")
    page.wait_for_selector("#form")
    return page


def check_in(page: Any, number: str, *, snapshots: int = 2) -> None:
    page.fill("#number", number)
    page.fill("#pin", PIN)
    page.click("#go")
    wait_until(lambda: page.evaluate("window.huiyan.phase()") == "in_call", 30, "the check-in call answered")
    wait_until(lambda: page.evaluate("window.huiyan.snapshots()") >= snapshots, 40, f"{snapshots} snapshots")


def test_subject_checks_in_on_time_from_inside_the_area_recorded_with_snapshots(
        pages: Pages, huiyan: Running, office: Office) -> None:
    s = office.subject("郑某")
    page = subject_page(pages, huiyan, "checkin-ok", (CENTRE[0] + 0.002, CENTRE[1]))
    both_sizes(page, "checkin-form")
    check_in(page, s["number"])
    [row] = office.checkins(s)
    assert page.inner_text("#digits").replace(" ", "") == office.api(
        "get", f"/api/checkin/checkins/{row['id']}").json()["challenge"]
    assert page.is_visible("#challenge") and page.inner_text("#where") == "在规定活动区域内"
    assert page.evaluate("window.huiyan.state()") == "established"
    # The call reached the check-in flow with the page's token: recorded against this check-in.
    live = office.api("get", f"/api/checkin/checkins/{row['id']}").json()
    assert live["call_id"] and live["kind"] == "browser" and live["outcome"] == "pending"
    both_sizes(page, "checkin-in-call")

    page.click("#done")
    page.wait_for_selector("#result:not([hidden])", timeout=20000)
    assert page.get_attribute("#outcome", "data-outcome") == "on_time"
    assert page.inner_text("#outcome") == "点验完成：按时"
    assert page.inner_text("#r-location") == "在规定活动区域内"
    # Chromium's fake camera shows a test pattern, not a face: said as such, for the officer to check.
    assert page.get_attribute("#r-identity", "data-identity") == "no_face"
    assert "未检测到人脸" in page.inner_text("#r-identity")
    both_sizes(page, "checkin-on-time")
    page.click("#lang")
    assert page.inner_text("#outcome") == "Checked in: on time"
    assert page.inner_text("#r-identity").startswith("No face found")
    both_sizes(page, "checkin-on-time-en")
    page.click("#lang")

    taken = page.evaluate("window.huiyan.snapshots()")
    detail = office.api("get", f"/api/checkin/checkins/{row['id']}").json()
    assert (detail["outcome"], detail["passed"], detail["location"], detail["identity"]) == (
        "on_time", True, "in_area", "no_face")
    assert len(detail["snapshots"]) == taken >= 2
    for snap in detail["snapshots"]:
        assert snap["identity"] == "no_face"
        jpeg = office.api("get", snap["url"])
        assert jpeg.status_code == 200 and jpeg.content[:3] == b"\xff\xd8\xff"  # the stored still, a JPEG
    assert "/recordings/checkin/" in detail["recording"]["raw_path"]

    def finalised() -> dict[str, Any] | None:
        rec = office.api("get", f"/api/checkin/checkins/{row['id']}").json()["recording"]
        return rec if rec.get("recording_id") and rec.get("job_state") == "done" else None

    rec = wait_until(finalised, 90, "the call's recording finalised and linked")
    assert rec["sha256"] and rec["duration_s"] > 3  # the prompts and the subject's answer
    assert office.alerts(s) == []


def test_subject_outside_the_area_is_flagged_and_the_officer_alerted(
        pages: Pages, huiyan: Running, office: Office) -> None:
    s = office.subject("卫某")
    page = subject_page(pages, huiyan, "checkin-outside", (CENTRE[0] + 0.05, CENTRE[1]))
    check_in(page, s["number"], snapshots=1)
    assert page.inner_text("#where").startswith("不在规定活动区域内（超出约")
    page.click("#done")
    page.wait_for_selector("#result:not([hidden])", timeout=20000)
    assert page.get_attribute("#outcome", "data-outcome") == "outside_area"
    assert page.get_attribute("#outcome", "data-passed") == "0"
    assert "通知您的矫正干警" in page.inner_text("#r-reason")
    both_sizes(page, "checkin-outside-area")
    [row] = office.checkins(s)
    assert (row["outcome"], row["location"], row["passed"]) == ("outside_area", "outside_area", False)
    wait_until(lambda: office.alerts(s) == ["outside_area"], 10, "the officer's alert")


def test_three_wrong_pins_are_rejected_on_the_page_and_alerted(pages: Pages, huiyan: Running,
                                                               office: Office) -> None:
    s = office.subject("冯某")
    page = subject_page(pages, huiyan, "checkin-pin", (CENTRE[0], CENTRE[1]))
    # Chromium's own console line for each refused request; the page itself explains them.
    pages.expect_error("checkin-pin", "status of 401")
    pages.expect_error("checkin-pin", "status of 423")
    page.click("#go")
    assert page.inner_text("#form-error") == "请填写矫正对象编号。"
    page.fill("#number", s["number"])
    for pin, left in (("1111", 2), ("2222", 1)):
        said = f"PIN 不正确，还可以再试 {left} 次。"
        page.fill("#pin", pin)
        page.click("#go")
        wait_until(lambda: page.inner_text("#form-error") == said, 15, said)  # noqa: B023 - awaited here
    page.fill("#pin", "3333")
    page.click("#go")
    wait_until(lambda: "本次点验已被拒绝" in page.inner_text("#form-error"), 15, "rejected")
    assert page.get_attribute("#form", "data-outcome") == "rejected"
    assert "已通知您的矫正干警" in page.inner_text("#form-error")
    assert page.is_visible("#start") and not page.is_visible("#incall")
    both_sizes(page, "checkin-rejected")
    [row] = office.checkins(s)
    assert (row["outcome"], row["passed"], row["pin_ok"]) == ("rejected", False, False)
    wait_until(lambda: office.alerts(s) == ["rejected"], 10, "the officer's alert")


def test_a_refused_geolocation_is_explained_and_recorded_not_hidden(pages: Pages, huiyan: Running,
                                                                    office: Office) -> None:
    s = office.subject("褚某")
    page = subject_page(pages, huiyan, "checkin-nogeo", None)
    check_in(page, s["number"], snapshots=1)
    assert "您拒绝了位置权限" in page.inner_text("#loc-error")
    assert page.inner_text("#where") == "未提供位置（定位被拒绝或不可用），由矫正干警核实"
    both_sizes(page, "checkin-location-refused")
    [row] = office.checkins(s)
    assert row["location"] == "refused"
    page.click("#done")
    page.wait_for_selector("#result:not([hidden])", timeout=20000)
    assert page.inner_text("#r-location").startswith("未提供位置")
    detail = office.api("get", f"/api/checkin/checkins/{row['id']}").json()
    assert detail["location"] == "refused" and "no location evidence" in detail["reason"]


def face_video(path: Any, seed: int) -> Any:
    """A y4m clip of a drawn face (tests/unit/test_checkin_face.py's people) for Chromium's fake camera."""
    import subprocess

    from PIL import Image

    from tests.unit.test_checkin_face import synthetic_face

    face = synthetic_face(seed, 440, shift=(10, -6), scale=0.95)
    frame = Image.new("RGB", (640, 480), face.getpixel((2, 2)))
    frame.paste(face, (100, 20))
    png = path.with_suffix(".png")
    frame.save(png)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-i", str(png), "-t", "2", "-r", "10",
                    "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


@pytest.mark.parametrize("who,identity,outcome,said", [
    ("enrolled", "match", "on_time", "与登记照片一致"),
    ("someone else", "no_match", "identity_failed", "与登记照片不一致"),
])
def test_a_face_on_camera_is_compared_with_the_enrolled_photo(
        huiyan: Running, office: Office, playwright: Any, tmp_path: Any, who: str, identity: str, outcome: str,
        said: str) -> None:
    """Chromium's fake camera plays a drawn face: the enrolled subject's (a match), or another person's."""
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.unit.test_checkin_face import PERSON_A, PERSON_B

    clip = face_video(tmp_path / "face.y4m", PERSON_A if who == "enrolled" else PERSON_B)
    args = [a for a in CHROMIUM_ARGS if a != "--headless"] + [f"--use-file-for-fake-video-capture={clip}"]
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
    pages = Pages(b)
    try:
        s = office.subject("钱某")
        page = subject_page(pages, huiyan, "checkin-face", (CENTRE[0], CENTRE[1] + 0.001))
        check_in(page, s["number"], snapshots=1)
        both_sizes(page, f"checkin-face-{identity}-in-call")
        page.click("#done")
        page.wait_for_selector("#result:not([hidden])", timeout=20000)
        assert page.get_attribute("#r-identity", "data-identity") == identity
        assert page.inner_text("#r-identity") == said
        assert page.get_attribute("#outcome", "data-outcome") == outcome
        both_sizes(page, f"checkin-face-{identity}")
        [row] = office.checkins(s)
        detail = office.api("get", f"/api/checkin/checkins/{row['id']}").json()
        assert detail["identity"] == identity and detail["outcome"] == outcome
        assert all(x["identity"] == identity and x["faces"] == 1 for x in detail["snapshots"])
        if identity == "match":
            assert detail["identity_distance"] < 0.6 and office.alerts(s) == []
        else:
            assert detail["identity_distance"] > 0.6
            wait_until(lambda: office.alerts(s) == ["identity_failed"], 10, "the officer's alert")
        assert pages.unexpected() == [], pages.unexpected()
    finally:
        pages.close()
        b.close()
