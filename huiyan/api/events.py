"""WS /api/events?token=...: the event bus, live, as JSON text frames {"type": <class name>, ...fields}."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel

from huiyan.api.access import WS_UNAUTHENTICATED, EventWatcher
from huiyan.api.context import Ctx

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_event(event: Any) -> str:
    """A dataclass (or pydantic model) becomes its fields; anything else its str() under "data".
    "type" is always the class name, even if the event has a field of that name."""
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        body: dict[str, Any] = dataclasses.asdict(event)
    elif isinstance(event, BaseModel):
        body = event.model_dump(mode="json")
    else:
        body = {"data": str(event)}
    body["type"] = type(event).__name__
    return json.dumps(body, ensure_ascii=False, default=_default)


_NOTHING = object()


async def _send_events(websocket: WebSocket, queue: asyncio.Queue[Any], expires_at: float) -> None:
    while True:
        remaining = expires_at - time.time()
        if remaining <= 0:
            await websocket.close(WS_UNAUTHENTICATED, "token expired")
            return
        event: Any = _NOTHING
        with anyio.move_on_after(remaining):
            event = await queue.get()
        if event is not _NOTHING:
            await websocket.send_text(encode_event(event))


async def _until_disconnect(websocket: WebSocket) -> None:
    # Client messages are ignored; reading them is how we notice the client has gone.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@router.websocket("/api/events")
async def events(websocket: WebSocket, caller: EventWatcher, ctx: Ctx) -> None:
    """Closes with 4401 for a missing, invalid or expired token, 4403 for a role not allowed."""
    queue = ctx.bus.subscribe()  # before accept: nothing published after the handshake is missed
    try:
        await websocket.accept()
        async with anyio.create_task_group() as tg:

            async def first_to_finish_ends_both(job: Callable[[], Awaitable[None]]) -> None:
                try:
                    await job()
                except Exception as exc:  # the client went away mid-send: nothing to report to anyone
                    log.debug("event stream to %s ended: %r", caller.username, exc)
                tg.cancel_scope.cancel()

            tg.start_soon(first_to_finish_ends_both, lambda: _send_events(websocket, queue, caller.expires_at))
            tg.start_soon(first_to_finish_ends_both, lambda: _until_disconnect(websocket))
    finally:
        ctx.bus.unsubscribe(queue)
