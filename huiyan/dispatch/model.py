"""The dispatch's pure decisions: one leg's state machine, how a failed dial is classified from what
Asterisk reported, when a leg is retried, and a dispatch's live state. No I/O here.

A leg's life (one party called into the emergency room):

    pending ─▶ calling ─▶ ringing ─▶ answered ─▶ joined ─▶ left
                  │          │           └────────────────▶ left      (hung up before joining)
                  └──────────┴─▶ busy | declined | no_answer | unreachable | failed
                                   └─ in the dispatch's `retry_on` and retries left: dialled again after
                                      `retry_interval_s` (status kept, `retry_at` set), back to calling
    any non-final state ─▶ dropped (the commander hung it up) | cancelled/left (the dispatch ended)

How a failed dial is told apart (checked on Asterisk 22): an endpoint with no registered contact fails
the Originate before any channel exists (Reason 0, no Hangup); a 603 Decline hangs the channel up with
cause 21 before the OriginateResponse (Reason 0); a ring timeout ends with Reason 3; busy is cause 17.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from huiyan.db.models import DispatchStatus, LegKind, LegStatus
from huiyan.pbx.outcome import dial_failure

__all__ = [
    "LegKind", "LegStatus", "DispatchStatus", "FINAL", "IN_CALL", "RETRYABLE", "RetryPolicy", "Party", "Leg",
    "DispatchState", "classify_failure", "auto_answer_variables", "DispatchError", "DispatchNotFound",
    "LegNotFound", "DispatchEnded", "LegFinished",
]

# Statuses after which nothing more happens to a leg (unless a retry is scheduled).
FINAL = frozenset({LegStatus.LEFT, LegStatus.BUSY, LegStatus.DECLINED, LegStatus.NO_ANSWER, LegStatus.UNREACHABLE,
                   LegStatus.FAILED, LegStatus.DROPPED, LegStatus.CANCELLED})
# Statuses with a call (or an Originate) in progress.
IN_CALL = frozenset({LegStatus.CALLING, LegStatus.RINGING, LegStatus.ANSWERED, LegStatus.JOINED})
DIALLING = frozenset({LegStatus.CALLING, LegStatus.RINGING})
# Outcomes a dispatch may retry; declined is never retried (somebody said no).
RETRYABLE = frozenset({LegStatus.UNREACHABLE, LegStatus.BUSY, LegStatus.NO_ANSWER, LegStatus.FAILED})

def classify_failure(reason: int | None, cause: int | None, *, channel_created: bool, rang: bool) -> LegStatus:
    """What a failed dial means for the dispatcher (see `huiyan.pbx.outcome.dial_failure`)."""
    return LegStatus(dial_failure(reason, cause, channel_created=channel_created, rang=rang))


def auto_answer_variables(host: str) -> dict[str, str]:
    """Channel variables for Originate that add `Call-Info: <sip:host>;answer-after=0` to the INVITE:
    terminals that support it answer at once (the 小鱼 terminals do); others just ring."""
    return {"PJSIP_HEADER(add,Call-Info)": f"<sip:{host}>;answer-after=0"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a dispatch dials: ring time, and which outcomes are dialled again, how often, how far apart."""

    retries: int = 2
    interval_s: float = 30.0
    on: frozenset[LegStatus] = frozenset({LegStatus.UNREACHABLE})
    ring_seconds: int = 30

    def __post_init__(self) -> None:
        bad = set(self.on) - RETRYABLE
        if bad:
            raise ValueError(f"cannot retry {', '.join(sorted(bad))}: only {', '.join(sorted(RETRYABLE))}")
        if self.retries < 0 or self.interval_s <= 0 or self.ring_seconds <= 0:
            raise ValueError("retries must be >= 0, the interval and the ring time > 0")

    def next_retry(self, status: LegStatus, attempts: int, now: float) -> float | None:
        """When to dial again after `attempts` dials ended in `status`; None: that was the last one."""
        if status in self.on and attempts <= self.retries:
            return now + self.interval_s
        return None

    def view(self) -> dict[str, Any]:
        return {"retries": self.retries, "retry_interval_s": self.interval_s,
                "retry_on": sorted(s.value for s in self.on), "ring_seconds": self.ring_seconds}


@dataclass(frozen=True, slots=True)
class Party:
    """Who a leg calls: `target` is what RoomControl.invite dials (an extension, a SIP URI, a number)."""

    kind: LegKind
    target: str
    name: str = ""
    device_id: int | None = None
    user_id: int | None = None
    organisation_id: int | None = None
    auto_answer: bool = False


# ---- errors (the API maps `status` to HTTP) ------------------------------------------------------------


class DispatchError(Exception):
    status = 400


class DispatchNotFound(DispatchError):
    status = 404


class LegNotFound(DispatchError):
    status = 404


class DispatchEnded(DispatchError):
    status = 409


class LegFinished(DispatchError):
    status = 409


# ---- one leg -------------------------------------------------------------------------------------------


@dataclass
class Leg:
    """One party's call into the dispatch room. Each transition returns whether anything changed."""

    id: int
    dispatch_id: int
    party: Party
    status: LegStatus = LegStatus.PENDING
    reason: str = ""
    attempts: int = 0
    channel_id: str = ""
    retry_at: float | None = None
    answered_at: float | None = None
    joined_at: float | None = None
    ended_at: float | None = None
    updated_at: float = field(default_factory=time.time)
    # What this attempt has seen so far (not persisted: only needed until the attempt's outcome).
    channel_created: bool = False
    rang: bool = False
    cause: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL and self.retry_at is None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    def _set(self, status: LegStatus, now: float, reason: str | None = None) -> bool:
        self.status, self.updated_at = status, now
        if reason is not None:
            self.reason = reason
        return True

    def dialling(self, channel_id: str, now: float) -> bool:
        """A new attempt: the Originate for `channel_id` is being sent."""
        if self.final or self.status in IN_CALL:
            raise LegFinished(f"leg {self.id} cannot be dialled now: it is {self.status.value}")
        self.attempts += 1
        self.channel_id, self.retry_at = channel_id, None
        self.channel_created, self.rang, self.cause = False, False, None
        return self._set(LegStatus.CALLING, now, "")

    def created(self) -> bool:
        """Asterisk created the attempt's channel (Newchannel): the endpoint was reachable enough to try."""
        self.channel_created = True
        return False

    def ringing(self, now: float) -> bool:
        self.channel_created = self.rang = True
        if self.status == LegStatus.CALLING:
            return self._set(LegStatus.RINGING, now)
        return False

    def answered(self, now: float) -> bool:
        if self.status in DIALLING:
            self.answered_at = now
            return self._set(LegStatus.ANSWERED, now, "")
        return False

    def joined(self, now: float) -> bool:
        if self.status in (*DIALLING, LegStatus.ANSWERED):
            self.joined_at = now
            self.answered_at = self.answered_at or now
            return self._set(LegStatus.JOINED, now)
        return False

    def left(self, now: float) -> bool:
        if self.status in (LegStatus.ANSWERED, LegStatus.JOINED):
            self.ended_at = now
            return self._set(LegStatus.LEFT, now)
        return False

    def hung_up(self, cause: int | None, now: float) -> bool:
        """The attempt's channel hung up: after the answer, the party left; before it, the cause tells the
        OriginateResponse that follows why the dial failed."""
        self.channel_created = True
        if self.status in (LegStatus.ANSWERED, LegStatus.JOINED):
            return self.left(now)
        if self.status in DIALLING:
            self.cause = cause
        return False

    def failed(self, reason: int | None, policy: RetryPolicy, now: float, detail: str = "") -> bool:
        """The Originate failed: classify it and decide whether to dial again."""
        if self.status not in DIALLING:
            return False
        outcome = classify_failure(reason, self.cause, channel_created=self.channel_created, rang=self.rang)
        return self.outcome(outcome, policy, now, detail)

    def outcome(self, status: LegStatus, policy: RetryPolicy, now: float, detail: str = "") -> bool:
        """The attempt ended with `status` (a failure); schedule a retry if the policy says so."""
        if self.status not in DIALLING:
            return False
        why = detail or (f"cause {self.cause}" if self.cause is not None else "")
        self._set(status, now, why)
        self.retry_at = policy.next_retry(status, self.attempts, now)
        if self.retry_at is None:
            self.ended_at = now
        return True

    def drop(self, now: float) -> bool:
        """The commander hangs this leg up (or cancels its next retry)."""
        if self.final:
            raise LegFinished(f"leg {self.id} ({self.party.target}) has already ended: {self.status.value}")
        self.retry_at, self.ended_at = None, now
        return self._set(LegStatus.DROPPED, now, "dropped by the commander")

    def close(self, now: float) -> bool:
        """The dispatch ends: whoever is in the room has left it, every other call is cancelled."""
        if self.final:
            return False
        self.retry_at, self.ended_at = None, now
        if self.status in (LegStatus.ANSWERED, LegStatus.JOINED):
            return self._set(LegStatus.LEFT, now, "the dispatch ended")
        return self._set(LegStatus.CANCELLED, now, "the dispatch ended")

    def view(self) -> dict[str, Any]:
        p = self.party
        return {
            "id": self.id, "dispatch_id": self.dispatch_id, "kind": p.kind.value, "target": p.target, "name": p.name,
            "device_id": p.device_id, "user_id": p.user_id, "organisation_id": p.organisation_id,
            "auto_answer": p.auto_answer, "status": self.status.value, "reason": self.reason,
            "final": self.final, "attempts": self.attempts, "retries": self.retries, "retry_at": self.retry_at,
            "channel_id": self.channel_id, "answered_at": self.answered_at, "joined_at": self.joined_at,
            "ended_at": self.ended_at, "updated_at": self.updated_at,
        }


# ---- one dispatch ------------------------------------------------------------------------------------


@dataclass
class DispatchState:
    """A dispatch as the runtime keeps it: its room, its policy, its legs."""

    id: int
    name: str
    room_id: int
    room_number: str
    policy: RetryPolicy
    group_id: int | None = None
    commander_user_id: int | None = None
    auto_answer: bool = True
    status: DispatchStatus = DispatchStatus.ACTIVE
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    legs: dict[int, Leg] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == DispatchStatus.ACTIVE

    def require_active(self) -> None:
        if not self.active:
            raise DispatchEnded(f"dispatch {self.id} has already ended")

    def leg(self, leg_id: int) -> Leg:
        leg = self.legs.get(leg_id)
        if leg is None:
            raise LegNotFound(f"dispatch {self.id} has no leg {leg_id}")
        return leg

    def calling(self, target: str) -> Leg | None:
        """The leg that is still calling (or waiting to call again) this target, if any."""
        return next((leg for leg in self.legs.values() if leg.party.target == target and not leg.final), None)

    def end(self, now: float) -> list[Leg]:
        """Close every leg; returns those that changed."""
        changed = [leg for leg in self.legs.values() if leg.close(now)]
        self.status, self.ended_at = DispatchStatus.ENDED, now
        return changed

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for leg in self.legs.values():
            out[leg.status.value] = out.get(leg.status.value, 0) + 1
        return dict(sorted(out.items()))

    def view(self, legs: Iterable[Leg] | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status.value, "group_id": self.group_id,
            "room_id": self.room_id, "room_number": self.room_number, "commander_user_id": self.commander_user_id,
            "auto_answer": self.auto_answer, **self.policy.view(), "started_at": self.started_at,
            "ended_at": self.ended_at, "counts": self.counts(),
            "legs": [leg.view() for leg in (legs if legs is not None else
                                            sorted(self.legs.values(), key=lambda x: x.id))],
        }
