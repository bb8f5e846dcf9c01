"""Small asyncio helpers that behave the same on every Python we support."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds pass; True if it was set.

    Not `asyncio.wait_for(event.wait(), timeout)`: on Python 3.11, when the task is cancelled in the same
    loop turn as the event is set, wait_for returns the inner result and the cancellation is lost, so a
    service loop built on it cannot be stopped (fixed in 3.12). `asyncio.wait` never swallows it."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()


async def stop_tasks(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel background tasks and wait for them to end. A cancellation of the caller itself is not
    swallowed (unlike `try: await t / except CancelledError: pass`)."""
    live = [t for t in tasks if t is not None]
    for t in live:
        t.cancel()
    if live:
        await asyncio.gather(*live, return_exceptions=True)


class BackgroundTasks:
    """A service's fire-and-forget coroutines: kept referenced while they run (the loop holds only weak
    references), a failure logged with the service's name, all cancelled together when the service stops.
    Spawning with no running loop (unit tests of a service's state alone) closes the coroutine unrun."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s: background task failed", self._what, exc_info=task.exception())
