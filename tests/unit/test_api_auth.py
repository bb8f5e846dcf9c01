"""Sign-in and /api/me."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from conftest import ApiHarness



def test_login_returns_a_bearer_token_that_works(api: ApiHarness) -> None:
    r = api.client.post("/api/auth/login", json={"username": "supervisor1", "password": "supervisor-password"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["role"] == "supervisor"
    assert body["expires_in"] == api.settings.token_ttl_seconds
    claims = jwt.decode(body["access_token"], api.settings.secret("jwt"), algorithms=["HS256"], issuer="huiyan")
    assert claims["exp"] - claims["iat"] == api.settings.token_ttl_seconds
    me = api.client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "supervisor1"


def test_bad_credentials_are_401_without_saying_which_part_was_wrong(api: ApiHarness) -> None:
    admin = api.auth("admin")
    api.client.patch(f"/api/users/{api.user_ids['lawyer']}", json={"active": False}, headers=admin)
    for username, password in [("admin1", "wrong"), ("nobody", "admin-password"), ("lawyer1", "lawyer-password")]:
        r = api.client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 401, (username, r.text)
        assert r.json()["detail"] == "wrong username or password"


def test_me_shows_my_own_sip_credentials_but_never_a_password_hash(api: ApiHarness) -> None:
    r = api.client.get("/api/me", headers=api.auth("agent"))
    assert r.status_code == 200
    me = r.json()
    assert me["role"] == "agent" and me["extension"].startswith("8")
    assert len(me["sip_password"]) >= 12  # the browser client registers with it
    assert "password_hash" not in me and "password" not in me
