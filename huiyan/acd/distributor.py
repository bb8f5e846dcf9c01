"""The call distributor (自动话务分配, ACD): who gets which waiting call, as pure state driven by a `now`.

No sockets, no asyncio, no clock: the runtime (FastAGI + AMI) calls these methods with the loop's time
and carries out what comes back. The contract, in the order the runtime uses it::

    acd = Distributor()
    acd.configure_queue(QueueConfig("family", strategy="skills", wrapup=10, max_wait=120, overflow_to="general"))
    acd.configure_agent(AgentConfig("a1", skills={"mandarin": 9, "family_law": 7}))
    acd.login("a1", ["family", Membership("general", penalty=1)], now)
    r = acd.enqueue("chan-17", "family", now, priority=0, requires={"mandarin": 5, "family_law": 6})
    for offer in acd.next_offers(now):       # ring offer.agent_ids for offer.call_id until offer.deadline
        ...
    acd.answered("chan-17", "a1", now)       # or offer_failed(..., OfferResult.NO_ANSWER), abandon(...)
    acd.call_ended("chan-17", now)           # agent -> wrap-up -> available (tick) -> next_offers
    happenings = acd.tick(now)               # at acd.next_deadline(): ring timeouts, wrap-up ends, max wait
    events = acd.drain_events()              # everything, for the queue log and live statistics

After any operation or tick, call `next_offers(now)`: nothing is offered behind the runtime's back, and
an operation never offers by itself. Call `tick(now)` before `next_offers(now)` once `now` has reached
`next_deadline()`. Operations return the `Happening`s they caused (the runtime must act on these: stop
ringing a phone, play a message); all events, those included, also go to the outbox.

Time: ``now`` is any monotonic float (seconds). A ``now`` earlier than one already seen is taken as the
latest seen, so durations never go negative. Each call has two times:
``arrived_at`` (first enqueue, kept across overflow; orders the line, drives relaxation and longest
wait) and ``entered_at`` (entry into its current queue; drives max wait, speed of answer, service level).

Rules:
- Calls are served by priority (higher first), then arrival (FIFO), across the queues an agent serves.
  Required skills are hard limits in every strategy: an agent needs each required skill at
  ``max(1, min_level - delta)`` where delta comes from the queue's relaxation steps reached so far.
- An agent has at most one call offered or connected. A failed offer puts the call back at its original
  place in line; the next offer of that call prefers an agent (of the same penalty) who has not already
  missed it. A call that reaches max wait while ringing keeps ringing; if that offer fails it leaves.
- Unanswered offers (no answer, busy, failed, ring timeout) count toward auto-pause; withdrawing an offer
  because the caller hung up or the agent paused does not.

Complexity (n agents, m waiting calls; Pa, Pc, P as below).
- Available agents of a queue are grouped by (skill set, penalty): one binary heap per group, keyed by
  the strategy (idle-since, calls taken, round-robin turn). Entries go stale through a per-agent
  version number instead of being removed, so an agent in k queues leaves them in O(k); a heap is
  rebuilt when stale entries outnumber live ones, so a push stays amortised O(log n).
- Waiting calls of a queue are grouped by (required skills, priority), each group a `RankedSet` in
  (arrival, sequence) order: its head has waited longest, so it is the most relaxed call of the group,
  and if the head has no able agent no call of the group has one. A second `RankedSet` per priority
  gives exact positions in O(P + log m), P = distinct priorities waiting.
- Only a change can make a new (call, agent) match: an agent becoming available, a call entering a
  line, a group head reaching a relaxation step, new settings. `next_offers` looks only at those. With
  one change since the last call (the runtime's normal rhythm: it asks after every operation) the
  answer is direct: a freed agent scans the heads of the call groups of its queues, O(Pc), and takes
  the first it can serve; a new call that heads its group picks its agent, O(Pa + log n). With several
  changes, the heads of the changed queues' groups go into a heap and are served in order: each offer
  costs O(log Pc + Pa + log n + log m), each group found blocked O(log Pc + Pa), once per call.
- Pa (agent groups of a queue) and Pc (call groups) count distinct skill profiles, not agents or
  calls: no decision cost grows with the number of agents or callers beyond the O(log n + log m) of
  the heaps and ranked sets. The able agent groups per (requirements, relaxation) are cached.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from heapq import heapify, heappop, heappush, heapreplace
from itertools import count
from operator import itemgetter
from typing import Any

from huiyan.acd.errors import InvalidArgument, InvalidTransition, UnknownAgent, UnknownCall, UnknownQueue
from huiyan.acd.events import (
    AcdEvent,
    AgentAutoPaused,
    AgentPausePending,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRefused,
    CallRelaxed,
    CallTimedOut,
    CallTransferred,
    Happening,
    OfferCancelled,
    OfferFailed,
    OfferTimedOut,
    WrapUpEnded,
)
from huiyan.acd.model import (
    AgentConfig,
    AgentState,
    AgentStats,
    AgentView,
    CallState,
    CallView,
    EnqueueResult,
    JoinEmpty,
    Membership,
    Offer,
    OfferResult,
    QueueConfig,
    QueueStats,
    Stats,
    Strategy,
    check_skills,
)
from huiyan.acd.ranked import RankedSet

__all__ = ["Distributor"]

_LOGGED_OUT = AgentState.LOGGED_OUT
_AVAILABLE = AgentState.AVAILABLE
_OFFERED = AgentState.OFFERED
_ON_CALL = AgentState.ON_CALL
_WRAP_UP = AgentState.WRAP_UP
_PAUSED = AgentState.PAUSED
_BUSY = frozenset((_ON_CALL, _WRAP_UP))

_WAITING = CallState.WAITING
_RINGING = CallState.OFFERED
_CONNECTED = CallState.ON_CALL
_ENDED = CallState.ENDED

_FEWEST = Strategy.FEWEST_CALLS
_ROUND_ROBIN = Strategy.ROUND_ROBIN
_RING_ALL = Strategy.RING_ALL
_SKILLS = Strategy.SKILLS

# timer kinds; a timer is (time, sequence, kind, object, version, extra) and is stale once the object moved on
_T_RING, _T_WRAP, _T_MAXWAIT, _T_RELAX = range(4)

_by_tier = itemgetter(0)
_INF = math.inf
# how an agent in each state counts in its groups: (logged in, active = not paused, available)
_COUNTS = {
    _LOGGED_OUT: (0, 0, 0), _AVAILABLE: (1, 1, 1), _OFFERED: (1, 1, 0), _ON_CALL: (1, 1, 0), _WRAP_UP: (1, 1, 0),
    _PAUSED: (1, 0, 0),
}  # fmt: skip

Profile = tuple[tuple[str, int], ...]  # sorted (skill, level) pairs: an agent's skills or a call's needs


class _Member:
    """An agent's membership of one queue while logged in."""

    __slots__ = ("queue", "penalty", "group", "calls", "rr")

    def __init__(self, queue: _Queue, penalty: int, group: _AgentGroup, rr: int) -> None:
        self.queue = queue
        self.penalty = penalty
        self.group = group
        self.calls = 0  # answered from this queue since login (fewest-calls)
        self.rr = rr  # round-robin turn: the queue's counter when last offered a call (or logged in)


class _AgentGroup:
    """A queue's agents with one skill set and penalty: interchangeable except for the strategy key.

    ``heap`` holds (key1, key2, agent_id, version, agent) for available agents, possibly stale."""

    __slots__ = ("skills", "penalty", "heap", "live", "n_in", "n_active", "can")

    def __init__(self, skills: dict[str, int], penalty: int) -> None:
        self.skills = skills
        self.penalty = penalty
        self.can: dict[int, bool] = {}  # requirement key (see _req_key) -> able; skills never change
        self.heap: list[tuple[Any, ...]] = []
        self.live = 0  # available agents (valid heap entries)
        self.n_in = 0  # logged in
        self.n_active = 0  # logged in and not paused


class _CallGroup:
    """A queue's waiting calls with one requirement profile and priority, in arrival order."""

    __slots__ = ("req", "rid", "priority", "keys")

    def __init__(self, req: Profile, rid: int, priority: int) -> None:
        self.req = req
        self.rid = rid
        self.priority = priority
        self.keys = RankedSet()  # (arrived_at, seq, call)


class _Queue:
    __slots__ = (
        "cfg", "id", "steps", "agent_groups", "call_groups", "heads", "lines", "elig", "n_in", "n_active",
        "n_available", "n_waiting", "n_ringing", "rr",
        "entered", "answered", "answered_within", "answer_wait_sum", "abandoned", "abandoned_after",
        "timed_out", "overflowed", "transferred", "refused", "handled", "handle_sum", "recent", "recent_sum",
    )  # fmt: skip

    def __init__(self, cfg: QueueConfig, aht_window: int) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.steps = cfg.relaxation
        self.agent_groups: dict[tuple[Profile, int], _AgentGroup] = {}
        self.call_groups: dict[tuple[Profile, int], _CallGroup] = {}
        # non-empty call groups -> (-priority, arrived_at, seq, queue, group) of their head, for next_offers
        self.heads: dict[_CallGroup, tuple[Any, ...]] = {}
        # priority -> every waiting call of that priority, for exact positions in O(log m)
        self.lines: dict[int, RankedSet] = {}
        # requirement key (see _req_key) -> [(tier, agent group)] sorted by tier
        self.elig: dict[int, list[tuple[tuple[int, int], _AgentGroup]]] = {}
        self.n_in = 0  # agents logged in to the queue
        self.n_active = 0  # ... and not paused: the agents serving it
        self.n_available = 0
        self.n_waiting = 0
        self.n_ringing = 0
        self.rr = 0
        self.entered = self.answered = self.answered_within = self.abandoned = self.abandoned_after = 0
        self.timed_out = self.overflowed = self.transferred = self.refused = self.handled = 0
        self.answer_wait_sum = self.handle_sum = self.recent_sum = 0.0
        self.recent: deque[float] = deque(maxlen=aht_window)


class _Agent:
    __slots__ = (
        "id", "skills", "profile", "wrapup", "state", "since", "reason", "ver", "members", "idle_since",
        "handled", "misses", "pending_pause", "call", "wrap_until", "wrap_token", "wrap_queue", "wrap_talk",
        "wrap_since", "login_at", "in_total", "busy_since", "busy_total",
    )  # fmt: skip

    def __init__(self, cfg: AgentConfig, profile: Profile, now: float) -> None:
        self.id = cfg.id
        self.skills = dict(cfg.skills)
        self.profile = profile
        self.wrapup = cfg.wrapup
        self.state = _LOGGED_OUT
        self.since = now
        self.reason = "configured"
        self.ver = 0  # bumped on every state change: heap entries carry the version they were pushed with
        self.members: dict[str, _Member] = {}
        self.idle_since = now
        self.handled = 0
        self.misses = 0  # consecutive unanswered offers
        self.pending_pause: str | None = None
        self.call: _Call | None = None
        self.wrap_until: float | None = None
        self.wrap_token = 0
        self.wrap_queue: _Queue | None = None
        self.wrap_talk = 0.0
        self.wrap_since = 0.0
        self.login_at = 0.0
        self.in_total = 0.0
        self.busy_since = 0.0
        self.busy_total = 0.0


class _Call:
    __slots__ = (
        "id", "queue", "priority", "req", "rid", "data", "arrived_at", "seq", "key", "entered_at", "state", "tver",
        "offer_agents", "offer_ver", "missed", "expired", "agent", "answered_at",
    )  # fmt: skip

    def __init__(
        self, call_id: str, priority: int, req: Profile, rid: int, data: dict[str, Any], arrived_at: float, seq: int
    ) -> None:
        self.id = call_id
        self.queue: _Queue
        self.priority = priority
        self.req = req
        self.rid = rid
        self.data = data
        self.arrived_at = arrived_at
        self.seq = seq
        self.key = (arrived_at, seq, self)  # seq is unique, so comparisons never reach the call itself
        self.entered_at = arrived_at
        self.state = _WAITING
        self.tver = 0  # queue visit: max-wait and relaxation timers carry it
        self.offer_agents: list[_Agent] = []
        self.offer_ver = 0
        self.missed: set[str] | None = None  # agents who did not answer this call (soft avoidance)
        self.expired = False  # max wait was reached while ringing: leave if this offer fails
        self.agent: _Agent | None = None
        self.answered_at = 0.0


def _timer_live(timer: tuple[Any, ...]) -> bool:
    """Whether a timer (time, seq, kind, object, version, extra) still applies to its object."""
    _, _, kind, obj, ver, _ = timer
    if kind == _T_RING:
        return obj.state is _RINGING and obj.offer_ver == ver
    if kind == _T_WRAP:
        return obj.state is _WRAP_UP and obj.wrap_token == ver
    return obj.tver == ver and obj.state is not _ENDED and obj.state is not _CONNECTED


class Distributor:
    """The ACD's whole state. Not thread-safe and not async: one event loop calls it, one call at a time.

    Errors: unknown ids raise `UnknownQueue`/`UnknownAgent`/`UnknownCall`; an operation that does not
    fit the current state raises `InvalidTransition`; bad values raise `InvalidArgument`. A failed
    operation changes nothing.
    """

    def __init__(self, *, aht_window: int = 20) -> None:
        """``aht_window``: how many recent handled calls per queue feed `estimated_wait`'s handle time."""
        if isinstance(aht_window, bool) or not isinstance(aht_window, int) or aht_window < 1:
            raise InvalidArgument(f"aht_window must be an integer >= 1, got {aht_window!r}")
        self._aht_window = aht_window
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        self._timers: list[tuple[Any, ...]] = []
        self._timers_limit = 1024
        self._timer_seq = count()
        self._call_seq = count()
        # What changed since the last next_offers: only these can make a new (call, agent) match.
        self._fresh_agents: list[_Agent] = []  # became available
        self._fresh_calls: list[_Call] = []  # entered a line (new, requeued, overflowed in)
        self._dirty: dict[_Queue, None] = {}  # anything else: relaxation step, new settings
        self._outbox: list[AcdEvent] = []
        self._now = -math.inf
        self._profiles: dict[Profile, Profile] = {}  # interned, so equal profiles share one tuple
        self._rids: dict[Profile, int] = {}  # requirement profile -> small int, for cheap cache keys

    # -- configuration ---------------------------------------------------------------------------------

    def configure_queue(self, config: QueueConfig) -> None:
        """Add a queue, or replace an existing queue's settings (in effect at once, calls already waiting
        included: their max-wait and relaxation timers are recomputed). The overflow queue must exist."""
        if not isinstance(config, QueueConfig):
            raise InvalidArgument(f"configure_queue takes a QueueConfig, got {type(config).__name__}")
        if config.overflow_to is not None and config.overflow_to not in self._queues:
            raise UnknownQueue(f"queue {config.id}: overflow queue {config.overflow_to!r} is not configured")
        q = self._queues.get(config.id)
        if q is None:
            self._queues[config.id] = _Queue(config, self._aht_window)
            return
        old = q.cfg
        q.cfg = config
        q.steps = config.relaxation
        q.elig.clear()
        if old.strategy != config.strategy:
            for g in q.agent_groups.values():
                agents = [e[4] for e in g.heap if e[4].ver == e[3]]
                g.heap = []
                for a in agents:
                    heappush(g.heap, self._entry(a, a.members[q.id]))
        if old.max_wait != config.max_wait or old.relaxation != config.relaxation:
            now = max(self._now, 0.0)
            for c in self._calls.values():
                if c.queue is q and c.state is not _CONNECTED:
                    c.tver += 1
                    self._call_timers(c, now)
        self._dirty[q] = None

    def configure_agent(self, config: AgentConfig) -> None:
        """Add an agent (logged out), or replace an agent's skills and wrap-up override. A logged-in agent
        is regrouped at once; an offer or call in progress is not affected."""
        if not isinstance(config, AgentConfig):
            raise InvalidArgument(f"configure_agent takes an AgentConfig, got {type(config).__name__}")
        profile = self._intern(tuple(sorted(config.skills.items())))
        a = self._agents.get(config.id)
        if a is None:
            self._agents[config.id] = _Agent(config, profile, max(self._now, 0.0))
            return
        a.wrapup = config.wrapup
        if profile == a.profile:
            return
        self._count(a, -1)
        a.ver += 1
        a.skills = dict(config.skills)
        a.profile = profile
        for m in a.members.values():
            m.group = self._agent_group(m.queue, a, m.penalty)
        self._count(a, +1)

    # -- agents ----------------------------------------------------------------------------------------

    def login(self, agent_id: str, queues: Iterable[str | Membership], now: float) -> list[Happening]:
        """Log a configured agent into these queues (ids, or `Membership` for a penalty); available at once."""
        now = self._clock(now)
        a = self._agent(agent_id)
        if a.state is not _LOGGED_OUT:
            raise InvalidTransition(f"agent {agent_id} is already logged in ({a.state})")
        if isinstance(queues, (str, Membership)):
            queues = [queues]
        wanted: dict[str, Membership] = {}
        for item in queues:
            m = item if isinstance(item, Membership) else Membership(item) if isinstance(item, str) else None
            if m is None:
                raise InvalidArgument(f"agent {agent_id}: queues must be ids or Membership, got {item!r}")
            if m.queue_id in wanted:
                raise InvalidArgument(f"agent {agent_id}: queue {m.queue_id} listed twice")
            self._queue(m.queue_id)
            wanted[m.queue_id] = m
        for qid, m in wanted.items():
            q = self._queues[qid]
            q.rr += 1
            a.members[qid] = _Member(q, m.penalty, self._agent_group(q, a, m.penalty), q.rr)
        a.idle_since = now
        a.misses = 0
        a.pending_pause = None
        self._set_state(a, _AVAILABLE, now, "login")
        return []

    def logout(self, agent_id: str, now: float) -> list[Happening]:
        """Log out. Refused during a call; a ringing offer is withdrawn (the call keeps its place)."""
        now = self._clock(now)
        a = self._agent(agent_id)
        if a.state is _LOGGED_OUT:
            raise InvalidTransition(f"agent {agent_id} is not logged in")
        if a.state is _ON_CALL:
            call_id = a.call.id if a.call is not None else "?"
            raise InvalidTransition(f"agent {agent_id} is on call {call_id}; end or transfer it first")
        acts: list[Happening] = []
        if a.state is _OFFERED:
            self._withdraw(a, now, "agent-logged-out", acts)
        elif a.state is _WRAP_UP:
            self._record_handle(a, now)
        a.pending_pause = None
        self._set_state(a, _LOGGED_OUT, now, "logout")
        a.members = {}
        return acts

    def pause(self, agent_id: str, now: float, reason: str = "") -> list[Happening]:
        """Pause (not ready). Ringing: the offer is withdrawn. Wrap-up: cut short. On a call: the pause is
        kept pending and applies when the call's wrap-up ends (AgentPausePending)."""
        now = self._clock(now)
        a = self._agent(agent_id)
        reason = str(reason)
        s = a.state
        if s is _LOGGED_OUT:
            raise InvalidTransition(f"agent {agent_id} is not logged in")
        if s is _PAUSED:
            raise InvalidTransition(f"agent {agent_id} is already paused ({a.reason})")
        acts: list[Happening] = []
        if s is _ON_CALL:
            a.pending_pause = reason
            self._outbox.append(AgentPausePending(a.id, reason, now))
            return acts
        if s is _OFFERED:
            self._withdraw(a, now, "agent-paused", acts)
        elif s is _WRAP_UP:
            self._record_handle(a, now)
            a.idle_since = now
        a.pending_pause = None
        self._set_state(a, _PAUSED, now, reason)
        return acts

    def unpause(self, agent_id: str, now: float) -> list[Happening]:
        """End a pause (the agent is available again), or withdraw a pending one."""
        now = self._clock(now)
        a = self._agent(agent_id)
        if a.state is _PAUSED:
            a.misses = 0
            self._set_state(a, _AVAILABLE, now, "unpause")
        elif a.pending_pause is not None:
            a.pending_pause = None
            self._outbox.append(AgentPausePending(a.id, None, now))
        else:
            raise InvalidTransition(f"agent {agent_id} is not paused ({a.state})")
        return []

    def finish_wrapup(self, agent_id: str, now: float) -> list[Happening]:
        """End wrap-up early; the agent is available (or paused, if a pause is pending)."""
        now = self._clock(now)
        a = self._agent(agent_id)
        if a.state is not _WRAP_UP:
            raise InvalidTransition(f"agent {agent_id} is not in wrap-up ({a.state})")
        acts: list[Happening] = []
        self._end_wrapup(a, now, acts)
        return acts

    # -- calls -----------------------------------------------------------------------------------------

    def enqueue(
        self,
        call_id: str,
        queue_id: str,
        now: float,
        *,
        priority: int = 0,
        requires: Mapping[str, int] | None = None,
        data: Mapping[str, Any] | None = None,
        arrived_at: float | None = None,
    ) -> EnqueueResult:
        """A caller joins a queue. ``requires`` {skill: min_level 1..10} comes from the menu choice and the
        caller's language; ``data`` is kept for the runtime (shown in `call`); ``arrived_at`` (default
        ``now``, never later) lets a caller re-enqueued after a restart keep their place. Refused calls
        (join-empty policy) are not kept."""
        now = self._clock(now)
        if not isinstance(call_id, str) or not call_id:
            raise InvalidArgument(f"call id must be a non-empty string, got {call_id!r}")
        q = self._queue(queue_id)
        if call_id in self._calls:
            raise InvalidTransition(f"call {call_id} is already in queue {self._calls[call_id].queue.id}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidArgument(f"call {call_id}: priority must be an integer, got {priority!r}")
        req = self._intern(tuple(sorted(check_skills(requires, f"call {call_id} requires").items())))
        rid = self._rids.get(req)
        if rid is None:
            rid = self._rids[req] = len(self._rids)
        if arrived_at is None:
            arrived = now
        else:
            if isinstance(arrived_at, bool) or not isinstance(arrived_at, (int, float)) or not math.isfinite(
                arrived_at
            ):
                raise InvalidArgument(f"call {call_id}: arrived_at must be a finite number, got {arrived_at!r}")
            arrived = min(float(arrived_at), now)
        if data is not None and not isinstance(data, Mapping):
            raise InvalidArgument(f"call {call_id}: data must be a mapping, got {type(data).__name__}")
        policy = q.cfg.join_empty
        if policy is not JoinEmpty.JOIN:
            steps = q.cfg.relaxation
            able = self._eligible(q, req, rid, min(steps[-1][1], 9) if steps else 0)
            if policy is JoinEmpty.REFUSE_NO_AGENTS:
                ok, reason = any(g.n_in for _, g in able), "no-agents"
            else:
                ok, reason = any(g.n_active for _, g in able), "unavailable"
            if not ok:
                q.refused += 1
                self._outbox.append(CallRefused(call_id, q.id, reason, now))
                return EnqueueResult(False, None, reason)
        c = _Call(call_id, priority, req, rid, dict(data) if data else {}, arrived, next(self._call_seq))
        self._calls[call_id] = c
        q.entered += 1
        position = self._enter(c, q, now)
        return EnqueueResult(True, position)

    def abandon(self, call_id: str, now: float) -> list[Happening]:
        """The caller hung up before being answered (waiting, or while agents were ringing)."""
        now = self._clock(now)
        c = self._call(call_id)
        if c.state is _CONNECTED:
            agent_id = c.agent.id if c.agent is not None else "?"
            raise InvalidTransition(f"call {call_id} was answered by {agent_id}; report its end with call_ended")
        q = c.queue
        acts: list[Happening] = []
        if c.state is _WAITING:
            position = self._position(c)
            self._leave_line(c)
        else:
            position = 0
            self._cancel_offer(c, now, "abandoned", acts)
        q.abandoned += 1
        if now > c.entered_at + q.cfg.sl_threshold:
            q.abandoned_after += 1
        self._outbox.append(CallAbandoned(c.id, q.id, now - c.entered_at, position, now))
        self._drop(c)
        return acts

    def answered(self, call_id: str, agent_id: str, now: float) -> list[Happening]:
        """An offered agent answered: both are on the call. Ring-all: the other agents stop ringing."""
        now = self._clock(now)
        c, a = self._offered_pair(call_id, agent_id)
        q = c.queue
        acts: list[Happening] = []
        others = [x for x in c.offer_agents if x is not a]
        c.offer_agents = [a]
        q.n_ringing -= 1
        c.state = _CONNECTED
        c.agent = a
        c.answered_at = now
        waited = now - c.entered_at
        q.answered += 1
        q.answer_wait_sum += waited
        if now <= c.entered_at + q.cfg.sl_threshold:
            q.answered_within += 1
        self._outbox.append(CallAnswered(c.id, q.id, a.id, waited, now))
        if others:
            ev = OfferCancelled(c.id, q.id, tuple(x.id for x in others), "answered-elsewhere", now)
            self._outbox.append(ev)
            acts.append(ev)
            for x in others:
                x.call = None
                self._set_state(x, _AVAILABLE, now, "answered-elsewhere")
        a.misses = 0
        a.handled += 1
        m = a.members.get(q.id)
        if m is not None:
            m.calls += 1
        self._set_state(a, _ON_CALL, now, c.id)
        return acts

    def offer_failed(
        self, call_id: str, agent_id: str, now: float, result: OfferResult = OfferResult.NO_ANSWER
    ) -> list[Happening]:
        """An offered agent did not take the call. The agent is available again (or auto-paused); once no
        agent of the offer is left ringing, the call is back at its original place in line."""
        now = self._clock(now)
        try:
            result = OfferResult(result)
        except ValueError:
            raise InvalidArgument(f"unknown offer result {result!r}; one of {', '.join(OfferResult)}") from None
        c, a = self._offered_pair(call_id, agent_id)
        q = c.queue
        acts: list[Happening] = []
        self._outbox.append(OfferFailed(c.id, q.id, a.id, result, now))
        c.offer_agents.remove(a)
        a.call = None
        self._missed(a, c, now, result.value, acts)
        if not c.offer_agents:
            self._offer_over(c, now, acts)
        return acts

    def call_ended(self, call_id: str, now: float) -> list[Happening]:
        """An answered call hung up (either side): the agent goes to wrap-up, or straight on if it is 0."""
        now = self._clock(now)
        c = self._call(call_id)
        if c.state is not _CONNECTED:
            raise InvalidTransition(f"call {call_id} is not connected to an agent ({c.state}); use abandon")
        a = c.agent
        assert a is not None
        q = c.queue
        talk = now - c.answered_at
        self._outbox.append(CallCompleted(c.id, q.id, a.id, talk, now))
        self._drop(c)
        acts: list[Happening] = []
        self._start_wrapup(a, q, talk, now, acts)
        return acts

    def transfer_out(self, call_id: str, now: float, target: str = "") -> list[Happening]:
        """The call leaves the distributor by transfer (to a lawyer, another service, voicemail...). It
        counts as answered only if an agent had answered it; that agent goes to wrap-up."""
        now = self._clock(now)
        c = self._call(call_id)
        q = c.queue
        acts: list[Happening] = []
        agent = c.agent if c.state is _CONNECTED else None
        if c.state is _WAITING:
            self._leave_line(c)
        elif c.state is _RINGING:
            self._cancel_offer(c, now, "transferred", acts)
        if agent is None:
            q.transferred += 1
        agent_id = agent.id if agent is not None else None
        self._outbox.append(CallTransferred(c.id, q.id, agent_id, str(target), agent is not None, now))
        self._drop(c)
        if agent is not None:
            self._start_wrapup(agent, q, now - c.answered_at, now, acts)
        return acts

    # -- decisions and time ----------------------------------------------------------------------------

    def next_offers(self, now: float) -> list[Offer]:
        """Every offer to make now: while some waiting call has an able available agent, the first such
        call (priority, then arrival, across queues) gets its queue strategy's choice of agent(s).
        Afterwards no waiting call has an able available agent. See the module docstring for the cost."""
        now = self._clock(now)
        agents, calls, dirty = self._fresh_agents, self._fresh_calls, self._dirty
        if not dirty:  # one change since the last call (the runtime's usual case): a direct answer
            if not calls:
                if not agents:
                    return []
                if len(agents) == 1:
                    self._fresh_agents = []
                    return self._offers_for_agent(agents[0], now)
            elif not agents and len(calls) == 1:
                self._fresh_calls = []
                return self._offers_for_call(calls[0], now)
        for a in agents:
            for m in a.members.values():
                dirty[m.queue] = None
        for c in calls:
            dirty[c.queue] = None
        self._fresh_agents = []
        self._fresh_calls = []
        cands: list[tuple[Any, ...]] = []
        for q in dirty:
            if q.n_available and q.heads:
                cands.extend(q.heads.values())
        dirty.clear()
        offers: list[Offer] = []
        if not cands:
            return offers
        heapify(cands)
        while cands:
            _, arrived_at, _, q, g = cands[0]
            if not q.n_available:
                heappop(cands)
                continue
            steps = q.steps
            delta = self._relax_delta(steps, arrived_at, now) if steps else 0
            able = q.elig.get(g.rid * 16 + delta)
            if able is None:
                able = self._eligible(q, g.req, g.rid, delta)
            c = g.keys.first()[2]
            if q.cfg.strategy is _RING_ALL:
                entries = self._pick_all(able)
            else:
                entry = self._pick_one(able, c.missed)
                entries = [entry] if entry is not None else None
            if not entries:  # the head is the most relaxed call of its group: nobody can take any of them
                heappop(cands)
                continue
            offers.append(self._offer(c, entries, now))
            head = q.heads.get(g)
            if head is None:
                heappop(cands)
            else:
                heapreplace(cands, head)
        return offers

    def tick(self, now: float) -> list[Happening]:
        """Apply everything due by ``now``: ring timeouts (as no answer), wrap-up ends, max wait (overflow
        or timeout), relaxation steps. Returns the happenings to act on; then call `next_offers`."""
        now = self._clock(now)
        acts: list[Happening] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, obj, ver, extra = heappop(timers)
            if kind == _T_RING:
                if obj.state is _RINGING and obj.offer_ver == ver:
                    self._ring_timeout(obj, now, acts)
            elif kind == _T_WRAP:
                if obj.state is _WRAP_UP and obj.wrap_token == ver:
                    self._end_wrapup(obj, now, acts)
            elif obj.tver == ver and obj.state is not _ENDED and obj.state is not _CONNECTED:
                if kind == _T_MAXWAIT:
                    if obj.state is _WAITING:
                        self._leave_line(obj)
                        self._expire(obj, now, acts)
                    else:
                        obj.expired = True
                else:  # _T_RELAX
                    q = obj.queue
                    self._outbox.append(CallRelaxed(obj.id, q.id, q.cfg.relaxation[extra][1], now))
                    # only a group's head matters: the others are less relaxed than it, with the same needs
                    if obj.state is _WAITING and q.call_groups[(obj.req, obj.priority)].keys.first() is obj.key:
                        self._fresh_calls.append(obj)
                    self._relax_timer(obj, extra + 1)
        return acts

    def next_deadline(self) -> float | None:
        """When `tick` must next run (None: nothing pending). Amortised O(log n): drops stale timers."""
        timers = self._timers
        while timers:
            if _timer_live(timers[0]):
                return timers[0][0]
            heappop(timers)
        return None

    # -- queries ---------------------------------------------------------------------------------------

    def position(self, call_id: str) -> int:
        """1-based place among the queue's waiting calls (priority, then arrival); 0 if not waiting
        (ringing an agent or connected). Exact; O(P + log m) for P priorities waiting in the queue."""
        c = self._call(call_id)
        return self._position(c) if c.state is _WAITING else 0

    def estimated_wait(self, call_id: str, now: float) -> float | None:
        """Seconds until answer, estimated as ``position * AHT / serving``: AHT is the mean handle time
        (talk + wrap-up) of the queue's last ``aht_window`` handled calls (``expected_handle_time`` until
        there are any), serving is the number of the queue's agents logged in and not paused. 0.0 if the
        call is ringing or connected; None if nobody is serving (no estimate possible)."""
        self._clock(now)
        c = self._call(call_id)
        if c.state is not _WAITING:
            return 0.0
        q = c.queue
        serving = q.n_active
        if not serving:
            return None
        aht = q.recent_sum / len(q.recent) if q.recent else q.cfg.expected_handle_time
        return self._position(c) * aht / serving

    def agent(self, agent_id: str) -> AgentView:
        a = self._agent(agent_id)
        return AgentView(
            a.id, a.state, a.reason, a.since, {qid: m.penalty for qid, m in a.members.items()}, dict(a.skills),
            a.call.id if a.call is not None else None,
            a.wrap_until if a.state is _WRAP_UP else None,
            a.idle_since if a.state is not _LOGGED_OUT else None,
            a.pending_pause,
        )  # fmt: skip

    def call(self, call_id: str) -> CallView:
        c = self._call(call_id)
        agents = tuple(x.id for x in c.offer_agents) if c.state is _RINGING else (
            (c.agent.id,) if c.state is _CONNECTED and c.agent is not None else ()
        )
        return CallView(
            c.id, c.queue.id, c.state, c.priority, dict(c.req), c.data, c.arrived_at, c.entered_at, agents
        )

    def queue_config(self, queue_id: str) -> QueueConfig:
        return self._queue(queue_id).cfg

    def stats(self, now: float) -> Stats:
        """Live statistics from running counters, no history: O(agents + queues * Pc), Pc for the longest
        wait (the oldest head among the queue's call groups).

        service_level = answered_within / (answered + abandoned_after): calls answered within
        ``sl_threshold`` seconds of entering the queue, over calls answered plus calls abandoned after the
        threshold (abandons before it do not count either way; timeouts, overflows and transfers are
        reported separately and are not in it)."""
        now = self._clock(now)
        queues: dict[str, QueueStats] = {}
        for q in self._queues.values():
            longest = max((now - h[1] for h in q.heads.values()), default=0.0)
            denom = q.answered + q.abandoned_after
            queues[q.id] = QueueStats(
                q.id, q.n_waiting, q.n_ringing, longest, q.entered, q.answered, q.answered_within,
                q.abandoned, q.abandoned_after, q.timed_out, q.overflowed, q.transferred, q.refused,
                q.answered_within / denom if denom else None, q.cfg.sl_target,
                q.answer_wait_sum / q.answered if q.answered else None,
                q.handle_sum / q.handled if q.handled else None,
                q.n_in, q.n_available,
            )  # fmt: skip
        agents: dict[str, AgentStats] = {}
        for a in self._agents.values():
            logged = a.in_total + (now - a.login_at if a.state is not _LOGGED_OUT else 0.0)
            busy = a.busy_total + (now - a.busy_since if a.state in _BUSY else 0.0)
            agents[a.id] = AgentStats(
                a.id, a.state, a.reason, now - a.since, a.handled, busy / logged if logged > 0 else None
            )
        return Stats(now, queues, agents)

    def drain_events(self) -> list[AcdEvent]:
        """All events since the last drain, oldest first."""
        out = self._outbox
        self._outbox = []
        return out

    # -- internals: lookups ----------------------------------------------------------------------------

    def _clock(self, now: float) -> float:
        if now.__class__ is float and self._now <= now < _INF:  # the usual case, cheaply
            self._now = now
            return now
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise InvalidArgument(f"now must be a finite number, got {now!r}")
        now = float(now)
        if now < self._now:
            return self._now
        self._now = now
        return now

    def _queue(self, queue_id: str) -> _Queue:
        q = self._queues.get(queue_id)
        if q is None:
            raise UnknownQueue(f"no queue {queue_id!r}")
        return q

    def _agent(self, agent_id: str) -> _Agent:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return a

    def _call(self, call_id: str) -> _Call:
        c = self._calls.get(call_id)
        if c is None:
            raise UnknownCall(f"no call {call_id!r} in the distributor (never enqueued, or already left)")
        return c

    def _offered_pair(self, call_id: str, agent_id: str) -> tuple[_Call, _Agent]:
        c = self._call(call_id)
        a = self._agent(agent_id)
        if c.state is not _RINGING or a.call is not c or a.state is not _OFFERED:
            raise InvalidTransition(f"call {call_id} is not ringing agent {agent_id} (call {c.state}, agent {a.state})")
        return c, a

    def _intern(self, profile: Profile) -> Profile:
        return self._profiles.setdefault(profile, profile)

    def _agent_group(self, q: _Queue, a: _Agent, penalty: int) -> _AgentGroup:
        key = (a.profile, penalty)
        g = q.agent_groups.get(key)
        if g is None:
            g = q.agent_groups[key] = _AgentGroup(dict(a.skills), penalty)
            q.elig.clear()
        return g

    def _call_group(self, q: _Queue, c: _Call) -> _CallGroup:
        key = (c.req, c.priority)
        g = q.call_groups.get(key)
        if g is None:
            g = q.call_groups[key] = _CallGroup(c.req, c.rid, c.priority)
        return g

    # -- internals: agents -----------------------------------------------------------------------------

    def _entry(self, a: _Agent, m: _Member) -> tuple[Any, ...]:
        """The heap entry of an available agent in one queue: smaller is chosen first."""
        s = m.queue.cfg.strategy
        if s is _FEWEST:
            return (m.calls, a.idle_since, a.id, a.ver, a)
        if s is _ROUND_ROBIN:
            return (m.rr, 0.0, a.id, a.ver, a)
        return (a.idle_since, 0.0, a.id, a.ver, a)

    def _count(self, a: _Agent, sign: int) -> None:
        """Add (sign=+1) or remove (-1) the agent's current state in its groups' counters and heaps."""
        n_in, n_active, live = _COUNTS[a.state]
        self._recount(a, sign * n_in, sign * n_active, sign * live)

    def _recount(self, a: _Agent, d_in: int, d_active: int, d_live: int) -> None:
        """Apply counter changes to each of the agent's groups; on becoming available (d_live > 0), push
        a fresh heap entry per queue. O(k log n) for an agent in k queues."""
        for m in a.members.values():
            g = m.group
            if d_in:
                g.n_in += d_in
                m.queue.n_in += d_in
            if d_active:
                g.n_active += d_active
                m.queue.n_active += d_active
            if d_live:
                g.live += d_live
                m.queue.n_available += d_live
                if d_live > 0:
                    heap = g.heap
                    heappush(heap, self._entry(a, m))
                    if len(heap) > 2 * g.live + 16:  # mostly stale entries: rebuild, amortised O(1)
                        heap = g.heap = [e for e in heap if e[4].ver == e[3]]
                        heapify(heap)
        if d_live > 0:
            self._fresh_agents.append(a)

    def _set_state(self, a: _Agent, new: AgentState, now: float, reason: str) -> None:
        old = a.state
        a.ver += 1  # every entry pushed before now is stale
        a.state = new
        if old is not new:
            o_in, o_active, o_live = _COUNTS[old]
            n_in, n_active, n_live = _COUNTS[new]
            if o_in != n_in or o_active != n_active or o_live != n_live:
                self._recount(a, n_in - o_in, n_active - o_active, n_live - o_live)
        if old is _LOGGED_OUT:
            a.login_at = now
        elif new is _LOGGED_OUT:
            a.in_total += now - a.login_at
        if new in _BUSY:
            if old not in _BUSY:
                a.busy_since = now
        elif old in _BUSY:
            a.busy_total += now - a.busy_since
        a.since = now
        a.reason = reason
        self._outbox.append(AgentStateChanged(a.id, old, new, reason, now))

    def _missed(self, a: _Agent, c: _Call, now: float, reason: str, acts: list[Happening]) -> None:
        """An offer to ``a`` went unanswered: count it; auto-pause at the queue's threshold."""
        q = c.queue
        a.misses += 1
        if q.cfg.strategy is not _RING_ALL:
            if c.missed is None:
                c.missed = set()
            c.missed.add(a.id)
        limit = q.cfg.auto_pause_after
        if limit and a.misses >= limit:
            self._set_state(a, _PAUSED, now, "auto-pause")
            ev = AgentAutoPaused(a.id, q.id, a.misses, now)
            self._outbox.append(ev)
            acts.append(ev)
        else:
            self._set_state(a, _AVAILABLE, now, reason)

    def _withdraw(self, a: _Agent, now: float, reason: str, acts: list[Happening]) -> None:
        """Take a ringing agent out of its offer (the agent's own new state is set by the caller)."""
        c = a.call
        assert c is not None
        c.offer_agents.remove(a)
        a.call = None
        ev = OfferCancelled(c.id, c.queue.id, (a.id,), reason, now)
        self._outbox.append(ev)
        acts.append(ev)
        if not c.offer_agents:
            self._offer_over(c, now, acts)

    def _start_wrapup(self, a: _Agent, q: _Queue, talk: float, now: float, acts: list[Happening]) -> None:
        a.call = None
        a.wrap_queue = q
        a.wrap_talk = talk
        a.wrap_since = now
        wrap = a.wrapup if a.wrapup is not None else q.cfg.wrapup
        if wrap > 0:
            a.wrap_until = now + wrap
            a.wrap_token += 1
            self._timer(a.wrap_until, _T_WRAP, a, a.wrap_token)
            self._set_state(a, _WRAP_UP, now, "call-ended")
        else:
            self._record_handle(a, now)
            a.idle_since = now
            self._after_work(a, now, "call-ended")

    def _end_wrapup(self, a: _Agent, now: float, acts: list[Happening]) -> None:
        self._record_handle(a, now)
        a.idle_since = now
        ev = WrapUpEnded(a.id, now)
        self._outbox.append(ev)
        acts.append(ev)
        self._after_work(a, now, "wrap-up-ended")

    def _after_work(self, a: _Agent, now: float, reason: str) -> None:
        if a.pending_pause is not None:
            pause, a.pending_pause = a.pending_pause, None
            self._set_state(a, _PAUSED, now, pause)
        else:
            self._set_state(a, _AVAILABLE, now, reason)

    def _record_handle(self, a: _Agent, now: float) -> None:
        q = a.wrap_queue
        if q is None:
            return
        a.wrap_queue = None
        handle = a.wrap_talk + (now - a.wrap_since)
        q.handled += 1
        q.handle_sum += handle
        recent = q.recent
        if len(recent) == recent.maxlen:
            q.recent_sum -= recent[0]
        recent.append(handle)
        q.recent_sum += handle

    # -- internals: choosing agents --------------------------------------------------------------------

    def _offers_for_agent(self, a: _Agent, now: float) -> list[Offer]:
        """Only ``a`` became available since the last decision, so every other available agent is one no
        waiting caller can use: the first caller (priority, arrival) that ``a`` can serve is the only
        possible offer. O(Pc) over the heads of the call groups of a's queues, no heap."""
        if a.state is not _AVAILABLE:
            return []
        best: tuple[Any, ...] | None = None
        best_delta = 0
        for m in a.members.values():
            q = m.queue
            if not q.n_waiting:
                continue
            can = m.group.can
            steps = q.steps
            for head in q.heads.values():
                if best is not None and head >= best:  # (-priority, arrival, seq, ...): seq is unique
                    continue
                g = head[4]
                delta = 0
                if steps:  # _relax_delta, inlined: this loop is the hot path
                    arrived_at = head[1]
                    for after, step_delta in steps:
                        if arrived_at + after > now:
                            break
                        delta = step_delta if step_delta < 9 else 9
                key = g.rid * 16 + delta
                able = can.get(key)
                if able is None:
                    able = can[key] = self._can(m.group.skills, g.req, delta)
                if able:
                    best = head
                    best_delta = delta
        if best is None:
            return []
        return self._offers_for_head(best[3], best[4], now, best_delta)

    def _offers_for_call(self, c: _Call, now: float) -> list[Offer]:
        """Only ``c`` entered a line since the last decision: it is the only caller who may now find an
        agent, and only if it heads its group (an older caller with the same needs found nobody)."""
        if c.state is not _WAITING:
            return []
        q = c.queue
        if not q.n_available:
            return []
        g = q.call_groups[(c.req, c.priority)]
        if g.keys.first()[2] is not c:
            return []
        steps = q.steps
        return self._offers_for_head(q, g, now, self._relax_delta(steps, c.arrived_at, now) if steps else 0)

    def _offers_for_head(self, q: _Queue, g: _CallGroup, now: float, delta: int) -> list[Offer]:
        """Offer the head of ``g`` (relaxed by ``delta``) to its best available agent(s), if any."""
        c = g.keys.first()[2]
        able = q.elig.get(g.rid * 16 + delta)
        if able is None:
            able = self._eligible(q, g.req, g.rid, delta)
        if q.cfg.strategy is _RING_ALL:
            entries = self._pick_all(able)
        else:
            entry = self._pick_one(able, c.missed)
            entries = [entry] if entry is not None else None
        return [self._offer(c, entries, now)] if entries else []

    @staticmethod
    def _can(skills: dict[str, int], req: Profile, delta: int) -> bool:
        for name, level in req:
            if skills.get(name, 0) < max(1, level - delta):
                return False
        return True

    def _eligible(
        self, q: _Queue, req: Profile, rid: int, delta: int
    ) -> list[tuple[tuple[int, int], _AgentGroup]]:
        """The queue's agent groups able to take a call needing ``req`` relaxed by ``delta``, best tier
        first. Tier: (penalty, -summed level of the required skills) for skills, (penalty, 0) otherwise.
        O(Pa * |req|), cached per (req, delta) until a new agent group appears in the queue. ``delta`` is at
        most 9 (see `_relax_delta`), so ``rid * 16 + delta`` is a unique key."""
        assert 0 <= delta <= 9
        key = rid * 16 + delta
        able = q.elig.get(key)
        if able is not None:
            return able
        skills_strategy = q.cfg.strategy is _SKILLS
        able = []
        for g in q.agent_groups.values():
            score = 0
            for name, level in req:
                have = g.skills.get(name, 0)
                if have < max(1, level - delta):
                    break
                score += have
            else:
                able.append(((g.penalty, -score if skills_strategy else 0), g))
        able.sort(key=_by_tier)
        q.elig[key] = able
        return able

    @staticmethod
    def _relax_delta(steps: tuple[tuple[float, int], ...], arrived_at: float, now: float) -> int:
        """The relaxation in force; capped at 9, beyond which every required level is 1 anyway."""
        delta = 0
        for after, step_delta in steps:  # compared as arrived_at + after, exactly as the timer is set
            if arrived_at + after > now:
                break
            delta = step_delta
        return delta if delta < 9 else 9

    @staticmethod
    def _pick_one(
        able: list[tuple[tuple[int, int], _AgentGroup]], avoid: set[str] | None
    ) -> tuple[Any, ...] | None:
        """Pop and return the best available agent's entry: best tier, then smallest strategy key.
        O(G + log n) for the G groups of the best tier, plus stale entries dropped on the way."""
        best: tuple[Any, ...] | None = None
        best_g: _AgentGroup | None = None
        best_tier = None
        for tier, g in able:
            if best is not None and tier != best_tier:
                break  # sorted by tier: the rest are worse
            if not g.live:
                continue
            heap = g.heap
            e = heap[0]
            while e[4].ver != e[3]:  # stale: the agent changed state since this entry was pushed
                heappop(heap)
                e = heap[0]
            if best is None or e < best:
                best, best_g, best_tier = e, g, tier
        if best is None:
            return None
        assert best_g is not None
        if avoid and best[2] in avoid:
            return Distributor._pick_avoiding(able, best_g.penalty, avoid)
        heappop(best_g.heap)
        return best

    @staticmethod
    def _pick_avoiding(
        able: list[tuple[tuple[int, int], _AgentGroup]], penalty: int, avoid: set[str]
    ) -> tuple[Any, ...] | None:
        """Like `_pick_one` within one penalty level, preferring agents not in ``avoid`` (they already
        missed this call); falls back to the best of them. O(k log n) for k avoided agents set aside."""
        groups = [(tier, g) for tier, g in able if g.penalty == penalty and g.live]
        aside: list[tuple[tuple[Any, ...], _AgentGroup]] = []
        chosen: tuple[Any, ...] | None = None
        while chosen is None:
            best: tuple[Any, ...] | None = None
            best_g: _AgentGroup | None = None
            for tier, g in groups:
                heap = g.heap
                while heap and heap[0][4].ver != heap[0][3]:
                    heappop(heap)
                if heap and (best is None or (tier, heap[0]) < best):
                    best, best_g = (tier, heap[0]), g
            if best is None:
                chosen = aside.pop(0)[0]  # everyone left missed it already: the best of them
                break
            assert best_g is not None
            entry = heappop(best_g.heap)
            if entry[2] in avoid:
                aside.append((entry, best_g))
            else:
                chosen = entry
        for e, g in aside:
            heappush(g.heap, e)
        return chosen

    @staticmethod
    def _pick_all(able: list[tuple[tuple[int, int], _AgentGroup]]) -> list[tuple[Any, ...]]:
        """Ring-all: pop every available agent of the best penalty level, in (idle-since, id) order."""
        out: list[tuple[Any, ...]] = []
        penalty = None
        for (p, _), g in able:
            if penalty is not None and p != penalty:
                break
            if not g.live:
                continue
            penalty = p
            heap = g.heap
            while heap:
                e = heappop(heap)
                if e[4].ver == e[3]:
                    out.append(e)
        out.sort()
        return out

    # -- internals: calls ------------------------------------------------------------------------------

    def _timer(self, at: float, kind: int, obj: Any, ver: int, extra: int = 0) -> None:
        timers = self._timers
        heappush(timers, (at, next(self._timer_seq), kind, obj, ver, extra))
        if len(timers) > self._timers_limit:
            # Stale timers (answered calls' max waits...) would otherwise stay until due: drop them when
            # they are the majority. O(t) once per t/2 pushes: amortised O(1).
            timers[:] = [t for t in timers if _timer_live(t)]  # in place: tick holds a reference
            heapify(timers)
            self._timers_limit = max(2 * len(timers), 1024)

    def _call_timers(self, c: _Call, now: float) -> None:
        cfg = c.queue.cfg
        if cfg.max_wait is not None:
            self._timer(c.entered_at + cfg.max_wait, _T_MAXWAIT, c, c.tver)
        steps = cfg.relaxation
        for i, (after, _) in enumerate(steps):
            if c.arrived_at + after > now:
                self._timer(c.arrived_at + after, _T_RELAX, c, c.tver, i)
                break

    def _relax_timer(self, c: _Call, step: int) -> None:
        steps = c.queue.cfg.relaxation
        if step < len(steps):
            self._timer(c.arrived_at + steps[step][0], _T_RELAX, c, c.tver, step)

    def _line_add(self, q: _Queue, c: _Call) -> None:
        """Into its group and its priority's line (at its place by arrival, not necessarily the end)."""
        key = c.key
        g = self._call_group(q, c)
        keys = g.keys
        keys.add(key)
        if keys.first() is key:
            q.heads[g] = (-c.priority, key[0], key[1], q, g)
        line = q.lines.get(c.priority)
        if line is None:
            line = q.lines[c.priority] = RankedSet()
        line.add(key)
        q.n_waiting += 1
        c.state = _WAITING
        self._fresh_calls.append(c)

    def _leave_line(self, c: _Call) -> None:
        q = c.queue
        key = c.key
        g = q.call_groups[(c.req, c.priority)]
        keys = g.keys
        if keys.first() is key:
            keys.pop_first()
            if keys:
                head = keys.first()
                q.heads[g] = (-c.priority, head[0], head[1], q, g)
            else:
                del q.heads[g]
        else:
            keys.remove(key)
        q.lines[c.priority].remove(key)
        q.n_waiting -= 1

    def _enter(self, c: _Call, q: _Queue, now: float) -> int:
        """Put a call in line in ``q`` (new, or overflowed in); returns its position."""
        c.queue = q
        c.entered_at = now
        c.tver += 1
        c.expired = False
        c.missed = None
        self._line_add(q, c)
        self._call_timers(c, now)
        position = self._position(c)
        self._outbox.append(CallQueued(c.id, q.id, c.priority, position, now))
        return position

    def _position(self, c: _Call) -> int:
        """1 + waiting calls of higher priority + earlier arrivals of the same priority: O(P + log m) for
        P distinct priorities waiting in the queue."""
        position = 1
        mine = c.priority
        for priority, line in c.queue.lines.items():
            if priority > mine:
                position += len(line)
            elif priority == mine:
                position += line.rank(c.key)
        return position

    def _offer(self, c: _Call, entries: list[tuple[Any, ...]], now: float) -> Offer:
        q = c.queue
        self._leave_line(c)  # c is the head of g: O(log m)
        q.n_ringing += 1
        c.state = _RINGING
        c.offer_ver += 1
        deadline = now + q.cfg.ring_timeout
        if len(entries) == 1:
            agent = entries[0][4]
            agents = [agent]
            ids: tuple[str, ...] = (agent.id,)
        else:
            agents = [e[4] for e in entries]
            ids = tuple(a.id for a in agents)
        c.offer_agents = agents
        self._timer(deadline, _T_RING, c, c.offer_ver)
        self._outbox.append(CallOffered(c.id, q.id, ids, deadline, now))
        round_robin = q.cfg.strategy is _ROUND_ROBIN
        for a in agents:
            if round_robin:
                q.rr += 1
                a.members[q.id].rr = q.rr
            a.call = c
            self._set_state(a, _OFFERED, now, c.id)
        return Offer(c.id, ids, q.id, deadline)

    def _ring_timeout(self, c: _Call, now: float, acts: list[Happening]) -> None:
        ev = OfferTimedOut(c.id, c.queue.id, tuple(a.id for a in c.offer_agents), now)
        self._outbox.append(ev)
        acts.append(ev)
        agents, c.offer_agents = c.offer_agents, []
        for a in agents:
            a.call = None
            self._missed(a, c, now, "ring-timeout", acts)
        self._offer_over(c, now, acts)

    def _offer_over(self, c: _Call, now: float, acts: list[Happening]) -> None:
        """Nobody is ringing for ``c`` any more: back to its place in line, or out if max wait passed."""
        q = c.queue
        q.n_ringing -= 1
        c.offer_ver += 1
        if c.expired:
            self._expire(c, now, acts)
            return
        self._line_add(q, c)

    def _cancel_offer(self, c: _Call, now: float, reason: str, acts: list[Happening]) -> None:
        """Stop ringing every agent of ``c``'s offer; they are available again. The call's new state is
        the caller's business."""
        q = c.queue
        agents, c.offer_agents = c.offer_agents, []
        ev = OfferCancelled(c.id, q.id, tuple(a.id for a in agents), reason, now)
        self._outbox.append(ev)
        acts.append(ev)
        q.n_ringing -= 1
        c.offer_ver += 1
        for a in agents:
            a.call = None
            self._set_state(a, _AVAILABLE, now, "caller-abandoned" if reason == "abandoned" else reason)

    def _expire(self, c: _Call, now: float, acts: list[Happening]) -> None:
        """Max wait reached for a call that is neither in line nor ringing: overflow, or leave."""
        q = c.queue
        waited = now - c.entered_at
        target = self._queues.get(q.cfg.overflow_to) if q.cfg.overflow_to is not None else None
        if target is not None:
            q.overflowed += 1
            target.entered += 1
            ev: Happening = CallOverflowed(c.id, q.id, target.id, waited, now)
            self._outbox.append(ev)
            acts.append(ev)
            self._enter(c, target, now)
        else:
            q.timed_out += 1
            ev = CallTimedOut(c.id, q.id, waited, now)
            self._outbox.append(ev)
            acts.append(ev)
            self._drop(c)

    def _drop(self, c: _Call) -> None:
        del self._calls[c.id]
        c.state = _ENDED
        c.offer_agents = []
