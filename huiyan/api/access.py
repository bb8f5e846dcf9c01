"""Who may call what: bearer tokens (JWT, HS256) and the access rule every route declares.

A route states its rule in its signature, Wazo `@required_acl` style, by the type of its first parameter:

    def create_device(caller: Admin, body: DeviceCreate, ...)     # admins only
    def list_devices(caller: Reader, ...)                         # admins and supervisors
    def me(caller: AnyUser, ...)                                  # any signed-in user
    @router.post("/api/auth/login", dependencies=[Depends(PUBLIC)])  # explicitly open

`route_table(app)` finds the rules again, so a test can insist that every route has one.
The user is re-read from the database on each request: a deactivated account or a changed role takes
effect at once, not when the token expires.
"""

# No `from __future__ import annotations` here: FastAPI resolves the annotations of a callable *instance*
# (the rules below) without module globals, so they must be real objects.

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi.routing
import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.db.models import Role, User

ISSUER = "huiyan"
ALGORITHM = "HS256"
WS_UNAUTHENTICATED = 4401  # WebSocket close codes: 4000 + the HTTP status they stand for
WS_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in caller of a request."""

    user_id: int
    username: str
    role: Role
    expires_at: float  # token expiry, epoch seconds

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class NotAuthenticated(Exception):
    pass


class Forbidden(Exception):
    pass


class WebSocketDenied(Exception):
    """Raised by a WebSocket access rule; the app accepts then closes with `code`, which browsers can read."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def issue_token(user: User, *, key: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": str(user.id),
        "name": user.username,
        "role": user.role.value,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_token(token: str, *, key: str) -> dict[str, Any]:
    """The token's claims; raises NotAuthenticated with the reason."""
    try:
        return jwt.decode(
            token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "iat", "sub", "iss"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("token expired: log in again") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("invalid token") from exc


class AccessRule:
    """Base of the rules; `roles` None means any signed-in user."""

    public: bool = False

    def __init__(self, *roles: Role) -> None:
        self.roles: frozenset[Role] | None = frozenset(roles) if roles else None

    def allows(self, role: Role) -> bool:
        return self.roles is None or role in self.roles

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.roles is None:
            return "any signed-in user"
        return "roles: " + ", ".join(sorted(r.value for r in self.roles))

    def authorize(self, session: Session, key: str, token: str | None) -> Principal:
        if not token:
            raise NotAuthenticated("not signed in: send 'Authorization: Bearer <token>' from /api/auth/login")
        claims = decode_token(token, key=key)
        sub = str(claims["sub"])
        user = session.get(User, int(sub)) if sub.isdigit() else None
        if user is None or not user.active:
            raise NotAuthenticated("this account no longer exists or is disabled")
        if not self.allows(user.role):
            raise Forbidden(f"role {user.role.value!r} may not do this; allowed {self.describe()}")
        return Principal(user.id, user.username, user.role, float(claims["exp"]))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class Public(AccessRule):
    """Open to anyone; stated explicitly so that a route with no rule at all stands out."""

    public = True

    def __call__(self) -> None:
        return None


_bearer = HTTPBearer(auto_error=False, description="the access_token from POST /api/auth/login")


class Allow(AccessRule):
    """HTTP routes: 401 without a valid token, 403 (with the reason) for a role not listed."""

    def __call__(
        self,
        ctx: Ctx,
        session: DbSession,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        try:
            return self.authorize(session, ctx.jwt_key, credentials.credentials if credentials else None)
        except NotAuthenticated as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from exc
        except Forbidden as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc


class AllowWebSocket(AccessRule):
    """WebSocket routes: the token comes as `?token=` (browsers cannot set headers on a WebSocket)."""

    async def __call__(
        self, websocket: WebSocket, ctx: Ctx, token: Annotated[str | None, Query()] = None
    ) -> Principal:
        try:
            return await run_in_threadpool(self._authorize, ctx, token)
        except NotAuthenticated as exc:
            raise WebSocketDenied(WS_UNAUTHENTICATED, str(exc)) from exc
        except Forbidden as exc:
            raise WebSocketDenied(WS_FORBIDDEN, str(exc)) from exc

    def _authorize(self, ctx: ApiContext, token: str | None) -> Principal:
        with ctx.sessions() as session:
            return self.authorize(session, ctx.jwt_key, token)


async def deny_websocket(websocket: WebSocket, exc: WebSocketDenied) -> None:
    """Exception handler: accept first, so the client sees our close code rather than a bare 403/1006."""
    await websocket.accept()
    await websocket.close(code=exc.code, reason=exc.reason.encode()[:120].decode(errors="ignore"))


PUBLIC = Public()
ADMINS = Allow(Role.ADMIN)
READERS = Allow(Role.ADMIN, Role.SUPERVISOR)
SIGNED_IN = Allow()

Admin = Annotated[Principal, Depends(ADMINS)]
Reader = Annotated[Principal, Depends(READERS)]
AnyUser = Annotated[Principal, Depends(SIGNED_IN)]
EventWatcher = Annotated[Principal, Depends(AllowWebSocket(Role.ADMIN, Role.SUPERVISOR))]


def _walk(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _walk(dep)


def access_rule(route: Any) -> AccessRule | None:
    """The rule a route declared, or None (a route FastAPI itself added, like /docs, or a forgotten one).
    Takes a route or a `fastapi.routing.RouteContext`."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None
    rules = {id(call): call for call in _walk(dependant) if isinstance(call, AccessRule)}
    if len(rules) > 1:
        raise ValueError(f"route {route.path} declares more than one access rule: {list(rules.values())}")
    return next(iter(rules.values()), None)


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """One entry of the app's route table: where, how, and who may."""

    path: str
    methods: frozenset[str]  # empty for a WebSocket
    websocket: bool
    rule: AccessRule | None
    route: Any  # the effective route (or RouteContext): .dependant, .body_field


def route_table(app: FastAPI) -> list[RouteAccess]:
    """Every route of `app` with its access rule, including those inside included routers."""
    # FastAPI >= 0.16x keeps included routers nested in app.routes; older ones flatten them.
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(iter_contexts(app.routes)) if iter_contexts else list(app.routes)
    table = []
    for route in routes:
        original = getattr(route, "original_route", route)
        websocket = isinstance(original, WebSocketRoute)
        methods = frozenset(getattr(route, "methods", None) or ())
        table.append(RouteAccess(str(route.path), methods, websocket, access_rule(route), route))
    return table
