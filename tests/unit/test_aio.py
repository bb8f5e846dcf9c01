"""Services stop promptly even when woken in the same loop turn as they are cancelled (Python 3.11's
wait_for loses that cancellation; huiyan.aio does not)."""

from __future__ import annotations

import asyncio
from typing import Any

from huiyan.acd.model import QueueConfig
from huiyan.aio import stop_tasks, wait_event
from huiyan.bus import EventBus
from huiyan.hotline.service import HotlineConfig, HotlineService, MenuChoice


class MemoryStore:
    def __init__(self, cfg: HotlineConfig) -> None:
        self.cfg = cfg

    def load(self) -> HotlineConfig:
        return self.cfg

    def persist(self, node: str, events: list[Any], calls: list[dict[str, Any]], agents: list[dict[str, Any]]) -> None:
        pass


async def test_wait_event_returns_whether_the_event_was_set() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, ev.set)
    assert await wait_event(ev, 5) is True


async def test_a_loop_woken_and_cancelled_in_the_same_turn_still_stops() -> None:
    ev = asyncio.Event()

    async def loop() -> None:
        while True:
            ev.clear()
            await wait_event(ev, 10)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    ev.set()
    await asyncio.wait_for(stop_tasks(task), 2)
    assert task.cancelled()


async def test_the_hotline_service_stops_right_after_a_kick() -> None:
    choice = MenuChoice("1", "q1", {}, label_zh="法律咨询", label_en="Legal consultation")
    cfg = HotlineConfig([QueueConfig("q1", "法律咨询")], [], {"12348": {"1": choice}})
    for _ in range(3):
        svc = HotlineService("pbx1", MemoryStore(cfg), EventBus())
        await svc.start()
        await asyncio.sleep(0.01)
        svc.kick()
        stopping = asyncio.ensure_future(svc.stop())
        done, _ = await asyncio.wait({stopping}, timeout=2)  # (asyncio.wait cancels nothing on timeout)
        assert stopping in done, "stop() did not finish: the distributor loop lost its cancellation"
        assert svc._task is not None and svc._task.cancelled()  # noqa: SLF001
