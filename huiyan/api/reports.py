"""/api/reports/hotline (+ .csv): the hotline report per local day and per organisation, for the admin console.

Admins see every queue; a supervisor the queues of their organisation and the organisations below it
(every queue when attached to none), as `huiyan.db.orgtree` rules. Figures and their definitions:
`huiyan.reports.hotline`. Days are local days of the province (Asia/Shanghai, the check-in settings' zone).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.api.access import Principal, Reader
from huiyan.api.context import Ctx, DbSession
from huiyan.db.models import HotlineCall, Organisation, Queue
from huiyan.db.orgtree import organisation_subtree, oversees
from huiyan.reports import hotline as report

router = APIRouter(tags=["reports"])

FromQuery = Annotated[date | None, Query(alias="from", description="first local day, YYYY-MM-DD (default: 29 days "
                                                                    "before `to`)")]
ToQuery = Annotated[date | None, Query(alias="to", description="last local day, inclusive (default: today)")]
OrgQuery = Annotated[int | None, Query(description="this organisation's queues and those of the organisations "
                                                   "below it")]
ShortQuery = Annotated[float, Query(ge=0, le=60, description="hang-ups within this many seconds are short "
                                                             "abandons, left out of the rates")]


def _hotline(session: Session, caller: Principal, tz: str, start: date | None, end: date | None,
             org_id: int | None, short_abandon_s: float) -> dict[str, Any]:
    end = end or datetime.now(ZoneInfo(tz)).date()
    start = start or end - timedelta(days=29)
    try:
        report.check_range(start, end)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    everything, mine = oversees(session, caller.user_id, caller.role)
    if org_id is not None:
        if session.get(Organisation, org_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"organisation {org_id} not found")
        if not everything and org_id not in mine:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"organisation {org_id} is not yours: supervisors see their organisation and below")
        allowed: frozenset[int] | None = organisation_subtree(session, org_id)
    else:
        allowed = None if everything else mine
    lo, hi = report.day_bounds(start, end, tz)
    stmt = (select(HotlineCall.enqueued_at, HotlineCall.answered_at, HotlineCall.ended_at, HotlineCall.outcome,
                   HotlineCall.wait_s, HotlineCall.queue_id, Queue.organisation_id, Queue.sl_threshold_s)
            .outerjoin(Queue, Queue.id == HotlineCall.queue_id)
            .where(HotlineCall.enqueued_at >= lo, HotlineCall.enqueued_at < hi))
    queues = select(Queue.id, Queue.sl_target)
    if allowed is not None:
        stmt = stmt.where(Queue.organisation_id.in_(allowed))
        queues = queues.where(Queue.organisation_id.in_(allowed))
    rows = (report.CallRow(enq, ans, ended, outcome.value, wait, qid, org, float(thr if thr is not None else 20))
            for enq, ans, ended, outcome, wait, qid, org, thr in session.execute(stmt))
    targets = [t for _, t in session.execute(queues.where(Queue.active.is_(True)))]
    rep = report.aggregate(rows, start, end, timezone=tz, short_abandon_s=short_abandon_s, sl_targets=targets)
    names = {i: n for i, n in session.execute(select(Organisation.id, Organisation.name))}
    return rep.view(names)


@router.get("/api/reports/hotline")
def hotline_report(caller: Reader, session: DbSession, ctx: Ctx, start: FromQuery = None, end: ToQuery = None,
                   org_id: OrgQuery = None, short_abandon_s: ShortQuery = report.DEFAULT_SHORT_ABANDON_S
                   ) -> dict[str, Any]:
    """Per local day (every day of the range, zeros included) and per organisation: offered, answered,
    answered within the queue's service-level threshold, abandoned, short abandons, service level, abandon
    rate, average wait; and the total. 422 for a bad date or a range above 366 days."""
    return _hotline(session, caller, ctx.settings.checkin.timezone, start, end, org_id, short_abandon_s)


@router.get("/api/reports/hotline.csv", response_class=Response)
def hotline_report_csv(caller: Reader, session: DbSession, ctx: Ctx, start: FromQuery = None,
                       end: ToQuery = None, org_id: OrgQuery = None,
                       short_abandon_s: ShortQuery = report.DEFAULT_SHORT_ABANDON_S) -> Response:
    """The same report as CSV (UTF-8 with BOM, for Excel): the days, the organisations, the total."""
    view = _hotline(session, caller, ctx.settings.checkin.timezone, start, end, org_id, short_abandon_s)
    return Response(report.csv_bytes(view), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="hotline-report-{view["from"]}-{view["to"]}.csv"'})
