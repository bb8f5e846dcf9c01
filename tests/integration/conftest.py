"""One real Asterisk per test session, driven by the real controller (AMI + FastAGI + API)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from huiyan.config.settings import Settings
from huiyan.pbx.install import main_progress
from tests.integration.sipp import free_port

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


class Running:
    """The controller running on its own event loop thread, plus a record of every bus event."""

    def __init__(self, settings: Settings) -> None:
        from huiyan.runtime import Controller

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="huiyan-controller", daemon=True)
        self.thread.start()
        self.ctl = Controller(settings)
        self.events: list[Any] = []
        self.arrived: dict[int, float] = {}  # id(event) -> monotonic arrival time
        self._lock = threading.Lock()
        self.ctl.bus.on(self._record)
        self.start_seconds = 0.0

    def _record(self, event: Any) -> None:
        with self._lock:
            self.events.append(event)
            self.arrived[id(event)] = time.monotonic()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        t0 = time.monotonic()
        try:
            self.call(self.ctl.start(), timeout=120)
        except BaseException:
            # Do not leave an Asterisk (or half a controller) behind for the next session to trip over.
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        self.errors_at_start = self.ctl.pbx.errors_in_log()

    def stop(self) -> None:
        try:
            self.call(self.ctl.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def wait_event(self, pred: Callable[[Any], bool], timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e in self.events:
                    if pred(e):
                        return e
            time.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s")

    def find_events(self, pred: Callable[[Any], bool]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if pred(e)]

    @property
    def api(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def sip_target(self) -> str:
        return f"{self.settings.sip_host}:{self.settings.sip_port}"


@pytest.fixture(scope="session")
def huiyan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    from huiyan.setup import run_setup

    data = tmp_path_factory.mktemp("huiyan-data")
    root = Path(os.environ.get("HUIYAN_ASTERISK_ROOT", REPO / "var" / "asterisk-root"))
    settings = Settings(
        data_dir=data, asterisk_root=root, sip_port=free_port(), http_port=free_port(),
        ami_port=free_port(), agi_port=free_port(), api_port=free_port(),
        rtp_start=free_port() // 2 * 2, database_url=None,
        ami_all_events=True,  # the tests also look at AGIExec and VarSet events
    )
    settings = settings.model_copy(update={"rtp_end": settings.rtp_start + 400})
    run_setup(settings, main_progress)
    running = Running(settings)
    running.start()
    try:
        yield running
    finally:
        running.stop()
