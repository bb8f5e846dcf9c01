"""/api/organisations: the tree of justice bureaus and judicial offices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from huiyan.api.access import Admin, Reader
from huiyan.api.context import DbSession
from huiyan.api.schemas import OrganisationCreate, OrganisationOut, OrganisationPatch, Page
from huiyan.db import store
from huiyan.db.models import OrgLevel

router = APIRouter(prefix="/api/organisations", tags=["organisations"])


@router.get("", response_model=Page[OrganisationOut])
def list_organisations(
    caller: Reader,
    session: DbSession,
    level: OrgLevel | None = None,
    parent_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name, English name or code")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[OrganisationOut]:
    items, total = store.list_organisations(
        session, level=level, parent_id=parent_id, q=q, offset=offset, limit=limit
    )
    return Page(items=[OrganisationOut.of(o) for o in items], total=total, offset=offset, limit=limit)


@router.get("/{org_id}", response_model=OrganisationOut)
def get_organisation(caller: Reader, org_id: int, session: DbSession) -> OrganisationOut:
    return OrganisationOut.of(store.get_organisation(session, org_id))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrganisationOut)
def create_organisation(caller: Admin, body: OrganisationCreate, session: DbSession) -> OrganisationOut:
    org = store.create_organisation(session, **body.model_dump())
    session.commit()
    return OrganisationOut.of(org)


@router.patch("/{org_id}", response_model=OrganisationOut)
def update_organisation(caller: Admin, org_id: int, body: OrganisationPatch, session: DbSession) -> OrganisationOut:
    org = store.update_organisation(session, org_id, body.changes())
    session.commit()
    return OrganisationOut.of(org)


@router.delete("/{org_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_organisation(caller: Admin, org_id: int, session: DbSession) -> Response:
    """Refused (409) while the organisation still has sub-organisations, users or devices."""
    store.delete_organisation(session, org_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
