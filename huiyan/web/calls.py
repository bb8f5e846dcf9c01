"""Tickets of the citizen page (市民来电凭据): who calls, for which service, and that call's own place in line.

The page asks for a ticket (POST /api/public/calls: service, name, phone, consent to recording) and places
its WebRTC call with the ticket in a SIP header. When the call reaches the hotline's line, huiyan reads
the header off the channel (AMI Getvar of PJSIP_HEADER) and links the ticket to the call. The page then
polls its ticket: the answer is about that one call only (state, how many callers ahead, estimated
wait) — never other callers' numbers or names, and never staff identities. A ticket is a random
192-bit token; it expires after `TTL` seconds, and at most `LIMIT` are kept (oldest dropped first).
The agent console sees the ticket's name, phone and service next to the call it answered.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huiyan.config.render import WEB_GUEST_ENDPOINT

log = logging.getLogger(__name__)

TICKET_HEADER = "X-Huiyan-Ticket"
TTL = 2 * 3600.0
LIMIT = 2000


@dataclass
class Ticket:
    token: str
    number: str  # the service number dialled, e.g. 12348
    digit: str  # the menu option the page sends as DTMF
    label_zh: str
    label_en: str
    name: str
    phone: str
    lang: str
    created: float
    call_id: str | None = None  # the hotline call (channel uniqueid) once linked

    def caller_view(self) -> dict[str, Any]:
        """What staff see of the citizen (the agent who has the call, supervisors)."""
        return {"name": self.name, "phone": self.phone, "lang": self.lang, "number": self.number,
                "digit": self.digit, "label_zh": self.label_zh, "label_en": self.label_en}


@dataclass
class WebCalls:
    """The live tickets, shared by the API's threads and the event loop (hence the lock)."""

    clock: Callable[[], float] = time.monotonic
    ttl: float = TTL
    limit: int = LIMIT
    _tickets: OrderedDict[str, Ticket] = field(default_factory=OrderedDict)
    _by_call: dict[str, str] = field(default_factory=dict)
    _checked: set[str] = field(default_factory=set)  # web calls whose header was read already
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, *, number: str, digit: str, label_zh: str, label_en: str, name: str, phone: str,
               lang: str) -> Ticket:
        now = self.clock()
        t = Ticket(secrets.token_urlsafe(24), number, digit, label_zh, label_en, name, phone, lang, now)
        with self._lock:
            self._expire(now)
            while len(self._tickets) >= self.limit:
                _, old = self._tickets.popitem(last=False)
                self._by_call.pop(old.call_id or "", None)
            self._tickets[t.token] = t
        return t

    def get(self, token: str) -> Ticket | None:
        with self._lock:
            self._expire(self.clock())
            return self._tickets.get(token)

    def for_call(self, call_id: str) -> Ticket | None:
        with self._lock:
            token = self._by_call.get(call_id)
            return self._tickets.get(token) if token else None

    def link(self, token: str, call_id: str) -> bool:
        with self._lock:
            t = self._tickets.get(token)
            if t is None:
                return False
            if t.call_id:
                self._by_call.pop(t.call_id, None)  # calling again with the same ticket: the newest call
            t.call_id = call_id
            self._by_call[call_id] = token
            return True

    def _expire(self, now: float) -> None:
        while self._tickets:
            token, t = next(iter(self._tickets.items()))
            if now - t.created < self.ttl:
                break
            del self._tickets[token]
            self._by_call.pop(t.call_id or "", None)

    def to_check(self, channels: dict[str, str]) -> list[tuple[str, str]]:
        """(call id, channel) of the hotline's web-guest calls whose ticket header was not read yet.
        `channels`: call id -> channel of every call in the hotline now."""
        prefix = f"PJSIP/{WEB_GUEST_ENDPOINT}-"
        with self._lock:
            self._checked &= set(channels)
            todo = [(c, ch) for c, ch in channels.items() if ch.startswith(prefix) and c not in self._checked]
            self._checked.update(c for c, _ in todo)
        return todo

    async def resolve(self, hotline: Any, ami: Any) -> None:
        """Link the tickets of web calls that reached the hotline (one AMI Getvar per call, once)."""
        if hotline is None or ami is None or not getattr(ami, "connected", False):
            return
        for call_id, channel in self.to_check({c: w.channel for c, w in list(hotline.waiters.items())}):
            try:
                res = await ami.action("Getvar", Channel=channel, Variable=f"PJSIP_HEADER(read,{TICKET_HEADER})",
                                       timeout=5)
            except Exception as e:  # noqa: BLE001 - the call may have gone meanwhile; nothing to link
                log.info("ticket header of %s not read: %s", channel, e)
                continue
            token = res.get("Value").strip()
            if token and self.link(token, call_id):
                log.info("web call %s linked to its ticket", call_id)


def public_status(ticket: Ticket, hotline: Any) -> dict[str, Any]:
    """The citizen page's view of its own call: nothing about anyone else."""
    out: dict[str, Any] = {"number": ticket.number, "label_zh": ticket.label_zh, "label_en": ticket.label_en,
                           "state": "connecting", "position": None, "ahead": None, "estimated_wait_s": None}
    if ticket.call_id is None or hotline is None:
        return out
    waiter = hotline.waiters.get(ticket.call_id)
    if waiter is None:
        out["state"] = "ended"
        return out
    try:
        state = hotline.acd.call(ticket.call_id).state.value
    except Exception:  # noqa: BLE001 - left the distributor between the two looks
        out["state"] = "ended"
        return out
    out["state"] = {"waiting": "waiting", "offered": "ringing", "on_call": "connected"}.get(state, "ended")
    if state == "waiting":
        pos = hotline.position(ticket.call_id)
        wait = hotline.estimated_wait(ticket.call_id)
        out.update(position=pos, ahead=None if pos is None else max(0, pos - 1),
                   estimated_wait_s=None if wait is None else round(wait))
    return out
