"""/api/users: staff accounts; each is also a browser SIP endpoint, so every change re-renders pjsip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from huiyan.api.access import Admin, Reader
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import Page, UserCreate, UserOut, UserPatch
from huiyan.db import store
from huiyan.db.events import DirectoryChanged
from huiyan.db.models import Role

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("", response_model=Page[UserOut])
def list_users(
    caller: Reader,
    session: DbSession,
    role: Role | None = None,
    organisation_id: int | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the username, name or extension")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[UserOut]:
    items, total = store.list_users(
        session, role=role, organisation_id=organisation_id, active=active, q=q, offset=offset, limit=limit
    )
    return Page(items=[UserOut.of(u) for u in items], total=total, offset=offset, limit=limit)


@router.get("/{user_id}", response_model=UserOut)
def get_user(caller: Reader, user_id: int, session: DbSession) -> UserOut:
    return UserOut.of(store.get_user(session, user_id), with_secret=caller.is_admin)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(caller: Admin, body: UserCreate, ctx: Ctx, session: DbSession) -> UserOut:
    user = store.create_user(session, **body.model_dump(), plan=ctx.plan)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("user", "created", user.id, user.extension))
    return UserOut.of(user, with_secret=True)


@router.patch("/{user_id}", response_model=UserOut)
def update_user(caller: Admin, user_id: int, body: UserPatch, ctx: Ctx, session: DbSession) -> UserOut:
    user = store.update_user(session, user_id, body.changes(), plan=ctx.plan)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("user", "updated", user.id, user.extension))
    return UserOut.of(user, with_secret=True)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(caller: Admin, user_id: int, ctx: Ctx, session: DbSession) -> Response:
    """Refused (409) for the last active admin."""
    user = store.delete_user(session, user_id)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("user", "deleted", user_id, user.extension))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
