"""End-to-end fixtures: the real controller and Asterisk (as in tests/integration), the built browser clients,
and Debian's Chromium driven by Playwright, with a fake camera and microphone.

The controller here is package-scoped: it stops when the e2e tests are done, so it never runs beside the
integration tests' own (one Asterisk at a time on a 2-core machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from huiyan.config.settings import Settings
from huiyan.pbx.install import main_progress
from tests.integration.conftest import REPO, Running
from tests.integration.sipp import free_port

CHROMIUM = os.environ.get("HUIYAN_CHROMIUM", "/usr/bin/chromium")
SCREENS = REPO / "var" / "test-artifacts" / "screens"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
# python.md: what Chromium needs on these machines (closed network, root, no GPU), plus fake media devices.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
AGENT_PASSWORD = "agent-password-12348"


@pytest.fixture(scope="package")
def huiyan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The same controller as tests/integration's `huiyan`, for this package only."""
    from huiyan.setup import run_setup

    data = tmp_path_factory.mktemp("huiyan-e2e")
    root = Path(os.environ.get("HUIYAN_ASTERISK_ROOT", REPO / "var" / "asterisk-root"))
    settings = Settings(
        data_dir=data, asterisk_root=root, sip_port=free_port(), http_port=free_port(),
        ami_port=free_port(), agi_port=free_port(), api_port=free_port(),
        rtp_start=free_port() // 2 * 2, database_url=None,
    )
    settings = settings.model_copy(update={"rtp_end": settings.rtp_start + 400})
    run_setup(settings, main_progress)  # builds the browser clients into data/web as well
    running = Running(settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Agent:
    user_id: int
    username: str
    password: str
    extension: str


@dataclass
class Hotline12348:
    queue_id: int
    agent: Agent
    options: dict[str, str] = field(default_factory=dict)  # digit -> label_zh


@pytest.fixture(scope="package")
def hotline(huiyan: Running) -> Hotline12348:
    """12348 with a two-option menu, each to its own queue, and one agent in the first queue."""
    from huiyan.db import hotline as db
    from huiyan.db import store

    with huiyan.ctl.session_factory() as s:
        q1 = db.create_queue(s, name="法律咨询", name_en="Legal consultation", ring_timeout_s=30, wrapup_s=60,
                             announce_every_s=0)
        q2 = db.create_queue(s, name="法律援助", name_en="Legal aid", ring_timeout_s=30, announce_every_s=0)
        db.create_menu_option(s, service_number="12348", digit="1", queue_id=q1.id, label_zh="法律咨询",
                              label_en="Legal consultation")
        db.create_menu_option(s, service_number="12348", digit="2", queue_id=q2.id, label_zh="法律援助",
                              label_en="Legal aid")
        u = store.create_user(s, username="zhang.agent", password=AGENT_PASSWORD, role="agent",
                              display_name="张坐席")
        db.add_queue_member(s, q1.id, u.id)
        s.commit()
        agent = Agent(u.id, u.username, AGENT_PASSWORD, u.extension)
        queue_id = q1.id
    huiyan.call(huiyan.ctl.apply_directory())  # the agent's endpoint
    huiyan.call(huiyan.ctl.hotline.reload())
    return Hotline12348(queue_id, agent, {"1": "法律咨询", "2": "法律援助"})


class Pages:
    """Browser pages that record console errors and uncaught exceptions; none may occur."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        self.expected: list[tuple[str, str]] = []

    def open(self, url: str, *, viewport: dict[str, int], name: str) -> Any:
        ctx = self.browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{name}: console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{name}: uncaught: {e}"))
        page.goto(url)
        return page

    def expect_error(self, name: str, text: str) -> None:
        """An error this test provokes on purpose (e.g. Chromium's own line for a refused WebSocket)."""
        self.expected.append((f"{name}: ", text))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(e.startswith(n) and t in e for n, t in self.expected)]

    def close(self) -> None:
        for ctx in self.contexts:
            try:
                ctx.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `./quickstart.sh test` installs Debian's chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser_factory(playwright: Any) -> Iterator[Any]:
    """Launches Debian's Chromium; `fake_ui=False` leaves out the flag that grants camera/microphone."""
    launched: list[Any] = []

    def launch(*, fake_ui: bool = True) -> Any:
        args = [a for a in CHROMIUM_ARGS if a != "--headless"]  # Playwright adds --headless itself
        if not fake_ui:
            args.remove("--use-fake-ui-for-media-stream")
        # Playwright gives each browser a new, empty --user-data-dir of its own.
        b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        launched.append(b)
        return b

    yield launch
    for b in launched:
        b.close()


@pytest.fixture(scope="package")
def browser(browser_factory: Any) -> Any:
    return browser_factory()


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    p = Pages(browser)
    try:
        yield p
        assert p.unexpected() == [], "pages logged errors:\n" + "\n".join(p.unexpected())
    finally:
        p.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the page at its current size (and at the other of phone/desktop) under var/test-artifacts."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    path = SCREENS / f"{name}-{size['width']}x{size['height']}.png"
    page.screenshot(path=str(path))
    return path


def wait_until(pred: Any, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
