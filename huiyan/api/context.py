"""What every route needs from the running process, held in `app.state.huiyan` (no globals)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.from_thread
from fastapi import Depends
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.numbering import ExtensionPlan

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, dict[str, Any]]]]
DirectoryHook = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    sessions: sessionmaker[Session]
    bus: EventBus
    jwt_key: str
    plan: ExtensionPlan
    health: HealthCheck | None = None
    on_directory_change: DirectoryHook | None = None

    async def announce(self, event: Any) -> None:
        """The directory changed: let the runtime re-render pjsip (awaited, so the new device can register
        once the response arrives), then tell the listeners on the bus."""
        if self.on_directory_change is not None:
            try:
                await self.on_directory_change()
            except Exception:
                # The change is committed; failing the request would only make the client retry into a 409.
                log.exception("re-rendering the directory after %r failed", event)
        self.bus.publish(event)

    def announce_from_thread(self, event: Any) -> None:
        """`announce` from a sync route (a threadpool worker): runs it on the event loop and waits."""
        anyio.from_thread.run(self.announce, event)


async def get_context(conn: HTTPConnection) -> ApiContext:
    ctx: ApiContext = conn.app.state.huiyan
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def db_session(ctx: Ctx) -> Iterator[Session]:
    """One session per request; whatever the route did not commit is rolled back."""
    with ctx.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]
