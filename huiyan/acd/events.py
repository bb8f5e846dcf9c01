"""Typed events of the distributor: every state change lands in the outbox (`Distributor.drain_events`)
for the queue log and live statistics; the `Happening` subclasses are also returned by the operation
that caused them, because the runtime must act on them (stop ringing a phone, play a message, ...).

All are frozen dataclasses; `fast_init` only makes them cheaper to build (several per decision)."""

from __future__ import annotations

from dataclasses import dataclass

from huiyan.acd.model import AgentState, OfferResult, fast_init

__all__ = [
    "AcdEvent",
    "Happening",
    "CallQueued",
    "CallRefused",
    "CallOffered",
    "OfferFailed",
    "CallAnswered",
    "CallAbandoned",
    "CallCompleted",
    "CallTransferred",
    "CallRelaxed",
    "AgentStateChanged",
    "AgentPausePending",
    "OfferCancelled",
    "OfferTimedOut",
    "CallOverflowed",
    "CallTimedOut",
    "AgentAutoPaused",
    "WrapUpEnded",
]


@dataclass(frozen=True, slots=True)
class AcdEvent:
    """Base class; every event has an ``at`` (the `now` of the operation that caused it)."""


@dataclass(frozen=True, slots=True)
class Happening(AcdEvent):
    """An event the runtime must act on; returned by the operation (and `tick`) that caused it."""


# -- calls -------------------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class CallQueued(AcdEvent):
    call_id: str
    queue_id: str
    priority: int
    position: int
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallRefused(AcdEvent):
    """The join-empty policy refused the call; it never entered the queue."""

    call_id: str
    queue_id: str
    reason: str  # "no-agents" | "unavailable"
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallOffered(AcdEvent):
    call_id: str
    queue_id: str
    agent_ids: tuple[str, ...]
    deadline: float
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class OfferFailed(AcdEvent):
    """One agent did not take the offer (reported by the runtime); the call keeps its place in line."""

    call_id: str
    queue_id: str
    agent_id: str
    result: OfferResult
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallAnswered(AcdEvent):
    call_id: str
    queue_id: str
    agent_id: str
    waited: float  # seconds since entering this queue
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallAbandoned(AcdEvent):
    """The caller hung up while waiting (position >= 1) or while an agent was ringing (position 0)."""

    call_id: str
    queue_id: str
    waited: float
    position: int
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallCompleted(AcdEvent):
    call_id: str
    queue_id: str
    agent_id: str
    talk_time: float
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallTransferred(AcdEvent):
    """The call left the distributor by transfer; ``answered`` tells whether an agent had it first."""

    call_id: str
    queue_id: str
    agent_id: str | None
    target: str
    answered: bool
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallRelaxed(AcdEvent):
    """A relaxation step was reached: required levels are now lowered by ``level_delta``."""

    call_id: str
    queue_id: str
    level_delta: int
    at: float


# -- agents ------------------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class AgentStateChanged(AcdEvent):
    agent_id: str
    old: AgentState
    new: AgentState
    reason: str
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class AgentPausePending(AcdEvent):
    """A pause asked for during a call takes effect after its wrap-up; ``reason`` None: request withdrawn."""

    agent_id: str
    reason: str | None
    at: float


# -- happenings: the runtime acts on these -----------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class OfferCancelled(Happening):
    """Stop ringing these agents: the caller hung up, another agent answered (ring-all), the agent paused
    or logged out, or the call was transferred away."""

    call_id: str
    queue_id: str
    agent_ids: tuple[str, ...]
    reason: str  # "abandoned" | "answered-elsewhere" | "agent-paused" | "agent-logged-out" | "transferred"
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class OfferTimedOut(Happening):
    """Nobody answered before the ring timeout: stop ringing; counts as no answer for each agent."""

    call_id: str
    queue_id: str
    agent_ids: tuple[str, ...]
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallOverflowed(Happening):
    """Max wait reached: the call now waits in ``to_queue_id`` (keeping its arrival time)."""

    call_id: str
    queue_id: str
    to_queue_id: str
    waited: float
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CallTimedOut(Happening):
    """Max wait reached and no overflow queue: the call left with reason "timeout"."""

    call_id: str
    queue_id: str
    waited: float
    at: float
    reason: str = "timeout"


@fast_init
@dataclass(frozen=True, slots=True)
class AgentAutoPaused(Happening):
    agent_id: str
    queue_id: str
    unanswered: int  # consecutive unanswered offers that triggered it
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class WrapUpEnded(Happening):
    """Wrap-up time is over; the agent is available again (or paused, if a pause was pending)."""

    agent_id: str
    at: float
