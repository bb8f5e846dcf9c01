"""Benchmark of the call distributor core (huiyan.acd): decisions per second against a naive peer that
scans every agent and call per decision, and memory per held waiting caller.

Run:  .venv/bin/python bench/acd_core.py            (about a minute on 2 cores)
      .venv/bin/python bench/acd_core.py --quick    (smaller, for a smoke test)

Every rate is reported next to the naive peer's rate measured in the same invocation, on the same
workload, and the two must make exactly the same offers (checked; the run fails otherwise).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from huiyan.acd import AgentConfig, AgentState, Distributor, Offer, QueueConfig, Strategy  # noqa: E402
from _benchmarks_md import write_section  # noqa: E402

# -- the naive peer ------------------------------------------------------------------------------------


@dataclass
class _NaiveAgent:
    id: str
    skills: dict[str, int]
    state: AgentState = AgentState.LOGGED_OUT
    penalties: dict[str, int] = field(default_factory=dict)
    idle_since: float = 0.0
    call: str | None = None


@dataclass
class _NaiveCall:
    id: str
    queue: str
    priority: int
    requires: dict[str, int]
    data: dict[str, Any]
    arrived_at: float
    seq: int


class NaiveAcd:
    """The obvious distributor: same decisions as `Distributor` for longest-idle and skills queues
    (priority then arrival across queues; hard skill limits relaxed over time, never below level 1;
    lowest penalty first; skills: highest summed level, then longest idle; ties by agent id), found by
    scanning all agents and all waiting calls on every decision: O(agents + calls * free agents).
    Only what the benchmark drives is implemented: no ring timeouts, failures, pauses or wrap-up."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueConfig] = {}
        self.agents: dict[str, _NaiveAgent] = {}
        self.waiting: list[_NaiveCall] = []
        self.connected: dict[str, str] = {}
        self.seq = 0

    def configure_queue(self, config: QueueConfig) -> None:
        assert config.strategy in (Strategy.LONGEST_IDLE, Strategy.SKILLS) and config.wrapup == 0
        self.queues[config.id] = config

    def configure_agent(self, config: AgentConfig) -> None:
        assert config.wrapup in (None, 0)
        self.agents[config.id] = _NaiveAgent(config.id, dict(config.skills))

    def login(self, agent_id: str, queues: list[str], now: float) -> list[Any]:
        a = self.agents[agent_id]
        a.penalties = {q: 0 for q in queues}
        a.state = AgentState.AVAILABLE
        a.idle_since = now
        return []

    def enqueue(self, call_id: str, queue_id: str, now: float, *, priority: int = 0,
                requires: Mapping[str, int] | None = None, data: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        call = _NaiveCall(call_id, queue_id, priority, dict(requires or {}), dict(data or {}), now, self.seq)
        self.waiting.append(call)
        self.seq += 1

    @staticmethod
    def _delta(q: QueueConfig, arrived_at: float, now: float) -> int:
        delta = 0
        for after, step in q.relaxation:
            if arrived_at + after <= now:
                delta = step
        return delta

    @staticmethod
    def _able(a: _NaiveAgent, c: _NaiveCall, delta: int) -> bool:
        if c.queue not in a.penalties:
            return False
        for name, level in c.requires.items():
            if a.skills.get(name, 0) < max(1, level - delta):
                return False
        return True

    def next_offers(self, now: float) -> list[Offer]:
        offers = []
        while True:
            free = [a for a in self.agents.values() if a.state is AgentState.AVAILABLE]
            if not free:
                return offers
            best: _NaiveCall | None = None
            best_key: tuple[Any, ...] = ()
            for c in self.waiting:
                key = (-c.priority, c.arrived_at, c.seq)
                if best is not None and key >= best_key:
                    continue
                delta = self._delta(self.queues[c.queue], c.arrived_at, now)
                if any(self._able(a, c, delta) for a in free):
                    best, best_key = c, key
            if best is None:
                return offers
            q = self.queues[best.queue]
            delta = self._delta(q, best.arrived_at, now)
            skills = q.strategy is Strategy.SKILLS

            def rank(a: _NaiveAgent) -> tuple[Any, ...]:
                score = sum(a.skills.get(s, 0) for s in best.requires) if skills else 0
                return (a.penalties[best.queue], -score, a.idle_since, a.id)

            agent = min((a for a in free if self._able(a, best, delta)), key=rank)
            self.waiting.remove(best)
            agent.state = AgentState.OFFERED
            agent.call = best.id
            offers.append(Offer(best.id, (agent.id,), q.id, now + q.ring_timeout))

    def answered(self, call_id: str, agent_id: str, now: float) -> list[Any]:
        a = self.agents[agent_id]
        assert a.call == call_id
        a.state = AgentState.ON_CALL
        self.connected[call_id] = agent_id
        return []

    def call_ended(self, call_id: str, now: float) -> list[Any]:
        a = self.agents[self.connected.pop(call_id)]
        a.state = AgentState.AVAILABLE
        a.call = None
        a.idle_since = now
        return []

    def tick(self, now: float) -> list[Any]:
        return []

    def drain_events(self) -> list[Any]:
        return []


class Acd(Protocol):
    def configure_queue(self, config: QueueConfig) -> None: ...
    def configure_agent(self, config: AgentConfig) -> None: ...
    def login(self, agent_id: str, queues: list[str], now: float) -> Any: ...
    def enqueue(self, call_id: str, queue_id: str, now: float, *, priority: int = 0,
                requires: Mapping[str, int] | None = None,
                data: Mapping[str, Any] | None = None) -> Any: ...  # fmt: skip
    def next_offers(self, now: float) -> list[Offer]: ...
    def answered(self, call_id: str, agent_id: str, now: float) -> Any: ...
    def call_ended(self, call_id: str, now: float) -> Any: ...
    def tick(self, now: float) -> Any: ...
    def drain_events(self) -> Any: ...


# -- the workload --------------------------------------------------------------------------------------

# A 12348 hotline: Mandarin everywhere, a few minority-language and dialect desks, legal topics by menu.
AGENT_PROFILES = [  # (weight, skills)
    (30, {"zh": 8, "civil": 6}),
    (20, {"zh": 9, "family": 8, "civil": 4}),
    (15, {"zh": 7, "labour": 7}),
    (10, {"zh": 6, "labour": 9, "civil": 5}),
    (8, {"zh": 8, "yue": 9, "civil": 5}),
    (7, {"zh": 5, "bo": 9, "family": 5}),
    (5, {"zh": 5, "ug": 9, "labour": 5}),
    (5, {"zh": 10, "family": 10, "labour": 10, "civil": 10}),
]
CALL_PROFILES = [  # (weight, needs)
    (30, {"zh": 5, "civil": 5}),
    (20, {"zh": 5, "family": 6}),
    (15, {"zh": 5, "labour": 6}),
    (10, {"zh": 3}),
    (8, {"yue": 6}),
    (5, {"bo": 6}),
    (4, {"ug": 6}),
    (8, {"zh": 5, "labour": 9}),
]
DT = 0.01  # simulated seconds per decision: a caller waits ~100 s in a 10,000-deep line


def _weighted(rng: random.Random, table: list[tuple[int, dict[str, int]]]) -> dict[str, int]:
    return rng.choices([p for _, p in table], [w for w, _ in table])[0]


@dataclass
class Workload:
    strategy: Strategy
    agents: int
    waiting: int
    seed: int = 12348

    def queues(self) -> list[QueueConfig]:
        relax = ((30.0, 1), (90.0, 3)) if self.strategy is Strategy.SKILLS else ()
        return [
            QueueConfig("consult", strategy=self.strategy, relaxation=relax, max_wait=3600.0),
            QueueConfig("complaint", strategy=self.strategy, relaxation=relax, max_wait=3600.0),
        ]

    def agent_configs(self) -> list[tuple[AgentConfig, list[str]]]:
        rng = random.Random(self.seed)
        out = []
        for i in range(self.agents):
            queues = ["consult", "complaint"] if i % 4 == 0 else ["consult"] if i % 4 < 3 else ["complaint"]
            out.append((AgentConfig(f"agent-{i:04d}", _weighted(rng, AGENT_PROFILES)), queues))
        return out

    def calls(self) -> Iterator[tuple[str, str, int, dict[str, int], dict[str, str]]]:
        rng = random.Random(self.seed + 1)
        n = 0
        while True:
            queue = "consult" if rng.random() < 0.8 else "complaint"
            priority = 1 if rng.random() < 0.05 else 0  # the elderly, the disabled: served first
            data = {"caller": f"+86138{n:08d}", "channel": f"PJSIP/trunk-{n:08x}", "menu": queue, "lang": "zh"}
            yield f"call-{n:07d}", queue, priority, _weighted(rng, CALL_PROFILES), data
            n += 1


@dataclass
class Run:
    decisions: int  # offers made
    decide_seconds: float  # inside next_offers only
    cycle_seconds: float  # the runtime's whole loop per decision: hang-up, new caller, tick, offer, answer
    offers: list[tuple[str, tuple[str, ...]]]


def setup(make: Callable[[], Acd], w: Workload) -> tuple[Acd, Iterator[Any], list[tuple[str, str]], float]:
    """All agents on calls, ``w.waiting`` callers in line."""
    acd = make()
    for q in w.queues():
        acd.configure_queue(q)
    for cfg, _ in w.agent_configs():
        acd.configure_agent(cfg)
    calls = w.calls()
    now = 0.0
    for _ in range(w.waiting + w.agents):
        cid, qid, prio, req, data = next(calls)
        acd.enqueue(cid, qid, now, priority=prio, requires=req, data=data)
    connected = []
    offers = []
    for cfg, queues in w.agent_configs():  # one by one, so the naive peer's setup stays affordable
        acd.login(cfg.id, queues, now)
        for o in acd.next_offers(now):
            acd.answered(o.call_id, o.agent_ids[0], now)
            connected.append((o.call_id, o.agent_ids[0]))
            offers.append((o.call_id, o.agent_ids))
        now += DT
    acd.drain_events()
    assert len(connected) == w.agents, f"only {len(connected)} agents got a call"
    return acd, calls, connected, now


def run(make: Callable[[], Acd], w: Workload, cycles: int) -> Run:
    acd, calls, connected, now = setup(make, w)
    rng = random.Random(w.seed + 2)
    offers: list[tuple[str, tuple[str, ...]]] = []
    decide = 0.0
    gc.collect()
    gc.disable()
    clock = time.perf_counter
    start = clock()
    try:
        for _ in range(cycles):
            now += DT
            i = rng.randrange(len(connected))  # a random agent hangs up
            call_id, agent_id = connected[i]
            connected[i] = connected[-1]
            connected.pop()
            # the runtime's loop: after every operation, tick and ask for the offers due
            acd.call_ended(call_id, now)
            acd.tick(now)
            t = clock()
            got = acd.next_offers(now)  # usually the freed agent's next caller
            decide += clock() - t
            for o in got:
                acd.answered(o.call_id, o.agent_ids[0], now)
                connected.append((o.call_id, o.agent_ids[0]))
                offers.append((o.call_id, o.agent_ids))
            cid, qid, prio, req, data = next(calls)  # and a new caller joins: the line stays as long
            acd.enqueue(cid, qid, now, priority=prio, requires=req, data=data)
            acd.tick(now)
            t = clock()
            got = acd.next_offers(now)  # usually nothing (nobody is free), but it must be asked
            decide += clock() - t
            for o in got:
                acd.answered(o.call_id, o.agent_ids[0], now)
                connected.append((o.call_id, o.agent_ids[0]))
                offers.append((o.call_id, o.agent_ids))
            acd.drain_events()
    finally:
        gc.enable()
    total = clock() - start
    assert len(offers) >= cycles * 0.99, f"{cycles} agents freed but only {len(offers)} offers made"
    return Run(len(offers), decide, total, offers)


def compare(w: Workload, cycles: int, naive_cycles: int, rounds: int) -> dict[str, Any]:
    ours, naive = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine conditions
        ours.append(run(Distributor, w, cycles))
        naive.append(run(NaiveAcd, w, naive_cycles))
    n = naive_cycles
    for r in ours + naive:
        if r.offers[:n] != naive[0].offers[:n]:
            raise SystemExit(f"{w.strategy}: the distributor and the naive peer made different offers")
    med = statistics.median
    res = {
        "strategy": w.strategy.value,
        "ours_decide": med(r.decisions / r.decide_seconds for r in ours),
        "ours_decide_range": (min(r.decisions / r.decide_seconds for r in ours),
                              max(r.decisions / r.decide_seconds for r in ours)),
        "naive_decide": med(r.decisions / r.decide_seconds for r in naive),
        "ours_cycle": med(cycles / r.cycle_seconds for r in ours),
        "naive_cycle": med(naive_cycles / r.cycle_seconds for r in naive),
        "checked": n,
    }
    res["ratio_decide"] = res["ours_decide"] / res["naive_decide"]
    res["ratio_cycle"] = res["ours_cycle"] / res["naive_cycle"]
    return res


def memory_per_caller(make: Callable[[], Acd], held: int, agents: int) -> float:
    """Bytes the distributor allocates per waiting caller (tracemalloc), with every agent busy so the
    callers stay in line, and the events drained as the runtime does. The call id and the runtime's data
    dict exist before the measurement (the runtime owns them; the distributor keeps a copy of the data)."""
    acd, calls, _, now = setup(make, Workload(Strategy.SKILLS, agents, 3 * agents, seed=7))
    batch = [next(calls) for _ in range(held)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for cid, qid, prio, req, data in batch:
        acd.enqueue(cid, qid, now, priority=prio, requires=req, data=data)
        now += DT
    acd.tick(now)
    acd.drain_events()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / held


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {system}"


SECTION = "## ACD core"


def _write(section: str, path: Path) -> None:
    write_section(path, SECTION, section)


def report(results: list[dict[str, Any]], ours_mem: float, naive_mem: float, args: argparse.Namespace) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        SECTION,
        "",
        f"`bench/acd_core.py`, {today}; {machine()}.",
        "Reproduce: `.venv/bin/python bench/acd_core.py --write` (about a minute).",
        "",
        f"Decisions per second with {args.agents:,} agents and {args.waiting:,} waiting callers, the distributor"
        " (`huiyan.acd.Distributor`) against `NaiveAcd`, a peer in the same script that makes the same choices"
        " by scanning every agent and every waiting call per decision. Medians of"
        f" {args.rounds} interleaved rounds; ours timed over {args.cycles:,} decisions per round, the peer over"
        f" {args.naive_cycles:,}; the first {args.naive_cycles:,} offers of every run are checked identical.",
        "",
        "| strategy | decisions/s, ours (rounds' range) | decisions/s, naive | ratio"
        " | full cycles/s, ours | full cycles/s, naive | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['strategy']} | {r['ours_decide']:,.0f} ({r['ours_decide_range'][0]:,.0f}–"
            f"{r['ours_decide_range'][1]:,.0f}) | {r['naive_decide']:,.0f} | {r['ratio_decide']:,.0f}x"
            f" | {r['ours_cycle']:,.0f} | {r['naive_cycle']:,.0f} | {r['ratio_cycle']:,.0f}x |"
        )
    lines += [
        "",
        f"Memory per held waiting caller, {args.held:,} held: **{ours_mem / 1024:.2f} KiB** (target 50 KB);"
        f" the naive peer holds {naive_mem / 1024:.2f} KiB ({ours_mem / naive_mem:.1f}x: the price of the"
        " indexes, the timers and the per-caller state the peer does not keep).",
        "",
        "Method.",
        "- Workload: two queues (consult 80 % of callers, complaint 20 %), one agent in four in both; agents drawn"
        " from 8 skill profiles (Mandarin everywhere; Cantonese, Tibetan, Uyghur desks; civil, family, labour"
        " law at various levels), callers from 8 requirement profiles, 5 % with priority 1; a max wait on"
        " both queues, and for the skills strategy relaxation steps (30 s: -1, 90 s: -3), so timers are live."
        " Target: 100,000 decisions/s.",
        "- Steady state: every agent on a call and the line full. Each cycle is what the runtime does: a random"
        " agent's call ends (wrap-up 0), `tick`, `next_offers` (usually one offer: the freed agent's),"
        " `answered`; a new caller joins, `tick`, `next_offers` (usually nothing: nobody is free); drain"
        " events. *Decisions/s* ="
        " offers made / time inside `next_offers`; *full cycles/s* = cycles / wall time of the whole loop,"
        " including the workload generator. Garbage collection is off while timing (both sides). The machine"
        " is shared with other work, so absolute rates move between runs (hence the range); the ratio is the"
        " result.",
        f"- Memory: `tracemalloc`, bytes allocated by the distributor while {args.held:,} callers join a queue"
        f" whose agents are all busy (events drained, as the runtime does), divided by {args.held:,}."
        " The caller ids and the"
        " runtime's data dicts (4 short strings) exist before the measurement; the distributor's copy of the"
        " data dict is counted. The runtime's FastAGI session per caller is not part of this number.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--waiting", type=int, default=10000)
    ap.add_argument("--cycles", type=int, default=50000, help="decisions timed per round, ours")
    ap.add_argument("--naive-cycles", type=int, default=1000, help="decisions timed per round, naive peer")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--held", type=int, default=2000, help="waiting callers for the memory measurement")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--write", action="store_true", help="also write the section to BENCHMARKS.md")
    args = ap.parse_args()
    if args.quick:
        args.agents, args.waiting, args.cycles, args.naive_cycles, args.rounds, args.held = 100, 1000, 2000, 200, 1, 200

    print(f"# ACD core benchmark, {datetime.date.today().isoformat()}, {machine()}")
    print(f"# {args.agents} agents, {args.waiting} waiting callers, {args.rounds} interleaved rounds (medians)")
    results = []
    for strategy in (Strategy.LONGEST_IDLE, Strategy.SKILLS):
        w = Workload(strategy, args.agents, args.waiting)
        r = compare(w, args.cycles, args.naive_cycles, args.rounds)
        results.append(r)
        print(
            f"{r['strategy']:13s} decisions/s: ours {r['ours_decide']:>10,.0f}  naive {r['naive_decide']:>8,.0f}"
            f"  ratio {r['ratio_decide']:6.0f}x | full cycle/s: ours {r['ours_cycle']:>8,.0f}"
            f"  naive {r['naive_cycle']:>8,.0f}  ratio {r['ratio_cycle']:5.0f}x | same offers: first {r['checked']:,}"
        )
    ours_mem = memory_per_caller(Distributor, args.held, args.agents)
    naive_mem = memory_per_caller(NaiveAcd, args.held, args.agents)
    print(f"memory per held waiting caller ({args.held:,} held): ours {ours_mem / 1024:.2f} KiB,"
          f" naive {naive_mem / 1024:.2f} KiB, ratio {ours_mem / naive_mem:.2f}")  # fmt: skip
    if args.write:
        if args.quick:
            raise SystemExit("not writing --quick results")
        _write(report(results, ours_mem, naive_mem, args), REPO / "BENCHMARKS.md")
        print("written to BENCHMARKS.md")


if __name__ == "__main__":
    main()
