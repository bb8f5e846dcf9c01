"""Mediation's pure decisions: case statuses and which changes are allowed, case numbers and dial-in PINs,
who sees which case, what a party needs to join, and which recording belongs to which session. No I/O.

Statuses (a case's life):

    open ──start a session──▶ in_session ──end it──▶ open            (the default when a session ends)
     │                          │
     ├──▶ settled ◀─────────────┤  (outcome required: the agreement)  ──▶ closed
     ├──▶ failed  ◀─────────────┘  (outcome required: why)            ──▶ closed, or ──▶ open to try again
     └──▶ closed (withdrawn)

`in_session` is entered only by starting a session and left to `open` only by ending it; a case may be
settled or failed during a session (the session goes on until the mediator ends it). A closed case is
read-only but for its notes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from random import Random
from typing import Any

from huiyan.db.models import CaseStatus, CaseType, PartyRole, Role

__all__ = [
    "CaseStatus", "CaseType", "PartyRole", "TRANSITIONS", "MEDIATOR_ROLES", "PIN_LENGTH", "MediationError",
    "CaseNotFound", "PartyNotFound", "InvalidTransition", "CaseConflict", "OutcomeRequired", "Forbidden",
    "NEEDS_OUTCOME", "check_transition", "check_editable", "new_pin", "case_number", "next_case_number", "JoinInfo",
    "join_info", "CaseScope", "assign_recordings",
]

TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.IN_SESSION, CaseStatus.SETTLED, CaseStatus.FAILED, CaseStatus.CLOSED}),
    CaseStatus.IN_SESSION: frozenset({CaseStatus.OPEN, CaseStatus.SETTLED, CaseStatus.FAILED}),
    CaseStatus.SETTLED: frozenset({CaseStatus.CLOSED}),
    CaseStatus.FAILED: frozenset({CaseStatus.OPEN, CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
}
NEEDS_OUTCOME = frozenset({CaseStatus.SETTLED, CaseStatus.FAILED})
MEDIATOR_ROLES = frozenset({Role.MEDIATOR, Role.SUPERVISOR})  # who may be a case's mediator
PIN_LENGTH = 6


# ---- errors (the API maps `status` to HTTP) --------------------------------------------------------------


class MediationError(Exception):
    status = 400


class CaseNotFound(MediationError):
    status = 404


class PartyNotFound(MediationError):
    status = 404


class InvalidTransition(MediationError):
    status = 409


class CaseConflict(MediationError):
    status = 409


class OutcomeRequired(MediationError):
    status = 422


class Forbidden(MediationError):
    status = 403


# ---- statuses ------------------------------------------------------------------------------------------


def check_transition(current: CaseStatus | str, target: CaseStatus | str, *, outcome: str | None = None,
                     by_session: bool = False, session_open: bool = False) -> None:
    """Raises (with the reason) unless a case may go from `current` to `target`. `by_session`: the change
    comes from starting or ending a session; `session_open`: a session is running now."""
    current, target = CaseStatus(current), CaseStatus(target)
    if target == current:
        raise InvalidTransition(f"the case is already {current.value}")
    allowed = TRANSITIONS[current]
    if target not in allowed:
        if not allowed:
            raise InvalidTransition(f"the case is {current.value}: a closed case cannot change any more")
        names = ", ".join(sorted(s.value for s in allowed))
        raise InvalidTransition(f"a case cannot go from {current.value} to {target.value} (from {current.value}: "
                                f"{names})")
    if target == CaseStatus.IN_SESSION and not by_session:
        raise InvalidTransition("a case goes in session when its mediator starts a session "
                                "(POST /api/mediation/cases/{id}/session)")
    if current == CaseStatus.IN_SESSION and target == CaseStatus.OPEN and not by_session:
        raise InvalidTransition("the case is in session: end the session (POST /api/mediation/cases/{id}/session/end)")
    if target == CaseStatus.CLOSED and session_open:
        raise InvalidTransition("a session of this case is still running: end it before closing the case")
    if target in NEEDS_OUTCOME and not (outcome or "").strip():
        raise OutcomeRequired(f"an outcome is required to mark a case {target.value} "
                              "(the agreement reached, or why mediation failed)")


def check_editable(status: CaseStatus | str, what: str) -> None:
    if CaseStatus(status) == CaseStatus.CLOSED:
        raise CaseConflict(f"the case is closed: cannot {what} (notes may still be added)")


# ---- numbers and PINs ------------------------------------------------------------------------------------


def new_pin(rng: Random | None = None, length: int = PIN_LENGTH) -> str:
    """A random numeric PIN for dialling in. No digit twice in a row: a doubled key press is the commonest
    keying slip, and keypads and DTMF relays that de-duplicate events can swallow the second one."""
    rng = rng or secrets.SystemRandom()
    digits = [rng.choice("0123456789")]
    while len(digits) < length:
        d = rng.choice("0123456789")
        if d != digits[-1]:
            digits.append(d)
    return "".join(digits)


def case_number(year: int, seq: int) -> str:
    """The case number people quote: year and a running number, e.g. 2026-00042."""
    return f"{year}-{seq:05d}"


def next_case_number(year: int, existing: Iterable[str]) -> str:
    """The next number in `year` after the existing ones (of any year)."""
    prefix = f"{year}-"
    seqs = [int(n[len(prefix):]) for n in existing if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return case_number(year, max(seqs, default=0) + 1)


# ---- joining ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinInfo:
    """What a party needs to join a session: dial the room number and key in the PIN, or (legacy rooms)
    call the SIP URI, or open the join page (its QR poster is the browser clients' part)."""

    room_number: str
    pin: str
    sip_uri: str
    join_path: str

    def view(self) -> dict[str, str]:
        return {"room_number": self.room_number, "pin": self.pin, "sip_uri": self.sip_uri,
                "join_path": self.join_path}


def join_info(room_number: str, pin: str, public_host: str) -> JoinInfo:
    return JoinInfo(room_number, pin, f"sip:{room_number}@{public_host}", f"/join/{room_number}?pin={pin}")


# ---- who sees which case ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseScope:
    """The cases a user may see and act on: admins (and supervisors attached to no organisation) every
    case; a supervisor those of their organisation and the organisations below it; everyone their own."""

    user_id: int
    role: Role
    everything: bool = False
    organisations: frozenset[int] = frozenset()

    def sees(self, organisation_id: int | None, mediator_id: int) -> bool:
        return (self.everything or mediator_id == self.user_id
                or (organisation_id is not None and organisation_id in self.organisations))

    @property
    def assigns(self) -> bool:
        """May give a case to another mediator (admins and supervisors)."""
        return self.role in (Role.ADMIN, Role.SUPERVISOR)




# ---- recordings ------------------------------------------------------------------------------------------


def assign_recordings(sessions: Sequence[tuple[int, datetime]], recordings: Sequence[tuple[Any, datetime]]
                      ) -> dict[Any, int | None]:
    """Recording key -> the mediation session it belongs to: the latest session started at or before the
    recording started (the room is only open during sessions); None for one older than every session."""
    ordered = sorted(sessions, key=lambda s: s[1])
    out: dict[Any, int | None] = {}
    for key, started in recordings:
        owner = None
        for sid, s_started in ordered:
            if s_started <= started:
                owner = sid
            else:
                break
        out[key] = owner
    return out
