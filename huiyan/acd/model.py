"""Values the distributor takes and gives: queue and agent settings, offers, read-only views and statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar

from huiyan.acd.errors import InvalidArgument

__all__ = [
    "Strategy",
    "JoinEmpty",
    "AgentState",
    "CallState",
    "OfferResult",
    "QueueConfig",
    "AgentConfig",
    "Membership",
    "Offer",
    "EnqueueResult",
    "AgentView",
    "CallView",
    "QueueStats",
    "AgentStats",
    "Stats",
    "MIN_LEVEL",
    "MAX_LEVEL",
]

MIN_LEVEL = 1
MAX_LEVEL = 10

_T = TypeVar("_T")


def fast_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots through their descriptors.

    Why: the generated ``__init__`` of a frozen dataclass calls ``object.__setattr__`` once per field, which
    makes an offer's two events and the `Offer` cost ~0.5 us each, a sixth of a decision. Filling the slots
    directly halves that; the instance is the same (still frozen, same signature, defaults, eq, hash)."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    params = []
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            assert f.default_factory is MISSING, f"{cls.__name__}.{f.name}: no default factories here"
            params.append(f.name)
    body = "".join(f"\n    _set_{n}(self, {n})" for n in names) or "\n    pass"
    exec(f"def __init__(self, {', '.join(params)}):{body}", namespace)  # noqa: S102 - built from field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


class Strategy(StrEnum):
    """How a queue picks among the agents able to take a call (ties: longest idle, then agent id)."""

    LONGEST_IDLE = "longest-idle"  # the agent whose last call (with wrap-up) ended longest ago, or who logged in
    FEWEST_CALLS = "fewest-calls"  # the agent who answered the fewest calls from this queue since login
    ROUND_ROBIN = "round-robin"  # the agent offered a call from this queue least recently (rotation)
    RING_ALL = "ring-all"  # every able agent at once; the first to answer wins
    SKILLS = "skills"  # the highest summed level in the call's required skills, then longest idle


class JoinEmpty(StrEnum):
    """Whether a caller may join when nobody able to serve them could answer (counts agents that meet the
    call's requirements at the queue's widest relaxation)."""

    JOIN = "join"  # always join
    REFUSE_NO_AGENTS = "refuse-no-agents"  # refuse when no able agent is logged in
    REFUSE_UNAVAILABLE = "refuse-unavailable"  # refuse when every able agent is logged out or paused


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"  # ringing
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # after-call work, until `wrap_until`
    PAUSED = "paused"


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # ringing one agent, or several (ring-all)
    ON_CALL = "on_call"  # answered
    ENDED = "ended"  # left the distributor (only seen on objects the caller kept)


class OfferResult(StrEnum):
    """Why an offered agent did not take the call (ring timeouts are reported by `tick` instead)."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # the agent's device could not be reached


def _finite(name: str, value: float, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise InvalidArgument(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return float(value)


def _level(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_LEVEL <= value <= MAX_LEVEL:
        raise InvalidArgument(f"skill {name!r}: level must be an integer {MIN_LEVEL}..{MAX_LEVEL}, got {value!r}")
    return value


def check_skills(skills: Mapping[str, int] | None, what: str) -> dict[str, int]:
    """Validate a {skill: level} mapping (levels 1..10) and return a plain dict copy."""
    if skills is None:
        return {}
    if not isinstance(skills, Mapping):
        raise InvalidArgument(f"{what} must be a mapping of skill name to level, got {type(skills).__name__}")
    out: dict[str, int] = {}
    for name, level in skills.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"{what}: skill names must be non-empty strings, got {name!r}")
        out[name] = _level(name, level)
    return out


@dataclass(frozen=True)
class QueueConfig:
    """One queue's settings. Times are seconds.

    relaxation: steps ``(after_seconds, level_delta)``; once a caller has waited ``after_seconds`` (since
    arriving, see `Distributor`), every required level is lowered by that step's ``level_delta`` (the
    delta of the latest step reached, not a sum), but never below 1: relaxation widens the pool to
    less expert agents, never to agents who lack a required skill. Steps must be in increasing time
    with non-decreasing deltas, so requirements only ever widen as a caller waits.
    """

    id: str
    name: str = ""
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout: float = 15.0
    wrapup: float = 0.0
    max_wait: float | None = None  # None: wait forever
    overflow_to: str | None = None  # queue id taken at max_wait; None: the call leaves (CallTimedOut)
    join_empty: JoinEmpty = JoinEmpty.JOIN
    sl_threshold: float = 20.0  # "answered within" bound of the service level
    sl_target: float = 0.8  # the goal, reported next to the measured service level
    auto_pause_after: int = 0  # pause an agent after this many consecutive unanswered offers; 0 = off
    relaxation: tuple[tuple[float, int], ...] = ()
    expected_handle_time: float = 180.0  # used by estimated_wait until the queue has handled calls

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidArgument(f"queue id must be a non-empty string, got {self.id!r}")
        try:
            object.__setattr__(self, "strategy", Strategy(self.strategy))
        except ValueError:
            raise InvalidArgument(
                f"queue {self.id}: unknown strategy {self.strategy!r}; one of {', '.join(s.value for s in Strategy)}"
            ) from None
        try:
            object.__setattr__(self, "join_empty", JoinEmpty(self.join_empty))
        except ValueError:
            raise InvalidArgument(
                f"queue {self.id}: unknown join_empty {self.join_empty!r}; "
                f"one of {', '.join(j.value for j in JoinEmpty)}"
            ) from None
        object.__setattr__(self, "ring_timeout", _finite("ring_timeout", self.ring_timeout))
        if self.ring_timeout <= 0:
            raise InvalidArgument(f"queue {self.id}: ring_timeout must be > 0")
        object.__setattr__(self, "wrapup", _finite("wrapup", self.wrapup))
        if self.max_wait is not None:
            object.__setattr__(self, "max_wait", _finite("max_wait", self.max_wait))
        if self.overflow_to is not None and self.max_wait is None:
            raise InvalidArgument(f"queue {self.id}: overflow_to needs a max_wait")
        if self.overflow_to == self.id:
            raise InvalidArgument(f"queue {self.id}: cannot overflow to itself")
        object.__setattr__(self, "sl_threshold", _finite("sl_threshold", self.sl_threshold))
        object.__setattr__(self, "sl_target", _finite("sl_target", self.sl_target))
        if self.sl_target > 1:
            raise InvalidArgument(f"queue {self.id}: sl_target is a fraction 0..1, got {self.sl_target}")
        n = self.auto_pause_after
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidArgument(f"queue {self.id}: auto_pause_after must be an integer >= 0, got {n!r}")
        object.__setattr__(
            self, "expected_handle_time", _finite("expected_handle_time", self.expected_handle_time)
        )
        steps: list[tuple[float, int]] = []
        for step in self.relaxation:
            try:
                after, delta = step
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"queue {self.id}: relaxation step must be (after_seconds, level_delta), got {step!r}"
                ) from None
            after = _finite("relaxation after_seconds", after)
            if isinstance(delta, bool) or not isinstance(delta, int) or delta < 0:
                raise InvalidArgument(f"queue {self.id}: relaxation level_delta must be an integer >= 0, got {delta!r}")
            if steps and (after <= steps[-1][0] or delta < steps[-1][1]):
                raise InvalidArgument(
                    f"queue {self.id}: relaxation steps must have increasing after_seconds and non-decreasing deltas"
                )
            steps.append((after, delta))
        object.__setattr__(self, "relaxation", tuple(steps))


@dataclass(frozen=True)
class AgentConfig:
    """An agent as the directory knows them. ``wrapup`` overrides every queue's wrap-up time when set."""

    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    wrapup: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidArgument(f"agent id must be a non-empty string, got {self.id!r}")
        object.__setattr__(self, "skills", check_skills(self.skills, f"agent {self.id} skills"))
        if self.wrapup is not None:
            object.__setattr__(self, "wrapup", _finite("wrapup", self.wrapup))


@dataclass(frozen=True)
class Membership:
    """An agent's place in one queue. Lower penalty is served first: an agent with penalty 1 is offered a
    call only when no able agent with penalty 0 is available (app_queue's member penalty)."""

    queue_id: str
    penalty: int = 0

    def __post_init__(self) -> None:
        p = self.penalty
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise InvalidArgument(f"queue {self.queue_id}: penalty must be an integer >= 0, got {p!r}")


@fast_init
@dataclass(frozen=True, slots=True)
class Offer:
    """Ring these agents for this call now. One agent, or every able one for ring-all. Unanswered at
    ``deadline``, `tick` withdraws it (OfferTimedOut)."""

    call_id: str
    agent_ids: tuple[str, ...]
    queue_id: str
    deadline: float


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """Either accepted with a 1-based position, or refused with a reason ("no-agents", "unavailable")."""

    accepted: bool
    position: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    state: AgentState
    reason: str  # why the last state change happened (pause reason, offer result, ...)
    since: float
    queues: Mapping[str, int]  # queue id -> penalty, while logged in
    skills: Mapping[str, int]
    call_id: str | None  # the call offered to or connected with the agent
    wrap_until: float | None
    idle_since: float | None
    pause_pending: str | None  # pause requested during a call; applies after wrap-up


@dataclass(frozen=True, slots=True)
class CallView:
    id: str
    queue_id: str
    state: CallState
    priority: int
    requires: Mapping[str, int]
    data: Mapping[str, Any]
    arrived_at: float  # entered the distributor (kept across overflow): orders the line, drives relaxation
    entered_at: float  # entered the current queue: drives max wait, speed of answer, service level
    agent_ids: tuple[str, ...]  # ringing agents, or the connected agent


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue_id: str
    waiting: int
    ringing: int
    longest_wait: float  # seconds since arrival of the longest-waiting caller still waiting; 0 if none
    entered: int  # enqueued here, or overflowed in
    answered: int
    answered_within: int  # answered within sl_threshold of entering this queue
    abandoned: int
    abandoned_after: int  # abandoned after sl_threshold
    timed_out: int
    overflowed: int  # left to the overflow queue
    transferred: int  # transferred out before being answered
    refused: int  # refused at enqueue by the join-empty policy
    service_level: float | None  # answered_within / (answered + abandoned_after); None before any such call
    sl_target: float
    average_speed_of_answer: float | None  # mean seconds from entering this queue to answer
    average_handle_time: float | None  # mean talk + wrap-up seconds of calls handled from this queue
    agents_logged_in: int
    agents_available: int


@dataclass(frozen=True, slots=True)
class AgentStats:
    agent_id: str
    state: AgentState
    reason: str
    seconds_in_state: float
    calls_handled: int  # answered calls, since the distributor started
    occupancy: float | None  # (talk + wrap-up seconds) / logged-in seconds; None if never logged in


@dataclass(frozen=True, slots=True)
class Stats:
    at: float
    queues: Mapping[str, QueueStats]
    agents: Mapping[str, AgentStats]
