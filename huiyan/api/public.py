"""The citizen page's API (public, no account): the services it may call, a ticket per call, the call's state.

A guest learns nothing about other callers: the ticket's status is its own call's place in line. Placing
the call itself needs no account either (guests reach only the public numbers; see huiyan/dialplan).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from huiyan.api.access import PUBLIC
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import _In
from huiyan.config.render import WEB_GUEST_HEADER
from huiyan.config.settings import Settings
from huiyan.db.models import MenuOption
from huiyan.web.calls import TICKET_HEADER, TTL, WebCalls, public_status

router = APIRouter(prefix="/api/public", tags=["public"], dependencies=[Depends(PUBLIC)])

TOKEN_RE = r"^[A-Za-z0-9_-]{20,64}$"


def web_calls(request: Request) -> WebCalls:
    return request.app.state.web_calls  # type: ignore[no-any-return]


def sip_ws_url(request: Request, settings: Settings) -> str:
    """Where a browser reaches Asterisk's SIP WebSocket: behind a TLS proxy (https) the same host's /ws,
    else Asterisk's own HTTP port on the host the browser used to reach us."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    if proto == "https":
        return f"wss://{request.url.netloc}/ws"
    host = request.url.hostname or settings.public_host
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{settings.http_port}/ws"


class Option(BaseModel):
    digit: str
    label_zh: str
    label_en: str


class Service(BaseModel):
    number: str
    options: list[Option]


class ServicesOut(BaseModel):
    services: list[Service]


def _hotline_options(session: Any, settings: Settings, number: str | None = None) -> dict[str, list[MenuOption]]:
    numbers = [n for n, route in settings.services.items() if route == "hotline" and (number in (None, n))]
    out: dict[str, list[MenuOption]] = {}
    if not numbers:
        return out
    stmt = select(MenuOption).where(MenuOption.service_number.in_(numbers)).order_by(
        MenuOption.service_number, MenuOption.digit)
    for opt in session.scalars(stmt):
        out.setdefault(opt.service_number, []).append(opt)
    return out


@router.get("/services", response_model=ServicesOut)
def services(ctx: Ctx, session: DbSession) -> ServicesOut:
    """The hotline numbers a citizen can call from the page, with their menu options (the page sends the
    chosen option's digit, so the caller skips the voice menu)."""
    found = _hotline_options(session, ctx.settings)
    return ServicesOut(services=[
        Service(number=n, options=[Option(digit=o.digit, label_zh=o.label_zh, label_en=o.label_en or o.label_zh)
                                   for o in opts])
        for n, opts in sorted(found.items())
    ])


class TicketIn(_In):
    number: str = Field(..., pattern=r"^[0-9]{3,16}$", description="the service number, e.g. 12348")
    option: str = Field(..., pattern=r"^[0-9*#]$", description="the menu option's digit")
    name: str = Field(..., min_length=1, max_length=40, description="how the citizen wants to be addressed")
    phone: str = Field(..., pattern=r"^\+?[0-9]{5,20}$", description="a number to call back")
    consent: bool = Field(..., description="the recording notice was shown and accepted: must be true")
    lang: Literal["zh", "en"] = "zh"

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        v = v.strip()
        if not v or any(ord(c) < 32 or c in '"<>\\' for c in v):
            raise ValueError("a name without control characters, quotes or angle brackets")
        return v

    @field_validator("consent")
    @classmethod
    def _accepted(cls, v: bool) -> bool:
        if not v:
            raise ValueError("calls are recorded: the recording notice must be accepted to call")
        return v


class SipDetails(BaseModel):
    ws_url: str
    target: str = Field(description="the request URI to call")
    from_uri: str
    display_name: str
    headers: list[str] = Field(description="extra SIP headers the INVITE must carry")
    dtmf: str = Field(description="send this digit once the call is answered: it picks the menu option")


class TicketOut(BaseModel):
    token: str
    expires_in: int
    number: str
    option: str
    label_zh: str
    label_en: str
    sip: SipDetails


@router.post("/calls", status_code=status.HTTP_201_CREATED, response_model=TicketOut,
             responses={404: {"description": "no such service number or option"}})
def create_ticket(body: TicketIn, request: Request, ctx: Ctx, session: DbSession) -> TicketOut:
    """A ticket for one video call from the citizen page. The call carries the ticket in a SIP header, so
    the answering agent sees the name, phone and chosen service, and the page can follow its own place in
    line (GET /api/public/calls/{token})."""
    opts = _hotline_options(session, ctx.settings, body.number).get(body.number, [])
    opt = next((o for o in opts if o.digit == body.option), None)
    if opt is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"service {body.number} has no option {body.option}")
    t = web_calls(request).create(number=body.number, digit=opt.digit, label_zh=opt.label_zh,
                                  label_en=opt.label_en or opt.label_zh, name=body.name, phone=body.phone,
                                  lang=body.lang)
    domain = ctx.settings.public_host
    return TicketOut(
        token=t.token, expires_in=int(TTL), number=t.number, option=t.digit, label_zh=t.label_zh,
        label_en=t.label_en,
        sip=SipDetails(
            ws_url=sip_ws_url(request, ctx.settings), target=f"sip:{t.number}@{domain}",
            from_uri=f"sip:{t.phone.lstrip('+')}@{domain}", display_name=t.name,
            headers=[f"{WEB_GUEST_HEADER[0]}: {WEB_GUEST_HEADER[1]}", f"{TICKET_HEADER}: {t.token}"],
            dtmf=t.digit,
        ),
    )


class CallStatus(BaseModel):
    number: str
    label_zh: str
    label_en: str
    state: Literal["connecting", "waiting", "ringing", "connected", "ended"]
    position: int | None = Field(None, description="1 = next to be served")
    ahead: int | None = Field(None, description="callers ahead of this one")
    estimated_wait_s: int | None = None


@router.get("/calls/{token}", response_model=CallStatus, responses={404: {"description": "unknown or expired"}})
async def call_status(token: Annotated[str, Path(pattern=TOKEN_RE)], request: Request) -> CallStatus:
    """This ticket's call only: connecting (not in line yet), waiting (with position), ringing (an agent's
    phone rings), connected, ended."""
    calls = web_calls(request)
    t = calls.get(token)
    if t is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown or expired ticket")
    hotline = getattr(request.app.state, "hotline", None)
    controller = getattr(request.app.state, "controller", None)
    await calls.resolve(hotline, getattr(controller, "ami", None))
    return CallStatus(**public_status(t, hotline))
