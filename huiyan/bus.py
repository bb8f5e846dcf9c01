"""In-process publish/subscribe of typed events (AMI events, directory changes) to whoever listens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class EventBus:
    """Fan-out to subscriber queues. A slow subscriber loses its oldest events, never blocks the publisher."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Any]] = set()
        self._callbacks: list[Callable[[Any], None]] = []
        self._maxsize = maxsize

    def publish(self, event: Any) -> None:
        for q in list(self._queues):
            if q.full():
                try:
                    q.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            q.put_nowait(event)
        for cb in list(self._callbacks):
            try:
                cb(event)
            except Exception:  # a broken listener must not break the publisher
                log.exception("event listener failed")

    def on(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call `callback(event)` synchronously for each event; returns an unsubscribe function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def subscribe(self) -> asyncio.Queue[Any]:
        q: asyncio.Queue[Any] = asyncio.Queue(self._maxsize)
        self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Any]) -> None:
        self._queues.discard(q)
