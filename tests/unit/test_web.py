"""Browser clients without a browser: the citizen page's tickets (link by SIP header over AMI, own-call
status only), its public API, the agent's /api/me routes, serving the built files, and the build cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fake_ami import FakeAmi

from huiyan.acd.model import QueueConfig
from huiyan.bus import EventBus
from huiyan.hotline.service import HotlineConfig, HotlineService, MenuChoice
from huiyan.pbx.ami import AmiClient
from huiyan.web import build as web_build
from huiyan.web.calls import TICKET_HEADER, WebCalls, public_status

if TYPE_CHECKING:
    from conftest import ApiHarness


# ---- tickets ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ticket(calls: WebCalls, phone: str = "13904310001") -> Any:
    return calls.create(number="12348", digit="1", label_zh="法律咨询", label_en="Legal consultation",
                        name="李女士", phone=phone, lang="zh")


def test_tickets_are_random_expire_and_are_bounded() -> None:
    clock = Clock()
    calls = WebCalls(clock=clock, ttl=60, limit=3)
    a, b = _ticket(calls), _ticket(calls)
    assert a.token != b.token and len(a.token) >= 32
    assert calls.get(a.token) is a
    clock.now += 61
    assert calls.get(a.token) is None and calls.get(b.token) is None
    made = [_ticket(calls) for _ in range(4)]
    assert calls.get(made[0].token) is None  # the oldest gave way
    assert all(calls.get(t.token) is t for t in made[1:])


def test_a_ticket_links_to_its_newest_call_and_only_web_guest_channels_are_checked_once() -> None:
    calls = WebCalls()
    t = _ticket(calls)
    channels = {"c1": "PJSIP/webguest-00000001", "c2": "PJSIP/80001-00000002", "c3": "PJSIP/anonymous-3"}
    assert calls.to_check(channels) == [("c1", "PJSIP/webguest-00000001")]
    assert calls.to_check(channels) == []  # read once per call
    assert calls.link(t.token, "c1") and calls.for_call("c1") is t
    assert calls.link(t.token, "c9") and calls.for_call("c1") is None and calls.for_call("c9") is t
    assert not calls.link("no-such-token", "c5")


class MemoryStore:
    def __init__(self, cfg: HotlineConfig) -> None:
        self.cfg = cfg

    def load(self) -> HotlineConfig:
        return self.cfg

    def persist(self, node: str, events: list[Any], calls: list[dict[str, Any]], agents: list[dict[str, Any]]) -> None:
        pass


@asynccontextmanager
async def running_hotline() -> AsyncIterator[HotlineService]:
    choice = MenuChoice("1", "q1", {}, label_zh="法律咨询", label_en="Legal consultation")
    cfg = HotlineConfig([QueueConfig("q1", "法律咨询")], [], {"12348": {"1": choice}})
    svc = HotlineService("pbx1", MemoryStore(cfg), EventBus())
    # Configured without start(): the distributor decides synchronously on enqueue, and no background
    # loop is left to stop (HotlineService.stop() could hang here on Python 3.11's wait_for).
    await svc.reload()
    yield svc


async def test_the_header_on_the_channel_links_the_ticket_and_the_page_sees_only_its_own_place() -> None:
    async with running_hotline() as hotline:
        await _link_and_look(hotline)


async def _link_and_look(hotline: HotlineService) -> None:
    calls = WebCalls()
    mine, other = _ticket(calls), _ticket(calls, phone="13904310002")
    choice = hotline.menu("12348")["1"]
    for call_id, channel, phone in (("u1", "PJSIP/webguest-00000001", "13904310002"),
                                    ("u2", "PJSIP/anonymous-00000002", "13900000000"),
                                    ("u3", "PJSIP/webguest-00000003", "13904310001")):
        hotline.enqueue(call_id, choice, channel=channel, caller=phone, caller_name="", number="12348")
    headers = {"PJSIP/webguest-00000001": other.token, "PJSIP/webguest-00000003": mine.token}

    async with FakeAmi() as srv:
        srv.handle("Getvar", lambda s, req: [{"Response": "Success", "Variable": req["Variable"],
                                             "Value": headers.get(req["Channel"], "")}])
        ami = AmiClient(srv.node(), backoff_initial=0.05, action_timeout=2.0)
        await ami.connect()
        try:
            assert public_status(mine, hotline)["state"] == "connecting"
            await calls.resolve(hotline, ami)
            await calls.resolve(hotline, ami)  # nothing read twice
        finally:
            await ami.close()
        asked = srv.actions("Getvar")
    assert sorted(a["Channel"] for a in asked) == ["PJSIP/webguest-00000001", "PJSIP/webguest-00000003"]
    assert all(a["Variable"] == f"PJSIP_HEADER(read,{TICKET_HEADER})" for a in asked)
    assert calls.for_call("u3") is mine and calls.for_call("u1") is other
    status = public_status(mine, hotline)
    assert status == {"number": "12348", "label_zh": "法律咨询", "label_en": "Legal consultation", "state": "waiting",
                      "position": 3, "ahead": 2, "estimated_wait_s": None}  # nobody serving: no estimate
    assert "13904310002" not in repr(status) and "u1" not in repr(status)
    hotline.ended("u3", abandoned=True)
    assert public_status(mine, hotline)["state"] == "ended"


# ---- the public API ------------------------------------------------------------------------------------


@pytest.fixture
def with_12348(api: ApiHarness) -> ApiHarness:
    from huiyan.db import hotline as db

    with api.sessions() as s:
        q = db.create_queue(s, name="法律咨询")
        db.create_menu_option(s, service_number="12348", digit="1", queue_id=q.id, label_zh="法律咨询",
                              label_en="Legal consultation")
        db.create_menu_option(s, service_number="12349", digit="1", queue_id=q.id, label_zh="调解")  # not hotline
        s.commit()
    return api


GOOD = {"number": "12348", "option": "1", "name": "李女士", "phone": "+8613904310001", "consent": True}


def test_public_services_are_the_hotline_numbers_menus(with_12348: ApiHarness) -> None:
    r = with_12348.client.get("/api/public/services")
    assert r.status_code == 200
    assert r.json() == {"services": [{"number": "12348", "options": [
        {"digit": "1", "label_zh": "法律咨询", "label_en": "Legal consultation"}]}]}


def test_a_ticket_carries_what_the_browser_needs_to_call(with_12348: ApiHarness) -> None:
    c = with_12348.client
    r = c.post("/api/public/calls", json=GOOD, headers={"Host": "hy.example:8000"})
    assert r.status_code == 201, r.text
    t = r.json()
    http_port = with_12348.settings.http_port
    assert t["sip"] == {
        "ws_url": f"ws://hy.example:{http_port}/ws", "target": "sip:12348@127.0.0.1",
        "from_uri": "sip:8613904310001@127.0.0.1", "display_name": "李女士",
        "headers": ["X-Huiyan-Client: web-guest", f"X-Huiyan-Ticket: {t['token']}"], "dtmf": "1"}
    assert (t["label_zh"], t["label_en"]) == ("法律咨询", "Legal consultation")
    proxied = c.post("/api/public/calls", json=GOOD, headers={"Host": "hy.example", "X-Forwarded-Proto": "https"})
    assert proxied.json()["sip"]["ws_url"] == "wss://hy.example/ws"
    status = c.get(f"/api/public/calls/{t['token']}")
    assert status.status_code == 200 and status.json()["state"] == "connecting"
    assert c.get("/api/public/calls/" + "x" * 32).status_code == 404


@pytest.mark.parametrize(("change", "where"), [
    ({"consent": False}, "recording notice"), ({"phone": "12ab"}, "phone"), ({"name": "<b>"}, "name"),
    ({"name": "  "}, "name"), ({"number": "12348; drop"}, "number"), ({"lang": "fr"}, "lang")])
def test_bad_ticket_requests_are_422_with_the_reason(with_12348: ApiHarness, change: dict[str, Any],
                                                     where: str) -> None:
    r = with_12348.client.post("/api/public/calls", json={**GOOD, **change})
    assert r.status_code == 422
    assert where in str(r.json()["detail"])


def test_unknown_service_or_option_is_404(with_12348: ApiHarness) -> None:
    for change in ({"option": "7"}, {"number": "12349"}, {"number": "19999"}):
        r = with_12348.client.post("/api/public/calls", json={**GOOD, **change})
        assert r.status_code == 404, r.text


# ---- /api/me --------------------------------------------------------------------------------------------


def test_me_sip_gives_the_signed_in_user_their_own_account(api: ApiHarness) -> None:
    r = api.client.get("/api/me/sip", headers={**api.auth("agent"), "Host": "127.0.0.1:8000"})
    assert r.status_code == 200
    body = r.json()
    me = api.client.get("/api/me", headers=api.auth("agent")).json()
    assert body["extension"] == me["extension"] and body["password"] == me["sip_password"]
    assert body["uri"] == f"sip:{me['extension']}@127.0.0.1"
    assert body["ws_url"] == f"ws://127.0.0.1:{api.settings.http_port}/ws"


def test_my_call_needs_the_hotline_runtime(api: ApiHarness) -> None:
    r = api.client.get("/api/me/call", headers=api.auth("agent"))
    assert r.status_code == 503 and "hotline" in r.json()["detail"]


def test_notes_are_appended_by_whoever_may(api: ApiHarness) -> None:
    from huiyan.db import hotline as db

    with api.sessions() as s:
        db.upsert_hotline_call(s, "pbx1-1.1", node="pbx1", agent_user_id=api.user_ids["agent"])
        db.upsert_hotline_call(s, "pbx1-1.2", node="pbx1", agent_user_id=None)
        s.commit()
    c = api.client
    r = c.post("/api/me/calls/pbx1-1.1/notes", json={"text": "咨询劳动合同"}, headers=api.auth("agent"))
    assert r.status_code == 200 and r.json()["notes"].endswith("agent1] 咨询劳动合同")
    r = c.post("/api/me/calls/pbx1-1.1/notes", json={"text": "已回访"}, headers=api.auth("supervisor"))
    assert r.status_code == 200 and r.json()["notes"].count("\n") == 1
    assert c.post("/api/me/calls/pbx1-1.2/notes", json={"text": "x"}, headers=api.auth("agent")).status_code == 403
    assert c.post("/api/me/calls/nope/notes", json={"text": "x"}, headers=api.auth("admin")).status_code == 404
    assert c.post("/api/me/calls/pbx1-1.1/notes", json={"text": ""}, headers=api.auth("agent")).status_code == 422


# ---- serving and building --------------------------------------------------------------------------------


def _fake_build(api: ApiHarness) -> Path:
    out = Path(api.settings.data_dir) / "web"
    (out / "assets").mkdir(parents=True)
    (out / "call.html").write_text("<!doctype html><title>call</title>")
    (out / "agent.html").write_text("<!doctype html><title>agent</title>")
    (out / "assets" / "citizen.js").write_text("export {};")
    (out / "BUILD").write_text("digest")
    return out


def test_pages_are_503_until_built_then_served_with_a_strict_policy(api: ApiHarness) -> None:
    c = api.client
    assert c.get("/call").status_code == 503
    _fake_build(api)
    r = c.get("/call")
    assert r.status_code == 200 and "<title>call</title>" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-cache"
    assert c.get("/agent").text.endswith("<title>agent</title>")
    js = c.get("/web/assets/citizen.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    for bad in ("/web/BUILD", "/web/../secrets.json", "/web/%2e%2e/secrets.json", "/web/assets/none.js"):
        assert c.get(bad).status_code == 404, bad
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/call"


def test_the_build_is_skipped_when_its_inputs_did_not_change(tmp_path: Path) -> None:
    out = tmp_path / "web"
    out.mkdir()
    (out / web_build.STAMP).write_text(web_build.source_digest())
    assert web_build.build(out) is False  # no npm, no esbuild: nothing changed


def test_the_build_digest_covers_sources_and_lockfile(tmp_path: Path) -> None:
    src = tmp_path / "web"
    (src / "src").mkdir(parents=True)
    (src / "package.json").write_text("{}")
    (src / "package-lock.json").write_text("{}")
    (src / "src" / "a.js").write_text("1")
    first = web_build.source_digest(src)
    (src / "src" / "a.js").write_text("2")
    second = web_build.source_digest(src)
    (src / "package-lock.json").write_text('{"x": 1}')
    assert len({first, second, web_build.source_digest(src)}) == 3


def test_partials_are_put_in_place_indented_and_an_unknown_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "form.html").write_text("<form>\n  <input id=a>\n\n</form>\n")
    page = "<main>\n    <!-- partial: form -->\n  <p>x</p>\n</main>\n"
    assert web_build.render_page(page, tmp_path) == (
        "<main>\n    <form>\n      <input id=a>\n\n    </form>\n  <p>x</p>\n</main>\n")
    with pytest.raises(web_build.WebBuildError, match="no partial 'nav'"):
        web_build.render_page("<!-- partial: nav -->", tmp_path)
    # the console pages that share the sign-in form get all of it
    src = web_build.SOURCE / "src"
    for page in ("wall.html", "rooms.html", "recordings.html", "reports.html", "admin.html"):
        html = web_build.render_page((src / page).read_text(), src / "partials")
        assert html.count('id="login-form"') == 1 and "partial:" not in html, page


def test_every_page_script_and_i18n_key_exists() -> None:
    """The pages name their scripts and texts; each must exist (a typo would be a blank label in Chinese)."""
    import re

    src = web_build.SOURCE / "src"
    i18n = (src / "lib" / "i18n.js").read_text()
    zh = i18n[i18n.index("zh: {"):i18n.index("en: {")]
    en = i18n[i18n.index("en: {"):]
    keys_zh = set(re.findall(r"^\s+(\w+):", zh, re.M))
    keys_en = set(re.findall(r"^\s+(\w+):", en, re.M))
    assert keys_zh == keys_en
    used: set[str] = set()
    for page in web_build.PAGES:
        html = web_build.render_page((src / page).read_text(), src / "partials")
        used |= set(re.findall(r'data-i18n(?:-placeholder|-title)?="(\w+)"', html))
        for script in re.findall(r'src="/web/assets/(\w+)\.js"', html):
            assert f"{script}.js" in web_build.ENTRIES
    for js in src.rglob("*.js"):
        used |= set(re.findall(r"\bt\('(\w+)'", js.read_text()))
    assert used - keys_zh == set()
