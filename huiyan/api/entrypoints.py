"""/api/entry-points: QR entry points (扫码入口) and their printable posters; /api/public/entries/{slug}: what a
scanned code opens (the citizen page asks it for the service to preset, no account needed).

An entry point presets one service of the hotline: a service number and a menu option, or the option that
leads to an organisation's queue (a mediation centre's). Its URL is `<base>/call?entry=<slug>`; the poster
(PNG, or an A4 PDF) carries that URL as a QR code with the title and the instructions. `base` is the address
citizens reach huiyan at: by default the one this request came in on (behind a TLS proxy, its https
address), or `?base=https://hy.example.gov.cn` to print posters for the public address from anywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from huiyan.api.access import PUBLIC, Admin, Reader
from huiyan.api.context import Ctx, DbSession
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.config.settings import Settings
from huiyan.db.models import EntryPoint, Organisation
from huiyan.entrypoints import poster, store
from huiyan.entrypoints.store import SLUG_RE, TITLE_EN_RE, TITLE_RE, entry_url

router = APIRouter(tags=["entry points"])
public_router = APIRouter(prefix="/api/public", tags=["public"], dependencies=[Depends(PUBLIC)])

BASE_RE = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
BaseQuery = Annotated[str | None, Query(pattern=BASE_RE, max_length=200, description=(
    "the address citizens reach huiyan at, e.g. https://hy.sft.jl.example (default: this request's)"))]


def hotline_numbers(settings: Settings) -> set[str]:
    return {n for n, route in settings.services.items() if route == "hotline"}


def base_url(request: Request, base: str | None) -> str:
    if base:
        return base.rstrip("/")
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return f"{proto}://{request.url.netloc}"


# ---- schemas --------------------------------------------------------------------------------------


class EntryCreate(_In):
    slug: str = Field(pattern=SLUG_RE, description="the `entry=` of the URL: lower-case letters, digits, dashes",
                      examples=["tianchi-he"])
    title: str = Field(pattern=TITLE_RE, examples=["长白山“天池和”旅游纠纷调解"])
    title_en: str = Field("", pattern=TITLE_EN_RE, examples=["Changbai Mountain “Tianchi He” tourism mediation"])
    service_number: str = Field("12348", pattern=r"^[0-9]{3,16}$", description="a hotline service number")
    menu_digit: str | None = Field(None, pattern=r"^[0-9*#]$", description=(
        "the menu option to preset; omit it to use the option whose queue belongs to `organisation_id`"))
    organisation_id: int | None = Field(None, ge=1, description="who runs the service (named on the poster)")
    instructions: str = Field("", max_length=500, description="how to use it, in Chinese; line breaks kept")
    instructions_en: str = Field("", max_length=1000)
    active: bool = True


class EntryPatch(_Patch):
    nullable = frozenset({"menu_digit", "organisation_id"})

    slug: str | None = Field(None, pattern=SLUG_RE)
    title: str | None = Field(None, pattern=TITLE_RE)
    title_en: str | None = Field(None, pattern=TITLE_EN_RE)
    service_number: str | None = Field(None, pattern=r"^[0-9]{3,16}$")
    menu_digit: str | None = Field(None, pattern=r"^[0-9*#]$")
    organisation_id: int | None = Field(None, ge=1)
    instructions: str | None = Field(None, max_length=500)
    instructions_en: str | None = Field(None, max_length=1000)
    active: bool | None = None


class EntryOut(BaseModel):
    id: int
    slug: str
    title: str
    title_en: str
    service_number: str
    menu_digit: str
    option_label_zh: str | None = Field(description="the preset option's label (null if it was deleted since)")
    option_label_en: str | None
    organisation_id: int | None
    organisation_name: str | None
    instructions: str
    instructions_en: str
    active: bool
    url: str = Field(description="what the QR code holds: the citizen page preset to this entry point")
    poster_png: str
    poster_pdf: str
    created_at: datetime


class PublicEntry(BaseModel):
    slug: str
    title: str
    title_en: str
    number: str
    option: str
    label_zh: str
    label_en: str
    instructions: str
    instructions_en: str
    organisation: str | None
    organisation_en: str | None


def _out(session: DbSession, entry: EntryPoint, base: str) -> EntryOut:
    opt = store.option_of(session, entry)
    org = entry.organisation
    return EntryOut(
        id=entry.id, slug=entry.slug, title=entry.title, title_en=entry.title_en,
        service_number=entry.service_number, menu_digit=entry.menu_digit,
        option_label_zh=opt.label_zh if opt else None, option_label_en=(opt.label_en or opt.label_zh) if opt else None,
        organisation_id=entry.organisation_id, organisation_name=org.name if org else None,
        instructions=entry.instructions, instructions_en=entry.instructions_en, active=entry.active,
        url=entry_url(base, entry.slug), poster_png=f"/api/entry-points/{entry.id}/poster.png",
        poster_pdf=f"/api/entry-points/{entry.id}/poster.pdf", created_at=entry.created_at,
    )


# ---- configuration ------------------------------------------------------------------------------


@router.get("/api/entry-points", response_model=Page[EntryOut])
def list_entry_points(
    caller: Reader, request: Request, session: DbSession, base: BaseQuery = None,
    organisation_id: int | None = None, active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the title or slug")] = None,
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[EntryOut]:
    items, total = store.list_entries(session, organisation_id=organisation_id, active=active, q=q, offset=offset,
                                      limit=limit)
    b = base_url(request, base)
    return Page(items=[_out(session, e, b) for e in items], total=total, offset=offset, limit=limit)


@router.get("/api/entry-points/{entry_id}", response_model=EntryOut)
def get_entry_point(caller: Reader, entry_id: int, request: Request, session: DbSession,
                    base: BaseQuery = None) -> EntryOut:
    return _out(session, store.get_entry(session, entry_id), base_url(request, base))


@router.post("/api/entry-points", status_code=status.HTTP_201_CREATED, response_model=EntryOut)
def create_entry_point(caller: Admin, body: EntryCreate, request: Request, ctx: Ctx, session: DbSession,
                       base: BaseQuery = None) -> EntryOut:
    """400 with the reason when the number is not a hotline number, the option does not exist, or the
    organisation has no (or several) options leading to its queues; 409 for a slug already used."""
    entry = store.create_entry(session, hotline_numbers=hotline_numbers(ctx.settings), created_by_id=caller.user_id,
                               **body.model_dump())
    session.commit()
    return _out(session, entry, base_url(request, base))


@router.patch("/api/entry-points/{entry_id}", response_model=EntryOut)
def update_entry_point(caller: Admin, entry_id: int, body: EntryPatch, request: Request, ctx: Ctx,
                       session: DbSession, base: BaseQuery = None) -> EntryOut:
    """Posters already printed keep working when the slug stays: change the target or the texts freely.
    `active: false` retires the entry point (a scanned code then says it is no longer in use)."""
    entry = store.update_entry(session, entry_id, body.changes(), hotline_numbers=hotline_numbers(ctx.settings))
    session.commit()
    return _out(session, entry, base_url(request, base))


@router.delete("/api/entry-points/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_entry_point(caller: Admin, entry_id: int, session: DbSession) -> Response:
    store.delete_entry(session, entry_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- posters --------------------------------------------------------------------------------------


def _poster_text(session: DbSession, entry: EntryPoint, base: str) -> poster.PosterText:
    opt = store.option_of(session, entry)
    label = opt.label_zh if opt else ""
    org: Organisation | None = entry.organisation
    return poster.PosterText(
        title=entry.title, title_en=entry.title_en, url=entry_url(base, entry.slug),
        service=f"{entry.service_number} 法律服务视频热线" + (f" · {label}" if label else ""),
        instructions=entry.instructions, instructions_en=entry.instructions_en,
        organisation=org.name if org else "",
        dial_hint=f"没有智能手机？请拨打 {entry.service_number}，按 {entry.menu_digit}",
    )


async def _poster(request: Request, entry_id: int, base: str | None, kind: str) -> Response:
    def draw() -> tuple[bytes, str]:
        with request.app.state.huiyan.sessions() as session:
            entry = store.get_entry(session, entry_id)
            text = _poster_text(session, entry, base_url(request, base))
            slug = entry.slug
        img = poster.render(text)
        return (poster.png(img) if kind == "png" else poster.pdf(img, text.title)), slug

    try:
        body, slug = await run_in_threadpool(draw)  # ~0.3 s of drawing: off the event loop
    except poster.PosterError as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(e)) from e
    media = "image/png" if kind == "png" else "application/pdf"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'inline; filename="huiyan-entry-{slug}.{kind}"', "Cache-Control": "no-cache"})


@router.get("/api/entry-points/{entry_id}/poster.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def poster_png(caller: Reader, entry_id: int, request: Request, base: BaseQuery = None) -> Response:
    """The poster as a PNG (A4 at 200 dpi): QR code of the entry URL, title, instructions, organisation."""
    return await _poster(request, entry_id, base, "png")


@router.get("/api/entry-points/{entry_id}/poster.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def poster_pdf(caller: Reader, entry_id: int, request: Request, base: BaseQuery = None) -> Response:
    """The same poster as a one-page A4 PDF, ready to print."""
    return await _poster(request, entry_id, base, "pdf")


# ---- what a scanned code opens ------------------------------------------------------------------


@public_router.get("/entries/{slug}", response_model=PublicEntry,
                   responses={404: {"description": "unknown, retired, or its service is no longer offered"}})
def public_entry(slug: Annotated[str, Path(max_length=40)], session: DbSession) -> PublicEntry:
    """The service a scanned code presets on the citizen page, with the poster's title and instructions."""
    entry = store.by_slug(session, slug)
    opt = store.option_of(session, entry)
    if opt is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"entry point {slug!r}: its service ({entry.service_number} option {entry.menu_digit}) "
                            "is no longer offered")
    org = entry.organisation
    return PublicEntry(
        slug=entry.slug, title=entry.title, title_en=entry.title_en or entry.title, number=entry.service_number,
        option=entry.menu_digit, label_zh=opt.label_zh, label_en=opt.label_en or opt.label_zh,
        instructions=entry.instructions, instructions_en=entry.instructions_en or entry.instructions,
        organisation=org.name if org else None, organisation_en=(org.name_en or org.name) if org else None,
    )
