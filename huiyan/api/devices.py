"""/api/devices: bureau terminals, softphones, browser seats and kiosks; every change re-renders pjsip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from huiyan.api.access import Admin, Reader
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import DeviceCreate, DeviceOut, DevicePatch, Page
from huiyan.db import store
from huiyan.db.events import DirectoryChanged
from huiyan.db.models import DeviceKind

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("", response_model=Page[DeviceOut])
def list_devices(
    caller: Reader,
    session: DbSession,
    organisation_id: int | None = None,
    kind: DeviceKind | None = None,
    department: str | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the serial, name, extension or model")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[DeviceOut]:
    """No SIP passwords in lists, not even for admins: fetch the one device you are configuring."""
    items, total = store.list_devices(
        session,
        organisation_id=organisation_id,
        kind=kind,
        department=department,
        active=active,
        q=q,
        offset=offset,
        limit=limit,
    )
    return Page(items=[DeviceOut.of(d) for d in items], total=total, offset=offset, limit=limit)


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(caller: Reader, device_id: int, session: DbSession) -> DeviceOut:
    return DeviceOut.of(store.get_device(session, device_id), with_secret=caller.is_admin)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceOut)
def create_device(caller: Admin, body: DeviceCreate, ctx: Ctx, session: DbSession) -> DeviceOut:
    """The response carries the SIP credentials to configure the terminal with; it can register once this returns."""
    device = store.create_device(session, **body.model_dump(), plan=ctx.plan)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("device", "created", device.id, device.extension))
    return DeviceOut.of(device, with_secret=True)


@router.patch("/{device_id}", response_model=DeviceOut)
def update_device(caller: Admin, device_id: int, body: DevicePatch, ctx: Ctx, session: DbSession) -> DeviceOut:
    device = store.update_device(session, device_id, body.changes(), plan=ctx.plan)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("device", "updated", device.id, device.extension))
    return DeviceOut.of(device, with_secret=True)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(caller: Admin, device_id: int, ctx: Ctx, session: DbSession) -> Response:
    device = store.delete_device(session, device_id)
    session.commit()
    ctx.announce_from_thread(DirectoryChanged("device", "deleted", device_id, device.extension))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
