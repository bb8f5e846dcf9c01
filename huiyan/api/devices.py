"""/api/devices: bureau terminals, softphones, browser seats and kiosks; every change re-renders pjsip.
Also their presence (online, last_seen), bulk CSV import and the seed's allocation plan (huiyan/directory/)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import Admin, Reader
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import (
    DeviceCreate,
    DeviceImportOut,
    DeviceOut,
    DevicePatch,
    DevicePlanOut,
    ImportRowError,
    Page,
    PlanDepartmentOut,
    PlanLevelOut,
    PlanOrgOut,
)
from huiyan.db import store
from huiyan.db.events import DirectoryChanged
from huiyan.db.models import DeviceKind
from huiyan.directory import csv_import
from huiyan.directory.plan import load_plan

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("", response_model=Page[DeviceOut])
def list_devices(
    caller: Reader,
    session: DbSession,
    organisation_id: int | None = None,
    kind: DeviceKind | None = None,
    department: str | None = None,
    active: bool | None = None,
    online: Annotated[bool | None, Query(description="registered now (true) or not (false)")] = None,
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
        online=online,
        q=q,
        offset=offset,
        limit=limit,
    )
    return Page(items=[DeviceOut.of(d) for d in items], total=total, offset=offset, limit=limit)


@router.get("/plan", response_model=DevicePlanOut)
def allocation_plan(caller: Reader, session: DbSession) -> DevicePlanOut:
    """The seed's plan (terminals per department for the province, each city, each county) vs the devices
    each organisation has, per department; devices in unplanned departments count as "other"."""
    plan = load_plan(session)
    return DevicePlanOut(
        planned=plan.planned, actual=plan.actual, missing=plan.missing,
        levels=[PlanLevelOut(level=lv.level, organisations=lv.organisations, planned_each=lv.planned_each,
                             planned=lv.planned, actual=lv.actual, missing=lv.missing) for lv in plan.levels],
        organisations=[
            PlanOrgOut(organisation_id=o.organisation_id, code=o.code, name=o.name, level=o.level,
                       planned=o.planned, actual=o.actual, missing=o.missing,
                       departments=[PlanDepartmentOut(department=d.department, label=d.label, planned=d.planned,
                                                      actual=d.actual, missing=d.missing) for d in o.departments])
            for o in plan.organisations
        ],
    )


_IMPORT_DOC = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"},
                                 "example": "org_code,kind,serial,name\n220100,terminal,XY-0001,长春市司法局 会议室\n"}},
    },
}


def _rejected(errors: list[csv_import.RowError]) -> JSONResponse:
    body = {"detail": "the file was not imported: nothing was created",
            "errors": [ImportRowError(row=e.row, column=e.column, reason=e.reason).model_dump() for e in errors]}
    return JSONResponse(body, status_code=422)


@router.post(
    "/import", status_code=status.HTTP_201_CREATED, response_model=DeviceImportOut, openapi_extra=_IMPORT_DOC,
    responses={422: {"description": "`errors`: [{row, column, reason}] for every problem; nothing created"}},
)
async def import_devices(caller: Admin, request: Request, ctx: Ctx) -> DeviceImportOut | JSONResponse:
    """Bulk import: the CSV file's bytes as the body (UTF-8 or GBK). Columns org_code, kind, serial, name
    [, department, model, extension]. All rows are checked first; one bad row and nothing is created. The
    rows are created in one transaction, then the PBX configuration is rendered and reloaded once."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "send the CSV file's bytes as the body (Content-Type: text/csv), not a form")
    data = await request.body()

    def work() -> list[DeviceOut] | list[csv_import.RowError]:
        with ctx.sessions() as session:
            try:
                checked = csv_import.check_file(session, data, ctx.plan)
                if checked.errors:
                    return checked.errors
                devices = csv_import.create_all(session, checked.rows, ctx.plan)
                session.commit()
            except csv_import.ImportRejected as e:
                session.rollback()
                return e.errors
            return [DeviceOut.of(d, with_secret=True) for d in devices]

    result = await run_in_threadpool(work)
    if not result or isinstance(result[0], csv_import.RowError):
        return _rejected(result)  # type: ignore[arg-type]
    devices: list[DeviceOut] = result  # type: ignore[assignment]
    # One render and reload for the whole file; the event names the last device (listeners reload all).
    await ctx.announce(DirectoryChanged("device", "created", devices[-1].id, devices[-1].extension))
    return DeviceImportOut(created=len(devices), devices=devices)


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
