"""GET /healthz: is every part of the platform up (PBX parts from the runtime, plus our database)?"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import PUBLIC
from huiyan.api.context import Ctx
from huiyan.api.schemas import HealthOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 5.0  # a hung part must not hang the load balancer's probe


def _select_one(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.execute(text("SELECT 1"))


async def _database(sessions: sessionmaker[Session]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(run_in_threadpool(_select_one, sessions), CHECK_TIMEOUT)
    except Exception as exc:
        log.warning("database health check failed: %r", exc)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


@router.get(
    "/healthz",
    dependencies=[Depends(PUBLIC)],
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "some part is down"}},
)
async def healthz(ctx: Ctx) -> JSONResponse:
    """200 when every part is ok, 503 otherwise; the body lists each part."""
    checks: dict[str, dict[str, Any]] = {}
    if ctx.health is not None:
        try:
            checks.update(await asyncio.wait_for(ctx.health(), CHECK_TIMEOUT))
        except Exception as exc:
            log.warning("runtime health check failed: %r", exc)
            checks["runtime"] = {"ok": False, "error": type(exc).__name__}
    checks["database"] = await _database(ctx.sessions)
    # A part that does not say it is ok is not ok.
    ok = all(isinstance(part, dict) and part.get("ok") is True for part in checks.values())
    parts = {k: v if isinstance(v, dict) else {"ok": False, "value": v} for k, v in checks.items()}
    body = HealthOut(ok=ok, checks=parts)
    return JSONResponse(jsonable_encoder(body), status_code=200 if ok else 503)
