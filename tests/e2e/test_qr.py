"""QR entry points end to end: an admin creates one for the Changbai Mountain tourist-mediation pilot; its
poster (PNG) is read back with OpenCV's QR decoder, as a phone would; the URL it holds opens the citizen
page in headless Chromium preset to that service; the call placed from there waits in that service's queue."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import pytest

from huiyan.hotline.service import HotlineEvent
from tests.e2e.conftest import PHONE, SCREENS, Hotline12348, Pages, wait_until
from tests.e2e.test_hotline_web import both_sizes
from tests.integration.conftest import Running

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TITLE = "长白山“天池和”旅游纠纷调解"


def decode(png: bytes) -> str:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(img)
    assert points is not None and text, "the poster's QR code could not be read"
    return text


def admin_token(huiyan: Running) -> dict[str, str]:
    from huiyan.db.seed import ensure_admin

    with huiyan.ctl.session_factory() as s:
        ensure_admin(s, "qradmin", "qr-admin-password")
        s.commit()
    r = httpx.post(f"{huiyan.api}/api/auth/login", json={"username": "qradmin", "password": "qr-admin-password"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def mediation_option(huiyan: Running) -> tuple[int, str]:
    """The Changbai Mountain bureau, its tourist-mediation queue, and option 3 of 12348 leading to it."""
    from huiyan.db import hotline as db
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        org = store.create_organisation(s, name="长白山管委会司法局", name_en="Changbai Mountain Bureau of Justice",
                                        code="229900", level="city")
        q = db.create_queue(s, name="长白山旅游调解", name_en="Changbai tourism mediation", organisation_id=org.id,
                            announce_every_s=0)
        db.create_menu_option(s, service_number="12348", digit="3", queue_id=q.id, label_zh="旅游纠纷调解",
                              label_en="Tourism dispute mediation")
        s.commit()
        out = (org.id, str(q.id))
    huiyan.call(huiyan.ctl.hotline.reload())
    return out


def test_qr_poster_decodes_to_the_entry_url_that_opens_the_citizen_page_preset_to_its_service(
        pages: Pages, huiyan: Running, hotline: Hotline12348) -> None:
    auth = admin_token(huiyan)
    org_id, queue_id = mediation_option(huiyan)
    body = {"slug": "tianchi-he", "title": TITLE, "title_en": "Changbai Mountain “Tianchi He” tourism mediation",
            "organisation_id": org_id,  # no digit: the option that leads to the bureau's queue
            "instructions": "游客朋友：在景区遇到消费、住宿、交通等纠纷，请用手机扫描二维码，填写称呼和电话，"
                            "即可与调解员视频连线。\n服务时间：每天 8:00–20:00。",
            "instructions_en": "Tourists: scan the code to talk face to face with a mediator. Daily 8:00–20:00."}
    r = httpx.post(f"{huiyan.api}/api/entry-points", json=body, headers=auth)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["menu_digit"] == "3" and entry["url"] == f"{huiyan.api}/call?entry=tianchi-he"

    # The poster, as printed: the code holds the entry URL.
    png = httpx.get(f"{huiyan.api}{entry['poster_png']}", headers=auth, timeout=30)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / "qr-poster.png").write_bytes(png.content)
    url = decode(png.content)
    assert url == entry["url"]
    pdf = httpx.get(f"{huiyan.api}{entry['poster_pdf']}", headers=auth, timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    (SCREENS.parent / "qr-poster.pdf").write_bytes(pdf.content)

    # Scanning it: the citizen page opens with the service preset and the poster's words.
    page = pages.open(url, viewport=PHONE, name="citizen-entry")
    page.wait_for_selector("#service option", state="attached")
    wait_until(lambda: page.input_value("#service") == "12348/3", 10, "the entry's service preset")
    assert "旅游纠纷调解" in page.inner_text("#service")
    assert page.inner_text("#entry h2") == TITLE
    assert "长白山管委会司法局" in page.inner_text("#entry")
    assert "扫描二维码" in page.inner_text("#entry")
    both_sizes(page, "citizen-entry")
    page.click("#lang")
    assert page.inner_text("#entry h2") == body["title_en"]
    assert page.input_value("#service") == "12348/3"
    both_sizes(page, "citizen-entry-en")
    page.click("#lang")

    # The call from the preset page goes to that service: it waits in the bureau's mediation queue.
    page.fill("#name", "游客刘先生")
    page.fill("#phone", "13904310031")
    page.check("#consent")
    page.click("#call")
    queued = huiyan.wait_event(lambda e: isinstance(e, HotlineEvent) and e.kind == "CallQueued"
                               and e.data.get("queue_id") == queue_id, timeout=30)
    wait_until(lambda: "正在排队" in page.inner_text("#status"), 20, "the tourist sees the line")
    page.click("#hangup")
    huiyan.wait_event(lambda e: isinstance(e, HotlineEvent) and e.kind == "CallAbandoned"
                      and e.data.get("call_id") == queued.data["call_id"], timeout=20)
    wait_until(lambda: page.evaluate("window.huiyan.state()") == "ended", 15, "call ended")
