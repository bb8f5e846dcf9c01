"""The entry points' table, kept by its rules. Functions flush but never commit.

Rules: the slug (the `entry=` of the URL) is lower-case letters, digits and dashes, unique; the target is a
hotline service number and one of its menu options. Instead of a digit, an organisation may be named (a
mediation centre, a bureau): the option is then the one of that number whose queue belongs to it, and it
must be exactly one. The organisation is also what the poster names as the one running the service.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import EntryPoint, MenuOption, Organisation, Queue
from huiyan.db.store import _check, _flush, _get, _page

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
TITLE_RE = r'^[^\x00-\x1f\x7f<>\\]{1,100}$'
TITLE_EN_RE = r'^[^\x00-\x1f\x7f<>\\]{0,200}$'
# Instructions may have line breaks (each is a line on the poster), nothing else below 0x20.
INSTRUCTIONS_RE = r"^[^\x00-\x09\x0b-\x1f\x7f<>\\]*$"
FIELDS = frozenset({"slug", "title", "title_en", "service_number", "menu_digit", "organisation_id", "instructions",
                    "instructions_en", "active"})


def entry_url(base: str, slug: str) -> str:
    """What the QR code holds: the citizen page preset to this entry point."""
    return f"{base.rstrip('/')}/call?entry={slug}"


def _option(session: Session, number: str, digit: str) -> MenuOption | None:
    return session.scalar(select(MenuOption).where(MenuOption.service_number == number, MenuOption.digit == digit))


def resolve_digit(session: Session, number: str, digit: str | None, organisation_id: int | None,
                  hotline_numbers: Collection[str]) -> str:
    """The menu digit the entry point presets; raises Invalid with what is wrong."""
    if number not in hotline_numbers:
        offered = ", ".join(sorted(hotline_numbers)) or "none"
        raise Invalid(f"{number} is not a hotline service number citizens can call (hotline numbers: {offered})")
    if digit is not None:
        if _option(session, number, digit) is None:
            raise Invalid(f"service {number} has no menu option {digit}")
        return digit
    if organisation_id is None:
        raise Invalid("give menu_digit, or organisation_id to use the option that leads to its queue")
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise Invalid(f"organisation {organisation_id} does not exist")
    stmt = (select(MenuOption.digit).join(Queue, Queue.id == MenuOption.queue_id)
            .where(MenuOption.service_number == number, Queue.organisation_id == organisation_id)
            .order_by(MenuOption.digit))
    digits = list(session.scalars(stmt))
    if not digits:
        raise Invalid(f"no menu option of {number} leads to a queue of {org.name}: give menu_digit")
    if len(digits) > 1:
        raise Invalid(f"several options of {number} lead to queues of {org.name} ({', '.join(digits)}): "
                      "give menu_digit")
    return digits[0]


def _check_entry(session: Session, values: dict[str, Any], entry: EntryPoint | None) -> None:
    _check(SLUG_RE, values["slug"], "slug")
    other = session.scalar(select(EntryPoint.id).where(EntryPoint.slug == values["slug"]))
    if other is not None and (entry is None or other != entry.id):
        raise Conflict(f"slug {values['slug']!r} is already used by entry point {other}")
    _check(TITLE_RE, values["title"], "title")
    _check(TITLE_EN_RE, values.get("title_en") or "", "title_en")
    for key, top in (("instructions", 500), ("instructions_en", 1000)):
        text = values.get(key) or ""
        if len(text) > top:
            raise Invalid(f"{key} is longer than {top} characters")
        _check(INSTRUCTIONS_RE, text, key)
    org = values.get("organisation_id")
    if org is not None and session.get(Organisation, org) is None:
        raise Invalid(f"organisation {org} does not exist")


def create_entry(session: Session, *, hotline_numbers: Collection[str], slug: str, title: str,
                 service_number: str, menu_digit: str | None = None, organisation_id: int | None = None,
                 title_en: str = "", instructions: str = "", instructions_en: str = "", active: bool = True,
                 created_by_id: int | None = None) -> EntryPoint:
    values = {"slug": slug.strip(), "title": title.strip(), "title_en": title_en.strip(),
              "service_number": service_number, "organisation_id": organisation_id,
              "instructions": instructions.strip(), "instructions_en": instructions_en.strip(), "active": active}
    _check_entry(session, values, None)
    values["menu_digit"] = resolve_digit(session, service_number, menu_digit, organisation_id, hotline_numbers)
    entry = EntryPoint(**values, created_by_id=created_by_id)
    session.add(entry)
    _flush(session)
    return entry


def update_entry(session: Session, entry_id: int, changes: dict[str, Any], *,
                 hotline_numbers: Collection[str]) -> EntryPoint:
    entry = get_entry(session, entry_id)
    unknown = set(changes) - FIELDS
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    values = {k: getattr(entry, k) for k in FIELDS}
    values.update({k: v.strip() if isinstance(v, str) else v for k, v in changes.items()})
    _check_entry(session, values, entry)
    if {"service_number", "menu_digit", "organisation_id"} & set(changes):
        # A new organisation without a digit: the option that leads to its queue. Otherwise the digit stays.
        digit = changes["menu_digit"] if "menu_digit" in changes else (
            None if "organisation_id" in changes else values["menu_digit"])
        values["menu_digit"] = resolve_digit(session, values["service_number"], digit, values["organisation_id"],
                                             hotline_numbers)
    for k, v in values.items():
        setattr(entry, k, v)
    _flush(session)
    return entry


def delete_entry(session: Session, entry_id: int) -> None:
    session.delete(get_entry(session, entry_id))
    _flush(session)


def get_entry(session: Session, entry_id: int) -> EntryPoint:
    return _get(session, EntryPoint, entry_id, "entry point")


def by_slug(session: Session, slug: str) -> EntryPoint:
    """An active entry point by its slug (what a scanned code asks for); NotFound otherwise."""
    if re.fullmatch(SLUG_RE, slug) is None:
        raise NotFound(f"no entry point {slug!r}")
    entry = session.scalar(select(EntryPoint).where(EntryPoint.slug == slug))
    if entry is None or not entry.active:
        raise NotFound(f"no entry point {slug!r}" if entry is None else f"entry point {slug!r} is no longer in use")
    return entry


def option_of(session: Session, entry: EntryPoint) -> MenuOption | None:
    """The menu option the entry presets (None if it was deleted since)."""
    return _option(session, entry.service_number, entry.menu_digit)


def list_entries(session: Session, *, organisation_id: int | None = None, active: bool | None = None,
                 q: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[EntryPoint], int]:
    stmt = select(EntryPoint).order_by(EntryPoint.id)
    if organisation_id is not None:
        stmt = stmt.where(EntryPoint.organisation_id == organisation_id)
    if active is not None:
        stmt = stmt.where(EntryPoint.active.is_(active))
    if q:
        stmt = stmt.where(EntryPoint.title.icontains(q, autoescape=True) | EntryPoint.slug.icontains(q, autoescape=True))
    return _page(session, stmt, offset, limit)
