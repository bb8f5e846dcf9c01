"""POST /api/auth/login (username + password → bearer token) and GET /api/me."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from huiyan.api.access import PUBLIC, AnyUser, issue_token
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import LoginIn, TokenOut, UserOut
from huiyan.db import store
from huiyan.db.passwords import hash_password, needs_rehash, verify_password

router = APIRouter(tags=["auth"])


@router.post(
    "/api/auth/login",
    dependencies=[Depends(PUBLIC)],
    response_model=TokenOut,
    responses={401: {"description": "wrong username or password"}},
)
def login(body: LoginIn, ctx: Ctx, session: DbSession) -> TokenOut:
    user = store.find_user(session, body.username)
    ok = verify_password(user.password_hash if user else None, body.password)
    if user is None or not ok or not user.active:
        # One message for all three: the response must not reveal which usernames exist.
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong username or password", {"WWW-Authenticate": "Bearer"}
        )
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body.password)
        session.commit()
    ttl = ctx.settings.token_ttl_seconds
    return TokenOut(access_token=issue_token(user, key=ctx.jwt_key, ttl_seconds=ttl), role=user.role, expires_in=ttl)


@router.get("/api/me", response_model=UserOut)
def me(caller: AnyUser, session: DbSession) -> UserOut:
    """The signed-in user, with their own SIP password: the browser client registers with it."""
    return UserOut.of(store.get_user(session, caller.user_id), with_secret=True)
