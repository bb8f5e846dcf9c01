"""Property-based test of the call distributor: random logins, pauses, calls, answers, failures, hang-ups
and ticks, checked after every step against the rules (no double offers, FIFO, skills, wrap-up, counters)
and against a brute-force reference of who should be offered what."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from huiyan.acd import (
    AgentAutoPaused,
    AgentConfig,
    AgentPausePending,
    AgentState,
    AgentStateChanged,
    AgentView,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRefused,
    CallRelaxed,
    CallState,
    CallTimedOut,
    CallTransferred,
    CallView,
    Distributor,
    InvalidTransition,
    Membership,
    OfferCancelled,
    OfferFailed,
    OfferResult,
    OfferTimedOut,
    QueueConfig,
    Strategy,
    UnknownCall,
    WrapUpEnded,
)

SKILLS = ("zh", "bo", "family", "labour")
QUEUES = (  # in dependency order: an overflow target first
    QueueConfig("sk", strategy="skills", relaxation=((5, 2),), join_empty="refuse-no-agents", max_wait=80,
                ring_timeout=10),
    QueueConfig("li", wrapup=3, max_wait=50, overflow_to="sk", relaxation=((3, 1), (12, 3)), auto_pause_after=2,
                ring_timeout=7),
    QueueConfig("ra", strategy="ring-all", ring_timeout=8, join_empty="refuse-unavailable", max_wait=40,
                overflow_to="li", wrapup=2),
    QueueConfig("fc", strategy="fewest-calls", auto_pause_after=1, wrapup=4),
    QueueConfig("rr", strategy="round-robin", sl_threshold=5),
)  # fmt: skip
CFG = {q.id: q for q in QUEUES}
AGENTS = tuple(f"a{i}" for i in range(6))

# most agents speak Mandarin and most callers need it; levels overlap enough for matches and misses
skill_sets = st.builds(
    lambda zh, more: {**more, **({"zh": zh} if zh else {})},
    st.sampled_from([0, 3, 6, 9, 10]),
    st.dictionaries(st.sampled_from(SKILLS[1:]), st.integers(2, 10), max_size=2),
)
# few distinct needs, so that callers share a line (same queue, needs and priority) and block each other
needs = st.sampled_from([{}, {"zh": 4}, {"zh": 4}, {"zh": 7}, {"bo": 3}, {"bo": 2}, {"zh": 4, "family": 5},
                         {"labour": 9}])  # fmt: skip


def relax(cfg: QueueConfig, arrived_at: float, now: float) -> int:
    delta = 0
    for after, step in cfg.relaxation:
        if arrived_at + after <= now:
            delta = step
    return delta


def able(skills: dict[str, int], requires: dict[str, int], delta: int) -> bool:
    return all(skills.get(s, 0) >= max(1, level - delta) for s, level in requires.items())


class DistributorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.acd = Distributor()
        for q in QUEUES:
            self.acd.configure_queue(q)
        self.now = 0.0
        self.wrapup: dict[str, float | None] = {}
        # what the test knows, from its own calls and from the events
        self.seq: dict[str, int] = {}
        self.live: set[str] = set()  # accepted, not yet left
        self.gone: set[str] = set()
        self.accepted = 0
        self.left = 0
        self.state: dict[str, AgentState] = {}
        self.ringing: dict[str, str] = {}  # agent -> call
        self.connected: dict[str, str] = {}
        self.pending: dict[str, str | None] = {}
        self.idle_since: dict[str, float] = {}
        self.wrap_end: dict[str, float] = {}
        self.missed: dict[str, set[str]] = {}
        self.calls_from: Counter[tuple[str, str]] = Counter()
        self.rr_counter: Counter[str] = Counter()
        self.rr_turn: dict[tuple[str, str], int] = {}
        self.offers_made = 0
        self.deadline: dict[str, float] = {}  # ringing call -> when its offer times out
        self.misses: Counter[str] = Counter()  # consecutive unanswered offers per agent
        self.auto_pause: dict[str, bool] = {}  # agent -> must the miss just counted pause them?

    @initialize(skills=st.lists(skill_sets, min_size=len(AGENTS), max_size=len(AGENTS)),
                wraps=st.lists(st.sampled_from([None, 0.0, 2.0, 6.0]), min_size=len(AGENTS), max_size=len(AGENTS)),
                data=st.data())  # fmt: skip
    def agents(self, skills: list[dict[str, int]], wraps: list[float | None], data: st.DataObject) -> None:
        for agent, s, w in zip(AGENTS, skills, wraps, strict=True):
            self.acd.configure_agent(AgentConfig(agent, s, wrapup=w))
            self.wrapup[agent] = w
            self.state[agent] = AgentState.LOGGED_OUT
            self.pending[agent] = None
        self.shift_starts(data)

    def shift_starts(self, data: st.DataObject) -> None:
        """A busy start: agents logged in and a few callers waiting, so that every rule bites early."""
        for agent in AGENTS:
            if data.draw(st.sampled_from([True, True, True, False])):
                self.log_in(agent, data)
        for _ in range(data.draw(st.integers(0, 6))):
            self.join(data.draw(st.sampled_from([q.id for q in QUEUES])), data.draw(st.sampled_from([0, 1])),
                      data.draw(needs))  # fmt: skip
        self.settle()

    # -- rules -----------------------------------------------------------------------------------------

    @rule(data=st.data())
    def login(self, data: st.DataObject) -> None:
        out = [a for a in AGENTS if self.state[a] is AgentState.LOGGED_OUT]
        if out:
            self.log_in(data.draw(st.sampled_from(out)), data)
            self.settle()

    def log_in(self, agent: str, data: st.DataObject) -> None:
        queues = data.draw(st.lists(st.sampled_from([q.id for q in QUEUES]), min_size=1, max_size=4, unique=True))
        members = [Membership(q, data.draw(st.sampled_from([0, 0, 1]))) for q in queues]
        assert self.acd.login(agent, members, self.now) == []
        for q in queues:
            self.rr_counter[q] += 1
            self.rr_turn[(agent, q)] = self.rr_counter[q]
            self.calls_from[(agent, q)] = 0
        self.absorb(self.acd.drain_events(), [])

    @rule(data=st.data())
    def shift_change(self, data: st.DataObject) -> None:
        """Everyone logged out logs in at once: many free agents compete for the waiting callers."""
        for agent in AGENTS:
            if self.state[agent] is AgentState.LOGGED_OUT:
                self.log_in(agent, data)
        self.settle()

    @rule(queue=st.sampled_from([q.id for q in QUEUES]), calls=st.lists(st.tuples(st.sampled_from([0, 0, 1]), needs),
                                                                         min_size=2, max_size=4))  # fmt: skip
    def burst(self, queue: str, calls: list[tuple[int, dict[str, int]]]) -> None:
        """Several callers at once: free agents are chosen among, by strategy."""
        for priority, requires in calls:
            self.join(queue, priority, requires)
        self.settle()

    @rule(agent=st.sampled_from(AGENTS))
    def logout(self, agent: str) -> None:
        if self.state[agent] in (AgentState.LOGGED_OUT, AgentState.ON_CALL):
            try:
                self.acd.logout(agent, self.now)
            except InvalidTransition:
                return
            raise AssertionError(f"logout from {self.state[agent]} accepted")
        self.acd.logout(agent, self.now)
        self.wrap_end.pop(agent, None)
        self.settle()

    @rule(agent=st.sampled_from(AGENTS))
    def pause(self, agent: str) -> None:
        if self.state[agent] in (AgentState.LOGGED_OUT, AgentState.PAUSED):
            try:
                self.acd.pause(agent, self.now, "break")
            except InvalidTransition:
                return
            raise AssertionError(f"pause from {self.state[agent]} accepted")
        self.acd.pause(agent, self.now, "break")
        if self.state[agent] is not AgentState.ON_CALL:
            self.wrap_end.pop(agent, None)
        self.settle()

    @rule(agent=st.sampled_from(AGENTS))
    def unpause(self, agent: str) -> None:
        if self.state[agent] is not AgentState.PAUSED and self.pending[agent] is None:
            try:
                self.acd.unpause(agent, self.now)
            except InvalidTransition:
                return
            raise AssertionError(f"unpause from {self.state[agent]} accepted")
        self.acd.unpause(agent, self.now)
        self.settle()

    @rule(agent=st.sampled_from(AGENTS))
    def finish_wrapup(self, agent: str) -> None:
        if self.state[agent] is not AgentState.WRAP_UP:
            try:
                self.acd.finish_wrapup(agent, self.now)
            except InvalidTransition:
                return
            raise AssertionError(f"finish_wrapup from {self.state[agent]} accepted")
        self.acd.finish_wrapup(agent, self.now)
        self.wrap_end.pop(agent, None)
        self.settle()

    @rule(queue=st.sampled_from([q.id for q in QUEUES]), priority=st.sampled_from([0, 0, 1, 2]), requires=needs)
    def enqueue(self, queue: str, priority: int, requires: dict[str, int]) -> None:
        self.join(queue, priority, requires)
        self.settle()

    def join(self, queue: str, priority: int, requires: dict[str, int]) -> None:
        call = f"c{len(self.seq)}"
        self.seq[call] = len(self.seq)
        result = self.acd.enqueue(call, queue, self.now, priority=priority, requires=requires, data={"n": call})
        if result.accepted:
            self.accepted += 1
            self.live.add(call)
            assert result.position is not None and result.position >= 1
        else:
            assert CFG[queue].join_empty != "join" and result.reason in ("no-agents", "unavailable")
            self.gone.add(call)
        self.absorb(self.acd.drain_events(), [])

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        if not self.live:
            return
        call = data.draw(st.sampled_from(sorted(self.live)))
        if call in self.connected.values():
            try:
                self.acd.abandon(call, self.now)
            except InvalidTransition:
                return
            raise AssertionError("abandon of a connected call accepted")
        self.acd.abandon(call, self.now)
        self.settle()
        assert call in self.gone

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        if not self.ringing:
            return
        agent = data.draw(st.sampled_from(sorted(self.ringing)))
        self.acd.answered(self.ringing[agent], agent, self.now)
        self.settle()

    @rule(data=st.data(), result=st.sampled_from(list(OfferResult)))
    def fail(self, data: st.DataObject, result: OfferResult) -> None:
        if not self.ringing:
            return
        agent = data.draw(st.sampled_from(sorted(self.ringing)))
        self.acd.offer_failed(self.ringing[agent], agent, self.now, result)
        self.settle()

    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        if not self.connected:
            return
        agent = data.draw(st.sampled_from(sorted(self.connected)))
        call = self.connected[agent]
        queue = self.acd.call(call).queue_id
        self.acd.call_ended(call, self.now)
        self.expect_wrapup(agent, queue)
        self.settle()

    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        if not self.live:
            return
        call = data.draw(st.sampled_from(sorted(self.live)))
        view = self.acd.call(call)
        self.acd.transfer_out(call, self.now, "elsewhere")
        if view.state is CallState.ON_CALL:
            self.expect_wrapup(view.agent_ids[0], view.queue_id)
        self.settle()

    @rule(data=st.data())
    def phones_respond(self, data: st.DataObject) -> None:
        """Several phones at once: each ringing agent answers, refuses or keeps ringing; calls end."""
        for agent in sorted(self.ringing):
            if agent not in self.ringing:  # ring-all: a colleague answered first
                continue
            choice = data.draw(st.sampled_from(["answer", "answer", "fail", "ring"]))
            if choice == "answer":
                self.acd.answered(self.ringing[agent], agent, self.now)
            elif choice == "fail":
                result = data.draw(st.sampled_from(list(OfferResult)))
                self.acd.offer_failed(self.ringing[agent], agent, self.now, result)
            self.absorb(self.acd.drain_events(), [])
        for agent in sorted(self.connected):
            if data.draw(st.booleans()):
                call = self.connected[agent]
                queue = self.acd.call(call).queue_id
                self.acd.call_ended(call, self.now)
                self.expect_wrapup(agent, queue)
                self.absorb(self.acd.drain_events(), [])
        self.settle()

    @rule(agent=st.sampled_from(AGENTS), skills=skill_sets)
    def retrain(self, agent: str, skills: dict[str, int]) -> None:
        self.acd.configure_agent(AgentConfig(agent, skills, wrapup=self.wrapup[agent]))
        self.settle()

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 25.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.settle()

    @rule(dt=st.sampled_from([7.0, 8.0, 10.0, 30.0, 40.0, 50.0, 80.0]))  # ring timeouts, max waits
    def wait(self, dt: float) -> None:
        self.now += dt
        self.settle()

    # -- the runtime's loop, and the checks around it -----------------------------------------------------

    def expect_wrapup(self, agent: str, queue: str) -> None:
        wrap = self.wrapup[agent] if self.wrapup[agent] is not None else CFG[queue].wrapup
        if wrap:
            self.wrap_end[agent] = self.now + wrap

    def settle(self) -> None:
        """What the runtime does after every operation: tick, then make every offer due."""
        acts = self.acd.tick(self.now)
        self.absorb(self.acd.drain_events(), acts)
        deadline = self.acd.next_deadline()
        assert deadline is None or deadline > self.now
        agents = {a: self.acd.agent(a) for a in AGENTS}
        waiting = [self.acd.call(c) for c in sorted(self.live)]
        waiting = [v for v in waiting if v.state is CallState.WAITING]
        expected = self.reference(agents, waiting)
        offers = self.acd.next_offers(self.now)
        assert [(o.call_id, o.agent_ids, o.queue_id) for o in offers] == expected
        self.absorb(self.acd.drain_events(), [])
        self.offers_made += len(offers)
        self.check_fifo_and_maximal(offers)

    def reference(
        self, agents: dict[str, AgentView], waiting: list[CallView]
    ) -> list[tuple[str, tuple[str, ...], str]]:
        """Brute force: calls by (priority, arrival); each takes the best able available agent(s)."""
        free = {a: v for a, v in agents.items() if v.state is AgentState.AVAILABLE}
        out = []
        for call in sorted(waiting, key=lambda v: (-v.priority, v.arrived_at, self.seq[v.id])):
            cfg = CFG[call.queue_id]
            delta = relax(cfg, call.arrived_at, self.now)
            pool = [
                v for v in free.values()
                if call.queue_id in v.queues and able(dict(v.skills), dict(call.requires), delta)
            ]  # fmt: skip
            if not pool:
                continue
            penalty = min(v.queues[call.queue_id] for v in pool)
            pool = [v for v in pool if v.queues[call.queue_id] == penalty]
            q = call.queue_id
            if cfg.strategy is Strategy.RING_ALL:
                chosen = sorted(pool, key=lambda v: (v.idle_since, v.id))
            else:
                if cfg.strategy is Strategy.FEWEST_CALLS:
                    key = lambda v: (self.calls_from[(v.id, q)], v.idle_since, v.id)  # noqa: E731
                elif cfg.strategy is Strategy.ROUND_ROBIN:
                    key = lambda v: (self.rr_turn[(v.id, q)], v.id)  # noqa: E731
                elif cfg.strategy is Strategy.SKILLS:
                    key = lambda v: (-sum(v.skills[s] for s in call.requires), v.idle_since, v.id)  # noqa: E731
                else:
                    key = lambda v: (v.idle_since, v.id)  # noqa: E731
                ranked = sorted(pool, key=key)
                fresh = [v for v in ranked if v.id not in self.missed.get(call.id, ())]
                chosen = [fresh[0] if fresh else ranked[0]]
            for v in chosen:
                del free[v.id]
            out.append((call.id, tuple(v.id for v in chosen), q))
        return out

    def absorb(self, events: list, acts: list) -> None:  # type: ignore[type-arg]
        """Replay the events into the test's model, checking each against what it must follow."""
        for e in acts:
            assert e in events, f"happening {e} missing from the outbox"
        for e in events:
            assert e.at == self.now
            if isinstance(e, AgentStateChanged):
                a = e.agent_id
                assert e.old is self.state[a], f"{a}: event says {e.old}, model says {self.state[a]}"
                assert e.old is not e.new
                if e.new is AgentState.OFFERED:
                    assert a in self.ringing
                if e.old is AgentState.OFFERED:
                    # leaving a ring: answered, or the offer was cancelled/failed/timed out before
                    assert (a in self.connected) if e.new is AgentState.ON_CALL else (a not in self.ringing)
                if e.new in (AgentState.PAUSED, AgentState.LOGGED_OUT):
                    assert a not in self.ringing and a not in self.connected
                if e.new is AgentState.LOGGED_OUT or e.old is AgentState.WRAP_UP or (
                    e.old is AgentState.ON_CALL and e.new is not AgentState.WRAP_UP
                ):
                    self.wrap_end.pop(a, None)
                if e.old in (AgentState.LOGGED_OUT, AgentState.WRAP_UP) or (
                    e.old is AgentState.ON_CALL and e.new is not AgentState.WRAP_UP
                ):
                    self.idle_since[a] = e.at
                if e.new is AgentState.AVAILABLE:
                    assert self.pending[a] is None
                if a in self.auto_pause:  # the state change right after a miss
                    assert (e.new is AgentState.PAUSED and e.reason == "auto-pause") is self.auto_pause.pop(a)
                if e.old in (AgentState.LOGGED_OUT, AgentState.PAUSED) and e.new is AgentState.AVAILABLE:
                    self.misses[a] = 0
                self.state[a] = e.new
            elif isinstance(e, CallOffered):
                self.check_offer(e)
                self.deadline[e.call_id] = e.deadline
                for a in e.agent_ids:
                    self.ringing[a] = e.call_id
                    if CFG[e.queue_id].strategy is Strategy.ROUND_ROBIN:
                        self.rr_counter[e.queue_id] += 1
                        self.rr_turn[(a, e.queue_id)] = self.rr_counter[e.queue_id]
            elif isinstance(e, (OfferCancelled, OfferTimedOut, OfferFailed)):
                agents = (e.agent_id,) if isinstance(e, OfferFailed) else e.agent_ids
                for a in agents:
                    assert self.ringing.pop(a) == e.call_id
                if not isinstance(e, OfferCancelled):
                    if CFG[e.queue_id].strategy is not Strategy.RING_ALL:
                        self.missed.setdefault(e.call_id, set()).update(agents)
                    limit = CFG[e.queue_id].auto_pause_after
                    for a in agents:
                        self.misses[a] += 1
                        self.auto_pause[a] = bool(limit) and self.misses[a] >= limit
            elif isinstance(e, CallAnswered):
                assert self.ringing.pop(e.agent_id) == e.call_id
                self.connected[e.agent_id] = e.call_id
                self.calls_from[(e.agent_id, e.queue_id)] += 1
                self.misses[e.agent_id] = 0
            elif isinstance(e, (CallCompleted, CallTransferred)):
                agent = e.agent_id
                if agent is not None:
                    assert self.connected.pop(agent) == e.call_id
                self.leave(e.call_id)
            elif isinstance(e, (CallAbandoned, CallTimedOut)):
                assert e.call_id not in self.ringing.values() and e.call_id not in self.connected.values()
                self.leave(e.call_id)
            elif isinstance(e, CallOverflowed):
                self.missed.pop(e.call_id, None)
            elif isinstance(e, AgentPausePending):
                self.pending[e.agent_id] = e.reason
            elif isinstance(e, AgentAutoPaused):
                assert e.unanswered == self.misses[e.agent_id] >= CFG[e.queue_id].auto_pause_after > 0
            elif isinstance(e, WrapUpEnded):
                assert self.state[e.agent_id] is AgentState.WRAP_UP
                if e.agent_id in self.wrap_end:  # ended by the timer: exactly when due
                    assert self.wrap_end[e.agent_id] <= self.now
            else:
                assert isinstance(e, (CallQueued, CallRefused, CallRelaxed)), e
            if isinstance(e, AgentStateChanged) and e.new in (AgentState.PAUSED, AgentState.LOGGED_OUT):
                self.pending[e.agent_id] = None

    def leave(self, call: str) -> None:
        assert call in self.live
        self.live.remove(call)
        self.gone.add(call)
        self.left += 1

    def check_offer(self, e: CallOffered) -> None:
        view = self.acd.call(e.call_id)
        assert e.call_id not in self.gone, "a call that left was offered"
        assert e.deadline == self.now + CFG[e.queue_id].ring_timeout
        delta = relax(CFG[e.queue_id], view.arrived_at, self.now)
        for a in e.agent_ids:
            assert a not in self.ringing and a not in self.connected, f"{a} offered two calls"
            assert self.state[a] is AgentState.AVAILABLE
            assert self.wrap_end.get(a, -1.0) <= self.now, f"{a} offered a call during wrap-up"
            skills = dict(self.acd.agent(a).skills)
            assert able(skills, dict(view.requires), delta), f"{a} lacks skills for {e.call_id}"

    def check_fifo_and_maximal(self, offers: list) -> None:  # type: ignore[type-arg]
        waiting = [self.acd.call(c) for c in sorted(self.live)]
        waiting = [v for v in waiting if v.state is CallState.WAITING]
        agents = {a: self.acd.agent(a) for a in AGENTS}
        for o in offers:  # FIFO: no earlier caller of that priority in that queue the agent could serve
            call = self.acd.call(o.call_id)
            for other in waiting:
                if other.queue_id != o.queue_id or other.priority != call.priority:
                    continue
                if (other.arrived_at, self.seq[other.id]) > (call.arrived_at, self.seq[call.id]):
                    continue
                delta = relax(CFG[other.queue_id], other.arrived_at, self.now)
                for a in o.agent_ids:
                    assert not able(dict(agents[a].skills), dict(other.requires), delta), (
                        f"{o.call_id} offered to {a} while earlier {other.id} waits"
                    )
        for call in waiting:  # nothing left undone: no waiting call has an able available agent
            delta = relax(CFG[call.queue_id], call.arrived_at, self.now)
            for v in agents.values():
                if v.state is AgentState.AVAILABLE and call.queue_id in v.queues:
                    assert not able(dict(v.skills), dict(call.requires), delta), f"{call.id} could go to {v.id}"

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def one_call_per_agent(self) -> None:
        assert not set(self.ringing) & set(self.connected)
        for a in AGENTS:
            view = self.acd.agent(a)
            assert view.state is self.state[a]
            if a in self.ringing:
                assert view.state is AgentState.OFFERED and view.call_id == self.ringing[a]
                assert a in self.acd.call(self.ringing[a]).agent_ids
            elif a in self.connected:
                assert view.state is AgentState.ON_CALL and view.call_id == self.connected[a]
            else:
                assert view.state not in (AgentState.OFFERED, AgentState.ON_CALL) and view.call_id is None
            if view.state is not AgentState.LOGGED_OUT:
                assert view.idle_since == self.idle_since[a]
        connected_calls = list(self.connected.values())
        assert len(connected_calls) == len(set(connected_calls))

    @invariant()
    def timers_were_honoured(self) -> None:
        """After a tick nothing overdue remains: no offer past its deadline, no caller in line past max
        wait, no agent in wrap-up past its end."""
        for c in self.live:
            view = self.acd.call(c)
            max_wait = CFG[view.queue_id].max_wait
            if view.state is CallState.WAITING and max_wait is not None:
                assert view.entered_at + max_wait > self.now, f"{c} waited past max wait"
            if view.state is CallState.OFFERED:
                assert self.deadline[c] > self.now, f"{c} rang past its deadline"
        for a in AGENTS:
            view = self.acd.agent(a)
            if view.state is AgentState.WRAP_UP:
                assert view.wrap_until is not None and view.wrap_until > self.now
                assert view.wrap_until == self.wrap_end[a]

    @invariant()
    def left_calls_are_gone(self) -> None:
        for call in self.gone:
            try:
                self.acd.call(call)
            except UnknownCall:
                continue
            raise AssertionError(f"{call} left but is still known")

    @invariant()
    def counters_add_up(self) -> None:
        stats = self.acd.stats(self.now)
        states = Counter(self.acd.call(c).state for c in self.live)
        assert self.accepted == len(self.live) + self.left
        for q in stats.queues.values():
            assert q.entered == (
                q.waiting + q.ringing + q.answered + q.abandoned + q.timed_out + q.overflowed + q.transferred
            )
            assert q.answered_within <= q.answered and q.abandoned_after <= q.abandoned
        assert sum(q.waiting for q in stats.queues.values()) == states[CallState.WAITING]
        assert sum(q.ringing for q in stats.queues.values()) == states[CallState.OFFERED]
        assert states[CallState.ON_CALL] == len(self.connected)
        assert sum(q.entered for q in stats.queues.values()) == self.accepted + sum(
            q.overflowed for q in stats.queues.values()
        )
        for qid, q in stats.queues.items():
            members = [a for a in AGENTS if qid in self.acd.agent(a).queues]
            assert q.agents_logged_in == len(members)
            assert q.agents_available == sum(self.state[a] is AgentState.AVAILABLE for a in members)
        for a, s in stats.agents.items():
            assert s.state is self.state[a]
            assert s.occupancy is None or 0.0 <= s.occupancy <= 1.0 + 1e-9

    @invariant()
    def positions_are_a_permutation(self) -> None:
        by_queue: dict[str, list[int]] = {}
        for c in self.live:
            view = self.acd.call(c)
            if view.state is CallState.WAITING:
                by_queue.setdefault(view.queue_id, []).append(self.acd.position(c))
        for positions in by_queue.values():
            assert sorted(positions) == list(range(1, len(positions) + 1))


TestDistributorMachine = DistributorMachine.TestCase
TestDistributorMachine.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
