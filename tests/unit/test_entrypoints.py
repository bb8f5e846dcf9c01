"""QR entry points: the table's rules, the API (admin CRUD, the public lookup a scanned code makes), and the
poster, read back with OpenCV's QR decoder as a phone would read it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.entrypoints import poster, store

if TYPE_CHECKING:
    from conftest import ApiHarness

HOTLINE = {"12348"}


def decode(png: bytes) -> str:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    text, points, _ = cv2.QRCodeDetector().detectAndDecode(img)
    assert points is not None, "no QR code found on the poster"
    return text


@pytest.fixture
def menu(db: Any) -> dict[str, int]:
    """12348: 1 consultation (no organisation), 3 tourism mediation → the Changbai Mountain bureau's queue."""
    from huiyan.db import hotline
    from huiyan.db import store as dirstore

    cbs = dirstore.create_organisation(db, name="长白山管委会司法局", name_en="Changbai Mountain Bureau of Justice",
                                       code="229900", level="city")
    other = dirstore.create_organisation(db, name="延边州司法局", code="222400", level="city")
    q1 = hotline.create_queue(db, name="法律咨询")
    q3 = hotline.create_queue(db, name="长白山旅游调解", organisation_id=cbs.id)
    hotline.create_menu_option(db, service_number="12348", digit="1", queue_id=q1.id, label_zh="法律咨询",
                               label_en="Legal consultation")
    hotline.create_menu_option(db, service_number="12348", digit="3", queue_id=q3.id, label_zh="旅游纠纷调解",
                               label_en="Tourism mediation")
    db.commit()
    return {"cbs": cbs.id, "other": other.id, "q3": q3.id}


# ---- the table's rules ------------------------------------------------------------------------------


def test_an_organisation_instead_of_a_digit_presets_the_option_leading_to_its_queue(db: Any, menu: dict[str, int]) -> None:
    e = store.create_entry(db, hotline_numbers=HOTLINE, slug="tianchi-he", title="长白山“天池和”旅游纠纷调解",
                           service_number="12348", organisation_id=menu["cbs"])
    assert e.menu_digit == "3"
    e2 = store.create_entry(db, hotline_numbers=HOTLINE, slug="consult", title="法律咨询", service_number="12348",
                            menu_digit="1")
    assert e2.menu_digit == "1" and e2.organisation_id is None
    with pytest.raises(Invalid, match="no menu option of 12348 leads to a queue of 延边州司法局"):
        store.create_entry(db, hotline_numbers=HOTLINE, slug="yb", title="延边", service_number="12348",
                           organisation_id=menu["other"])
    with pytest.raises(Invalid, match="has no menu option 7"):
        store.create_entry(db, hotline_numbers=HOTLINE, slug="x7", title="x", service_number="12348", menu_digit="7")
    with pytest.raises(Invalid, match="not a hotline service number"):
        store.create_entry(db, hotline_numbers=HOTLINE, slug="x", title="x", service_number="12349", menu_digit="1")
    with pytest.raises(Invalid, match="give menu_digit, or organisation_id"):
        store.create_entry(db, hotline_numbers=HOTLINE, slug="x", title="x", service_number="12348")
    with pytest.raises(Conflict, match="already used"):
        store.create_entry(db, hotline_numbers=HOTLINE, slug="tianchi-he", title="x", service_number="12348",
                           menu_digit="1")
    for bad in ("Tianchi", "-x", "x-", "a b", "天池", "x" * 41):
        with pytest.raises(Invalid, match="slug"):
            store.create_entry(db, hotline_numbers=HOTLINE, slug=bad, title="x", service_number="12348", menu_digit="1")


def test_retired_or_unknown_slugs_are_not_found_and_a_new_organisation_re_resolves(db: Any, menu: dict[str, int]) -> None:
    e = store.create_entry(db, hotline_numbers=HOTLINE, slug="tianchi-he", title="天池和", service_number="12348",
                           menu_digit="1")
    assert store.by_slug(db, "tianchi-he").id == e.id
    store.update_entry(db, e.id, {"organisation_id": menu["cbs"]}, hotline_numbers=HOTLINE)
    assert e.menu_digit == "3"  # the organisation's option, since no digit came with it
    store.update_entry(db, e.id, {"title": "天池和调解"}, hotline_numbers=HOTLINE)
    assert e.menu_digit == "3" and e.title == "天池和调解"
    store.update_entry(db, e.id, {"active": False}, hotline_numbers=HOTLINE)
    with pytest.raises(NotFound, match="no longer in use"):
        store.by_slug(db, "tianchi-he")
    for slug in ("nope", "../etc", "A"):
        with pytest.raises(NotFound):
            store.by_slug(db, slug)


# ---- the poster -----------------------------------------------------------------------------------


def test_wrap_breaks_chinese_anywhere_and_keeps_latin_words_whole() -> None:
    font = poster._font(40)
    lines = poster.wrap("请用手机扫描上方二维码 scan the code with your phone\n第二行", font, 400)
    assert all(font.getlength(line) <= 400 for line in lines)
    assert "".join(lines).replace(" ", "") == "请用手机扫描上方二维码scanthecodewithyourphone第二行"
    for word in ("scan", "the", "code", "with", "your", "phone"):  # each whole on one line
        assert any(re.search(rf"(^|[^a-z]){word}([^a-z]|$)", line) for line in lines), (word, lines)
    assert lines[-1] == "第二行"


def test_the_poster_png_decodes_to_the_entry_url_and_the_pdf_is_one_a4_page() -> None:
    url = "https://hy.sft.jl.example/call?entry=tianchi-he"
    img = poster.render(poster.PosterText(
        title="长白山“天池和”旅游纠纷调解", url=url, service="12348 法律服务视频热线 · 旅游纠纷调解",
        instructions="游客朋友：遇到旅游纠纷，请用手机扫码与调解员视频连线。" * 3, organisation="长白山管委会司法局",
        dial_hint="没有智能手机？请拨打 12348，按 3"))
    assert img.size == poster.A4
    assert decode(poster.png(img)) == url
    pdf = poster.pdf(img, "天池和")
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page\r") == 1
    box = re.search(rb"/MediaBox \[ ?0 0 ([0-9.]+) ([0-9.]+) ?\]", pdf)
    assert box is not None
    w_pt, h_pt = float(box.group(1)), float(box.group(2))
    assert abs(w_pt - 595.3) < 2 and abs(h_pt - 841.9) < 2  # A4 in points


# ---- the API --------------------------------------------------------------------------------------


def _menu_via_api(api: ApiHarness) -> int:
    from huiyan.db import hotline

    org = api.org("229900", level="city", name="长白山管委会司法局")
    with api.sessions() as s:
        q = hotline.create_queue(s, name="长白山旅游调解", organisation_id=org)
        hotline.create_menu_option(s, service_number="12348", digit="3", queue_id=q.id, label_zh="旅游纠纷调解",
                                   label_en="Tourism mediation")
        s.commit()
    return org


def test_admin_creates_an_entry_point_and_its_posters_carry_the_url(api: ApiHarness) -> None:
    org = _menu_via_api(api)
    body = {"slug": "tianchi-he", "title": "长白山“天池和”旅游纠纷调解", "title_en": "Tianchi He tourism mediation",
            "organisation_id": org, "instructions": "游客朋友：请扫码与调解员视频连线。\n每天 8:00–20:00。"}
    r = api.client.post("/api/entry-points", json=body, headers=api.auth("supervisor"))
    assert r.status_code == 403
    r = api.client.post("/api/entry-points", json=body, headers=api.auth("admin"))
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["menu_digit"] == "3" and e["option_label_zh"] == "旅游纠纷调解"
    assert e["organisation_name"] == "长白山管委会司法局"
    assert e["url"] == "http://testserver/call?entry=tianchi-he"
    r = api.client.post("/api/entry-points", json=body, headers=api.auth("admin"))
    assert r.status_code == 409 and "already used" in r.json()["detail"]
    r = api.client.post("/api/entry-points", json={**body, "slug": "x", "menu_digit": "9"}, headers=api.auth("admin"))
    assert r.status_code == 400 and "no menu option 9" in r.json()["detail"]

    # Supervisors may print posters; the base address can be the public one.
    r = api.client.get(f"/api/entry-points/{e['id']}/poster.png", params={"base": "https://hy.sft.jl.example"},
                       headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert decode(r.content) == "https://hy.sft.jl.example/call?entry=tianchi-he"
    r = api.client.get(f"/api/entry-points/{e['id']}/poster.pdf", headers=api.auth("admin"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    r = api.client.get(f"/api/entry-points/{e['id']}/poster.png", params={"base": "javascript:alert(1)"},
                       headers=api.auth("admin"))
    assert r.status_code == 422
    assert api.client.get("/api/entry-points/999/poster.png", headers=api.auth("admin")).status_code == 404

    # What a scanned code asks, without an account.
    r = api.client.get("/api/public/entries/tianchi-he")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "slug": "tianchi-he", "title": "长白山“天池和”旅游纠纷调解", "title_en": "Tianchi He tourism mediation",
        "number": "12348", "option": "3", "label_zh": "旅游纠纷调解", "label_en": "Tourism mediation",
        "instructions": "游客朋友：请扫码与调解员视频连线。\n每天 8:00–20:00。",
        "instructions_en": "游客朋友：请扫码与调解员视频连线。\n每天 8:00–20:00。",
        "organisation": "长白山管委会司法局", "organisation_en": "长白山管委会司法局"}
    assert api.client.get("/api/public/entries/no-such").status_code == 404

    # Retire it: the code now says so; list and delete.
    r = api.client.patch(f"/api/entry-points/{e['id']}", json={"active": False}, headers=api.auth("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    r = api.client.get("/api/public/entries/tianchi-he")
    assert r.status_code == 404 and "no longer in use" in r.json()["detail"]
    listed = api.client.get("/api/entry-points", headers=api.auth("supervisor")).json()
    assert [x["slug"] for x in listed["items"]] == ["tianchi-he"] and listed["total"] == 1
    assert api.client.delete(f"/api/entry-points/{e['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.get(f"/api/entry-points/{e['id']}", headers=api.auth("admin")).status_code == 404


def test_an_entry_point_whose_option_was_deleted_says_the_service_is_no_longer_offered(api: ApiHarness) -> None:
    _menu_via_api(api)
    r = api.client.post("/api/entry-points", json={"slug": "t3", "title": "旅游", "menu_digit": "3"},
                        headers=api.auth("admin"))
    assert r.status_code == 201, r.text
    opt = api.client.get("/api/menu-options", headers=api.auth("admin")).json()["items"][0]
    assert api.client.delete(f"/api/menu-options/{opt['id']}", headers=api.auth("admin")).status_code == 204
    r = api.client.get("/api/public/entries/t3")
    assert r.status_code == 404 and "no longer offered" in r.json()["detail"]
