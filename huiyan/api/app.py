"""Builds the FastAPI application from its parts; nothing global, everything reaches routes via app.state."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker

from huiyan.api import auth, devices, events, hotline_ops, organisations, queue_log, queues, rooms, users
from huiyan.api import dispatch as dispatch_routes
from huiyan.api import health as health_routes
from huiyan.api import checkin as checkin_routes
from huiyan.api import entrypoints as entry_routes
from huiyan.api import mediation
from huiyan.api import me as me_routes
from huiyan.api import public as public_routes
from huiyan.api import recordings as recordings_routes
from huiyan.api import reports as report_routes
from huiyan.api.access import WebSocketDenied, access_rule, deny_websocket
from huiyan.api.context import ApiContext, DirectoryHook, HealthCheck
from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.errors import Conflict, DirectoryError, Invalid, NotFound
from huiyan.db.numbering import ExtensionPlan
from huiyan.web import serve as web_routes
from huiyan.web.calls import WebCalls

DESCRIPTION = """\
Administration and live state of the huiyan (慧眼) video platform for public legal services.

Sign in with `POST /api/auth/login`, then send `Authorization: Bearer <access_token>`.
Live events: WebSocket `/api/events?token=<access_token>` (admins and supervisors), JSON text frames
`{"type": "<EventClass>", ...fields}`; it closes with 4401 when the token is missing, invalid or expires,
and 4403 when the role may not watch.
"""

TAGS = [
    {"name": "health", "description": "Liveness of the PBX, its interfaces and the database."},
    {"name": "auth", "description": "Sign in, and who am I."},
    {"name": "organisations", "description": "The tree of justice bureaus (省/市州/县区) and judicial offices (司法所)."},
    {"name": "users", "description": "Staff accounts; each is also a browser SIP endpoint."},
    {"name": "devices", "description": "Video terminals, softphones, browser seats and kiosks (SIP endpoints)."},
    {"name": "hotline", "description": "12348 hotline: queues, voice menus, members, skills, queue log, calls."},
    {"name": "recordings", "description": "Recordings as evidence: search, Range streaming, share links, audit."},
    {"name": "checkin", "description": "Community-correction check-ins (社区矫正点验): subjects, schedules, check-ins, roll-calls, alerts, education, reports; the subject page's session API."},
    {"name": "entry points", "description": "QR entry points (扫码入口): the citizen page preset to one service, and printable posters."},
    {"name": "events", "description": "WebSocket /api/events (not listed by OpenAPI): the event bus, live."},
]

try:
    VERSION = version("huiyan")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"

_STATUS: dict[type[DirectoryError], int] = {NotFound: 404, Conflict: 409, Invalid: 400}


async def _directory_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session],
    bus: EventBus,
    health: HealthCheck | None = None,
    on_directory_change: DirectoryHook | None = None,
) -> FastAPI:
    """The API. `health()` reports the runtime's parts ({"asterisk": {"ok": ...}, ...}); the database is
    checked here. `on_directory_change()` is awaited after every user/device change (re-render pjsip, reload)."""
    app = FastAPI(title="huiyan 慧眼", version=VERSION, description=DESCRIPTION, openapi_tags=TAGS)
    app.state.huiyan = ApiContext(
        settings=settings,
        sessions=session_factory,
        bus=bus,
        jwt_key=settings.secret("jwt"),
        plan=ExtensionPlan.from_pattern(settings.internal_extension_pattern),
        health=health,
        on_directory_change=on_directory_change,
    )
    app.state.web_calls = WebCalls()  # tickets of the citizen page (huiyan/web/calls.py)
    for router in (
        health_routes.router,
        auth.router,
        organisations.router,
        users.router,
        devices.router,
        queues.router,
        queue_log.router,
        hotline_ops.router,
        rooms.router,
        dispatch_routes.router,
        mediation.router,
        checkin_routes.router,
        entry_routes.router,
        entry_routes.public_router,
        recordings_routes.router,
        report_routes.router,
        events.router,
        me_routes.router,
        public_routes.router,
        web_routes.router,
    ):
        _document_access(router)
        app.include_router(router)
    app.add_exception_handler(DirectoryError, _directory_error)
    app.add_exception_handler(WebSocketDenied, deny_websocket)  # type: ignore[arg-type]
    return app


def _document_access(router: APIRouter) -> None:
    """Show each route's access rule in /docs, from the rule itself (so the two cannot disagree).
    Done before inclusion: including copies the route's description."""
    for route in router.routes:
        rule = access_rule(route)
        if isinstance(route, APIRoute) and rule is not None and "**Access:**" not in route.description:
            route.description = f"{route.description}\n\n**Access:** {rule.describe()}".strip()
