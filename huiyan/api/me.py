"""The signed-in user's own things, for the browser clients: SIP account for the built-in softphone, the
hotline call they have now (caller, chosen service, the citizen page's ticket), notes on their calls, and
WS /api/me/events (their own agent state and the queue numbers, for agents who may not watch /api/events)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, status
from pydantic import BaseModel, Field

from huiyan.api.access import WS_UNAUTHENTICATED, AllowWebSocket, AnyUser, Principal
from huiyan.api.context import Ctx, DbSession
from huiyan.api.events import encode_event
from huiyan.api.hotline_ops import Operator
from huiyan.api.public import sip_ws_url
from huiyan.api.schemas import _In
from huiyan.db import store
from huiyan.db.models import HotlineCall, Role

router = APIRouter(tags=["auth"])

OperatorSocket = Annotated[Principal, Depends(AllowWebSocket(Role.ADMIN, Role.SUPERVISOR, Role.AGENT))]


class SipAccount(BaseModel):
    extension: str
    password: str
    display_name: str
    uri: str = Field(description="the account's SIP URI (register with it)")
    ws_url: str = Field(description="Asterisk's SIP WebSocket as the browser reaches it")
    domain: str


@router.get("/api/me/sip", response_model=SipAccount)
def my_sip(caller: AnyUser, request: Request, ctx: Ctx, session: DbSession) -> SipAccount:
    """The signed-in user's SIP account, for the browser's built-in WebRTC softphone (JsSIP)."""
    user = store.get_user(session, caller.user_id)
    domain = ctx.settings.public_host
    return SipAccount(extension=user.extension, password=user.sip_password,
                      display_name=user.display_name or user.username, uri=f"sip:{user.extension}@{domain}",
                      ws_url=sip_ws_url(request, ctx.settings), domain=domain)


class MyCall(BaseModel):
    call_id: str
    state: str = Field(description="offered (my phone rings) or on_call")
    caller: str = Field(description="the caller's number as the call presents it")
    caller_name: str
    number: str = Field(description="the service number dialled")
    digit: str
    label_zh: str
    label_en: str
    queue_id: str
    queue_name: str
    waited_s: float
    web: dict[str, Any] | None = Field(None, description="from the citizen page: name, phone, lang, service")


class MyCallOut(BaseModel):
    call: MyCall | None


@router.get("/api/me/call", response_model=MyCallOut)
async def my_call(caller: Operator, request: Request) -> MyCallOut:
    """The hotline call offered to me or that I am on, with who calls and for what; `call` null if none."""
    svc = getattr(request.app.state, "hotline", None)
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hotline runtime is not running")
    agent_id = str(caller.user_id)
    try:
        call_id = svc.acd.agent(agent_id).call_id
        view = svc.acd.call(call_id) if call_id else None
    except Exception:  # noqa: BLE001 - not an agent of the hotline, or the call just left
        view = None
    if view is None or view.state.value not in ("offered", "on_call"):
        return MyCallOut(call=None)
    calls = request.app.state.web_calls
    controller = getattr(request.app.state, "controller", None)
    await calls.resolve(svc, getattr(controller, "ami", None))
    digit = str(view.data.get("digit", ""))
    number = str(view.data.get("number", ""))
    choice = svc.menu(number).get(digit)
    queue = next((q for q in svc.config.queues if q.id == view.queue_id), None)
    ticket = calls.for_call(view.id)
    return MyCallOut(call=MyCall(
        call_id=view.id, state=view.state.value, caller=str(view.data.get("caller", "")),
        caller_name=(ticket.name if ticket else ""), number=number, digit=digit,
        label_zh=choice.label_zh if choice else "", label_en=(choice.label_en or choice.label_zh) if choice else "",
        queue_id=view.queue_id, queue_name=queue.name if queue else "",
        waited_s=round(max(0.0, svc.clock() - view.arrived_at), 1),
        web=ticket.caller_view() if ticket else None,
    ))


class NoteIn(_In):
    text: str = Field(..., min_length=1, max_length=2000)


class NotesOut(BaseModel):
    call_id: str
    notes: str


@router.post("/api/me/calls/{call_id}/notes", response_model=NotesOut)
def add_note(caller: Operator, call_id: str, body: NoteIn, request: Request, session: DbSession) -> NotesOut:
    """Append a note to a hotline call's record (the queue log's call list shows it). An agent may note
    only the calls they answered."""
    call = session.get(HotlineCall, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"hotline call {call_id} not found")
    if caller.role == Role.AGENT and call.agent_user_id != caller.user_id:
        svc = getattr(request.app.state, "hotline", None)
        waiter = svc.waiters.get(call_id) if svc is not None else None
        if waiter is None or waiter.answered_by != str(caller.user_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may only note the calls they answered")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    line = f"[{stamp} {caller.username}] {body.text.strip()}"
    call.notes = f"{call.notes}\n{line}" if call.notes else line
    session.commit()
    return NotesOut(call_id=call_id, notes=call.notes)


def _mine(event: Any, agent_id: str, queue_names: dict[str, str]) -> Any | None:
    """What an agent's console gets of a bus event: queue numbers (with the queues' names) and their own
    state, nothing about other agents or callers."""
    kind = type(event).__name__
    if kind == "HotlineStats":
        stats = dict(event.stats)
        stats["agents"] = {k: v for k, v in (stats.get("agents") or {}).items() if k == agent_id}
        stats["queue_names"] = {q: queue_names.get(q, q) for q in stats.get("queues") or {}}
        return type(event)(event.node, stats, event.at)
    if kind == "HotlineEvent":
        data = event.data
        if data.get("agent_id") == agent_id or agent_id in (data.get("agent_ids") or ()):
            return event
    return None


@router.websocket("/api/me/events")
async def my_events(websocket: WebSocket, caller: OperatorSocket, ctx: Ctx) -> None:
    """HotlineStats (every queue; of the agents only me) and the HotlineEvents about me. Same framing and
    close codes as /api/events."""
    queue = ctx.bus.subscribe()
    agent_id = str(caller.user_id)
    try:
        await websocket.accept()
        svc = getattr(websocket.app.state, "hotline", None)

        def names() -> dict[str, str]:
            return {q.id: q.name for q in svc.config.queues} if svc is not None else {}

        if svc is not None:  # the numbers now, not at the next change
            from huiyan.hotline.service import HotlineStats

            first = _mine(HotlineStats(svc.node, svc.stats_dict(), time.time()), agent_id, names())
            await websocket.send_text(encode_event(first))

        async def send() -> None:
            while True:
                remaining = caller.expires_at - time.time()
                if remaining <= 0:
                    await websocket.close(WS_UNAUTHENTICATED, "token expired")
                    return
                with anyio.move_on_after(remaining):
                    event = await queue.get()
                    out = _mine(event, agent_id, names())
                    if out is not None:
                        await websocket.send_text(encode_event(out))

        async def receive() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        async with anyio.create_task_group() as tg:
            async def one(job: Any) -> None:
                try:
                    await job()
                except Exception:  # noqa: BLE001 - the client went away
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(one, send)
            tg.start_soon(one, receive)
    finally:
        ctx.bus.unsubscribe(queue)
