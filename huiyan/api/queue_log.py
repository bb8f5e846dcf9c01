"""/api/queue-log (+ .csv) and /api/hotline/calls: what the hotline's distributor did, for supervisors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from huiyan.api.access import Reader
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.schemas import Page
from huiyan.db import hotline
from huiyan.db.hotline import CALL_ID_RE, SERVICE_NUMBER_RE
from huiyan.db.models import CallOutcome, HotlineCall, Queue, QueueEvent, QueueLogEntry, User, utcnow

router = APIRouter(tags=["hotline"])

CSV_HEADER = ("at", "node", "call_id", "queue", "agent", "event", "data")
BOM = "\ufeff"  # without it, Excel (zh-CN) reads UTF-8 as GBK and the Chinese names come out garbled
_ROWS_PER_CHUNK = 500
_TIME_DOC = "with a time zone, e.g. 2024-06-01T00:00:00+08:00"


class QueueLogOut(BaseModel):
    id: int
    at: datetime
    node: str
    call_id: str
    queue_id: int | None
    agent_user_id: int | None
    event: QueueEvent
    data: dict[str, Any]

    @classmethod
    def of(cls, entry: QueueLogEntry) -> QueueLogOut:
        return cls.model_validate({name: getattr(entry, name) for name in cls.model_fields})


class HotlineCallOut(BaseModel):
    id: str
    node: str
    linkedid: str | None
    caller_number: str | None
    caller_name: str | None
    service_number: str | None
    menu_digit: str | None
    queue_id: int | None
    priority: int
    enqueued_at: datetime | None
    offered_count: int
    answered_at: datetime | None
    ended_at: datetime | None
    agent_user_id: int | None
    outcome: CallOutcome
    wait_s: float | None
    talk_s: float | None
    recording_path: str | None
    notes: str
    created_at: datetime

    @classmethod
    def of(cls, call: HotlineCall) -> HotlineCallOut:
        return cls.model_validate({name: getattr(call, name) for name in cls.model_fields})


def log_filters(
    since: Annotated[AwareDatetime | None, Query(description=f"inclusive; {_TIME_DOC}")] = None,
    until: Annotated[AwareDatetime | None, Query(description=f"exclusive; {_TIME_DOC}")] = None,
    queue_id: int | None = None,
    agent_user_id: int | None = None,
    event: QueueEvent | None = None,
    call_id: Annotated[str | None, Query(pattern=CALL_ID_RE)] = None,
) -> dict[str, Any]:
    return {
        "since": since,
        "until": until,
        "queue_id": queue_id,
        "agent_user_id": agent_user_id,
        "event": event,
        "call_id": call_id,
    }


LogFilters = Annotated[dict[str, Any], Depends(log_filters)]


@router.get("/api/queue-log", response_model=Page[QueueLogOut])
def queue_log(
    caller: Reader,
    session: DbSession,
    filters: LogFilters,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[QueueLogOut]:
    """In time order, oldest first."""
    items, total = hotline.query_queue_log(session, **filters, offset=offset, limit=limit)
    return Page(items=[QueueLogOut.of(e) for e in items], total=total, offset=offset, limit=limit)


def _cell(text: str) -> str:
    # A cell starting like a formula would be run by Excel (CSV injection): make it plain text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_chunks(ctx: ApiContext, filters: dict[str, Any]) -> Iterator[bytes]:
    # Its own session: the request's may be closed before the last chunk is sent.
    with ctx.sessions() as session:
        queues = {i: name for i, name in session.execute(select(Queue.id, Queue.name))}
        agents = {i: d or u for i, u, d in session.execute(select(User.id, User.username, User.display_name))}
        buf = io.StringIO()
        buf.write(BOM)
        writer = csv.writer(buf)  # RFC 4180 quoting, CRLF line ends, as Excel expects
        writer.writerow(CSV_HEADER)
        for n, e in enumerate(hotline.iter_queue_log(session, **filters), 1):
            writer.writerow((
                e.at.isoformat(timespec="milliseconds"),
                _cell(e.node),
                _cell(e.call_id),
                "" if e.queue_id is None else _cell(queues.get(e.queue_id, f"#{e.queue_id}")),
                "" if e.agent_user_id is None else _cell(agents.get(e.agent_user_id, f"#{e.agent_user_id}")),
                e.event.value,
                json.dumps(e.data, ensure_ascii=False, separators=(",", ":"), sort_keys=True) if e.data else "",
            ))  # fmt: skip
            if n % _ROWS_PER_CHUNK == 0:
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode("utf-8")


@router.get("/api/queue-log.csv", response_class=StreamingResponse)
def queue_log_csv(caller: Reader, ctx: Ctx, filters: LogFilters) -> StreamingResponse:
    """The same lines as /api/queue-log, all of them, as a CSV download (UTF-8 with BOM, for Excel):
    at (UTC, ms), node, call_id, queue (its name), agent (display name), event, data (JSON)."""
    filename = f"queue-log-{utcnow():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        _csv_chunks(ctx, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/hotline/calls", response_model=Page[HotlineCallOut])
def list_calls(
    caller: Reader,
    session: DbSession,
    since: Annotated[AwareDatetime | None, Query(description=f"inclusive; {_TIME_DOC}")] = None,
    until: Annotated[AwareDatetime | None, Query(description=f"exclusive; {_TIME_DOC}")] = None,
    queue_id: int | None = None,
    agent_user_id: int | None = None,
    outcome: CallOutcome | None = None,
    service_number: Annotated[str | None, Query(pattern=SERVICE_NUMBER_RE)] = None,
    caller_number: Annotated[str | None, Query(max_length=32, description="part of the caller's number")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[HotlineCallOut]:
    """Newest first; `since`/`until` select by when the call reached the hotline."""
    items, total = hotline.list_hotline_calls(
        session,
        since=since,
        until=until,
        queue_id=queue_id,
        agent_user_id=agent_user_id,
        outcome=outcome,
        service_number=service_number,
        caller_number=caller_number,
        offset=offset,
        limit=limit,
    )
    return Page(items=[HotlineCallOut.of(c) for c in items], total=total, offset=offset, limit=limit)


@router.get("/api/hotline/calls/{call_id}", response_model=HotlineCallOut)
def get_call(caller: Reader, call_id: str, session: DbSession) -> HotlineCallOut:
    return HotlineCallOut.of(hotline.get_hotline_call(session, call_id))
