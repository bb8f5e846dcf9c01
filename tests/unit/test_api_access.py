"""Every route declares who may call it, and the rule holds: 401 without a token, 403 for a wrong role,
422 with a reason for a bad body. The route list comes from the app itself, so a new route is covered
(and one without a rule fails) without editing this file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
import tempfile
import time

import jwt
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import sessionmaker
from starlette.websockets import WebSocketDisconnect

from huiyan.api import create_app
from huiyan.api.access import RouteAccess, route_table
from huiyan.bus import EventBus
from huiyan.config.settings import Settings
from huiyan.db.models import Role

if TYPE_CHECKING:
    from conftest import ApiHarness

PUBLIC_ROUTES = {("GET", "/healthz"), ("POST", "/api/auth/login"),
                 ("GET", "/api/recordings/shared/{token}"),  # a signed, expiring share link is its own credential
                 # the browser clients' static files, and the citizen page's own API (huiyan/api/public.py)
                 ("GET", "/"), ("GET", "/call"), ("GET", "/agent"), ("GET", "/web/{path:path}"),
                 ("GET", "/wall"), ("GET", "/rooms"), ("GET", "/admin"), ("GET", "/recordings"), ("GET", "/reports"),
                 ("GET", "/checkin"),
                 ("GET", "/api/public/services"), ("POST", "/api/public/calls"), ("GET", "/api/public/calls/{token}"),
                 # what a scanned QR entry point presets on the citizen page (huiyan/api/entrypoints.py)
                 ("GET", "/api/public/entries/{slug}"),
                 # a supervised person has no staff account: the PIN (or a one-time code) starts their check-in
                 ("POST", "/api/checkin/sessions")}
DOCS_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _table() -> list[RouteAccess]:
    with tempfile.TemporaryDirectory() as d:
        app = create_app(Settings(data_dir=d), session_factory=sessionmaker(), bus=EventBus())
        return route_table(app)


TABLE = _table()
HTTP = [(m, r) for r in TABLE if not r.websocket and r.rule is not None for m in sorted(r.methods)]
PROTECTED = [(m, r) for m, r in HTTP if not r.rule.public]  # type: ignore[union-attr]
RESTRICTED = [(m, r) for m, r in PROTECTED if r.rule.roles is not None]  # type: ignore[union-attr]
WITH_BODY = [(m, r) for m, r in HTTP if getattr(r.route, "body_field", None) is not None]
WEBSOCKETS = [r for r in TABLE if r.websocket]


def _ids(items: list[tuple[str, RouteAccess]]) -> list[str]:
    return [f"{m} {r.path}" for m, r in items]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _outsider(r: RouteAccess) -> str:
    assert r.rule is not None and r.rule.roles is not None
    return next(role.value for role in Role if role not in r.rule.roles)


def test_every_route_has_an_access_rule_and_only_the_expected_ones_are_public() -> None:
    missing = [r.path for r in TABLE if r.rule is None and r.path not in DOCS_ROUTES]
    assert missing == [], f"routes without an access rule: {missing}"
    public = {(m, r.path) for m, r in HTTP if r.rule is not None and r.rule.public}
    assert public == PUBLIC_ROUTES
    assert len(PROTECTED) >= 16 and WEBSOCKETS, "the route table looks empty: is route_table still seeing routes?"


def test_a_route_without_a_rule_would_be_noticed() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/api/forgotten")

    @router.get("")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    assert [r.rule for r in route_table(app) if r.path == "/api/forgotten"] == [None]


@pytest.mark.parametrize(("method", "route"), PROTECTED, ids=_ids(PROTECTED))
def test_no_token_is_401(api: ApiHarness, method: str, route: RouteAccess) -> None:
    r = api.client.request(method, _url(route.path))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert "not signed in" in r.json()["detail"]
    r = api.client.request(method, _url(route.path), headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid token"


@pytest.mark.parametrize(("method", "route"), RESTRICTED, ids=_ids(RESTRICTED))
def test_wrong_role_is_403_with_a_reason(api: ApiHarness, method: str, route: RouteAccess) -> None:
    role = _outsider(route)
    r = api.client.request(method, _url(route.path), headers=api.auth(role))
    assert r.status_code == 403, r.text
    assert f"role '{role}' may not do this" in r.json()["detail"]


@pytest.mark.parametrize(("method", "route"), WITH_BODY, ids=_ids(WITH_BODY))
def test_bad_body_is_422_with_a_reason(api: ApiHarness, method: str, route: RouteAccess) -> None:
    for body in ([], {"no_such_field": 1}):
        r = api.client.request(method, _url(route.path), json=body, headers=api.auth("admin"))
        assert r.status_code == 422, r.text
        errors = r.json()["detail"]
        assert errors and all(e["msg"] for e in errors)


@pytest.mark.parametrize("route", WEBSOCKETS, ids=[r.path for r in WEBSOCKETS])
def test_websocket_without_token_or_with_wrong_role_is_closed(api: ApiHarness, route: RouteAccess) -> None:
    cases = [("", 4401), ("?token=garbage", 4401)]
    if route.rule is not None and route.rule.roles is not None:
        cases.append((f"?token={api.tokens[_outsider(route)]}", 4403))
    for query, code in cases:
        with api.client.websocket_connect(route.path + query) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == code, query


def test_tokens_that_expired_or_were_signed_elsewhere_are_refused(api: ApiHarness) -> None:
    now = int(time.time())
    claims = {"iss": "huiyan", "sub": str(api.user_ids["admin"]), "role": "admin", "iat": now - 100}
    expired = jwt.encode({**claims, "exp": now - 10}, api.settings.secret("jwt"), algorithm="HS256")
    forged = jwt.encode({**claims, "exp": now + 100}, "some other key, long enough for HS256 anyway", algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": now + 100}, None, algorithm="none")
    for token, detail in [(expired, "token expired"), (forged, "invalid token"), (unsigned, "invalid token")]:
        r = api.client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and detail in r.json()["detail"]


def test_a_disabled_or_demoted_account_loses_access_at_once(api: ApiHarness) -> None:
    admin = api.auth("admin")
    sup = api.user_ids["supervisor"]
    assert api.client.get("/api/users", headers=api.auth("supervisor")).status_code == 200
    assert api.client.patch(f"/api/users/{sup}", json={"role": "agent"}, headers=admin).status_code == 200
    assert api.client.get("/api/users", headers=api.auth("supervisor")).status_code == 403
    assert api.client.patch(f"/api/users/{sup}", json={"active": False}, headers=admin).status_code == 200
    assert api.client.get("/api/me", headers=api.auth("supervisor")).status_code == 401
