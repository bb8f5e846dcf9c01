"""The admin console (directory part) in headless Chromium against the real controller and Asterisk: an
admin signs in and sees the organisation tree, adds a county and is told in plain words why a duplicate
code is refused; imports a 3-row CSV through the page and sees the 3 devices; a bad CSV shows its row
errors and creates nothing; the allocation plan is shown; a SIPp terminal registering turns its dot green
live (DevicePresence over the event WebSocket). Screenshots at phone and desktop sizes; no console errors
except the 409/422 answers the test provokes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from huiyan.db.seed import CITY_DEVICES
from tests.e2e.conftest import DESKTOP, Pages, wait_until
from tests.e2e.test_hotline_web import both_sizes
from tests.integration.conftest import Running
from tests.integration.sipp import SCENARIOS, Sipp

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ADMIN = ("e2e.admin", "admin-password-12348")
GOOD_CSV = ("org_code,kind,serial,name,department\n"
            "220100,terminal,E2E-CC-001,长春市司法局 指挥中心,command\n"
            "220100,kiosk,E2E-CC-002,长春市司法局 大厅,\n"
            "220102,softphone,E2E-NG-001,南关区司法局 软电话,grassroots\n")
BAD_CSV = ("org_code,kind,serial,name\n"
           "220199,terminal,E2E-BAD-001,无此机构\n"      # row 2: unknown organisation code
           "220100,terminal,E2E-CC-001,重复序列号\n"     # row 3: serial already imported
           "220100,fax,E2E-BAD-003,类型不对\n")           # row 4: unknown kind


def _directory(huiyan: Running) -> None:
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        prov = store.create_organisation(s, name="吉林省司法厅", name_en="Jilin Department of Justice", code="220000",
                                         level="province")
        city = store.create_organisation(s, name="长春市司法局", code="220100", level="city", parent_id=prov.id)
        store.create_organisation(s, name="南关区司法局", code="220102", level="county", parent_id=city.id)
        store.create_user(s, username=ADMIN[0], password=ADMIN[1], role="admin", display_name="系统管理员")
        s.commit()
    huiyan.call(huiyan.ctl.apply_directory())  # the admin's own endpoint (the console signs in to /api/me/sip)


def _auth(huiyan: Running) -> dict[str, str]:
    r = httpx.post(f"{huiyan.api}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _serials(page: Any) -> list[str]:
    return page.eval_on_selector_all("#devices tr", "rows => rows.map(r => r.dataset.serial)")


def test_admin_console_tree_import_plan_and_live_presence(pages: Pages, huiyan: Running, tmp_path: Any) -> None:
    _directory(huiyan)
    page = pages.open(f"{huiyan.api}/admin", viewport=DESKTOP, name="admin")
    pages.expect_error("admin", "status of 409")  # the duplicate organisation code, on purpose
    pages.expect_error("admin", "status of 422")  # the bad CSV, on purpose
    page.wait_for_selector("#login-form")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#login-form button[type=submit]")
    wait_until(lambda: page.evaluate("window.huiyan.ready()"), 15, "organisation tree loaded")

    # 组织机构: the province is open, its city shown; open the city, add a county below it.
    page.wait_for_selector("#org-tree li[data-code='220000'] li[data-code='220100']")
    page.click("#org-tree li[data-code='220100'] > .node .toggle")
    page.wait_for_selector("li[data-code='220100'] li[data-code='220102']")
    page.click("li[data-code='220100'] > .node .add-child")
    page.fill("#org-name", "朝阳区司法局")
    page.fill("#org-code", "220104")
    page.click("#org-form button[type=submit]")
    page.wait_for_selector("li[data-code='220100'] li[data-code='220104'] .org-name:text('朝阳区司法局')")
    page.click("li[data-code='220100'] > .node .add-child")  # again with a code that exists
    page.fill("#org-name", "重复")
    page.fill("#org-code", "220104")
    page.click("#org-form button[type=submit]")
    page.wait_for_selector("#org-error:not([hidden])")
    assert page.inner_text("#org-error").startswith("无法完成")
    assert "220104" in page.inner_text("#org-error")
    page.click("#org-cancel")
    both_sizes(page, "admin-orgs")

    # 终端设备: import three devices.
    page.click(".tabs [data-tab='devices']")
    page.wait_for_selector("#plan-orgs tbody tr[data-code='220100']")
    page.set_input_files("#csv-file", files=[{"name": "devices.csv", "mimeType": "text/csv",
                                               "buffer": GOOD_CSV.encode("utf-8")}])
    page.click("#csv-import")
    page.wait_for_selector("#csv-status:text('已导入 3 台终端')")
    wait_until(lambda: {"E2E-CC-001", "E2E-CC-002", "E2E-NG-001"} <= set(_serials(page)), 10, "imported rows shown")
    listed = httpx.get(f"{huiyan.api}/api/devices", params={"q": "E2E-", "limit": 500}, headers=_auth(huiyan)).json()
    assert listed["total"] == 3
    # The plan now counts them: 长春 has 1 of its planned command terminals, so one fewer is missing.
    city_row = page.eval_on_selector("#plan-orgs tbody tr[data-code='220100']",
                                     "r => [...r.cells].map(c => c.textContent)")
    planned = sum(n for _, _, n in CITY_DEVICES)
    assert city_row[3:] == [str(planned), "2", str(planned - 1)]  # the kiosk is in no planned department
    page.eval_on_selector("#tab-devices", "e => e.scrollIntoView()")
    both_sizes(page, "admin-devices")
    page.eval_on_selector("#plan-card", "e => e.scrollIntoView()")
    both_sizes(page, "admin-plan")

    # A bad file: every problem listed by row, nothing created.
    page.set_input_files("#csv-file", files=[{"name": "bad.csv", "mimeType": "text/csv",
                                               "buffer": BAD_CSV.encode("utf-8")}])
    page.click("#csv-import")
    page.wait_for_selector("#csv-errors:not([hidden])")
    rows = page.eval_on_selector_all("#csv-error-rows tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    assert [(r[0], r[1]) for r in rows] == [("2", "org_code"), ("3", "serial"), ("4", "kind")]
    assert "没有创建任何终端" in page.inner_text("#csv-status")
    listed = httpx.get(f"{huiyan.api}/api/devices", params={"q": "E2E-", "limit": 500}, headers=_auth(huiyan)).json()
    assert listed["total"] == 3
    page.eval_on_selector("#import-card", "e => e.scrollIntoView()")
    both_sizes(page, "admin-import-errors")

    # Live presence: the imported kiosk registers (SIPp) and its dot turns green without a reload.
    wait_until(lambda: page.evaluate("window.huiyan.live()"), 10, "event WebSocket open")
    kiosk = next(d for d in listed["items"] if d["serial"] == "E2E-CC-002")
    secret = httpx.get(f"{huiyan.api}/api/devices/{kiosk['id']}", headers=_auth(huiyan)).json()["sip_password"]
    assert page.get_attribute("tr[data-serial='E2E-CC-002'] .dot", "data-on") == "0"
    phone = Sipp("register_stay.xml", huiyan.sip_target, service=kiosk["extension"], workdir=tmp_path,
                 user=kiosk["extension"], password=secret, timeout=60, timeout_error=False,
                 extra=("-oocsf", str(SCENARIOS / "answer_options.xml"))).start()
    try:
        page.wait_for_selector("tr[data-serial='E2E-CC-002'] .dot[data-on='1']", timeout=15000)
        assert page.inner_text("tr[data-serial='E2E-CC-002'] .seen") != "从未"
        page.eval_on_selector("#tab-devices", "e => e.scrollIntoView()")
        both_sizes(page, "admin-presence")
    finally:
        phone.stop()

    # The other tabs load and render (users with roles, queues, rooms) without console errors.
    page.click(".tabs [data-tab='users']")
    page.wait_for_selector(f"#users tr[data-user='{ADMIN[0]}'] select.role")
    assert page.input_value(f"#users tr[data-user='{ADMIN[0]}'] select.role") == "admin"
    page.click(".tabs [data-tab='queues']")
    page.click(".tabs [data-tab='rooms']")
    page.wait_for_selector("#room-form")

    # English switch: the same page in English.
    page.click("#lang")
    assert page.inner_text(".tabs [data-tab='devices']") == "Devices"
    page.click("#lang")
