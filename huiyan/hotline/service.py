"""The 12348 hotline at run time: the pure distributor (acd/) driven by FastAGI sessions and AMI events.

Each waiting caller is one FastAGI coroutine (flow.py) holding a `Waiter`. The service owns the
`Distributor`; it wakes on every change, asks it for offers and hands each offer to the caller's
coroutine, which rings the agent(s) with Dial. AMI `DialEnd` tells the moment an agent answers.
Everything the distributor emits goes, in batches and off the event loop, to the database (queue log,
call rows, agent states) and to the event bus (live consoles).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from huiyan.acd import Distributor
from huiyan.acd.errors import AcdError
from huiyan.acd.events import (
    AcdEvent,
    AgentStateChanged,
    CallOverflowed,
    CallTimedOut,
    Happening,
    OfferCancelled,
    OfferTimedOut,
)
from huiyan.acd.model import AgentConfig, AgentState, EnqueueResult, Membership, Offer, OfferResult, QueueConfig
from huiyan.aio import stop_tasks, wait_event
from huiyan.bus import EventBus

log = logging.getLogger(__name__)

# Dial has its own ring timeout; the distributor's deadline comes this much later, as a safety net
# for a Dial that never reported (it then withdraws the offer itself). The caller's coroutine may be in a
# prompt when an offer arrives ("please wait" is 3.7 s, a position announcement about as long) and
# only rings once it ends: the grace covers that, so the agent still rings for the full ring timeout.
RING_GRACE = 5.0
STATS_EVERY = 0.5  # seconds between two HotlineStats publications while things change
WRITE_BATCH_SECONDS = 0.25  # queue log / call rows / agent states are written at most this often


@dataclass(frozen=True, slots=True)
class MenuChoice:
    digit: str
    queue_id: str
    requires: dict[str, int]
    priority: int = 0
    label_zh: str = ""
    label_en: str = ""


@dataclass(frozen=True, slots=True)
class AgentSetup:
    """An agent as configured: skills, queues they belong to (with penalty), their own extension."""

    id: str
    name: str
    extension: str
    skills: dict[str, int]
    memberships: tuple[Membership, ...]
    wrapup: float | None = None


@dataclass(frozen=True, slots=True)
class SavedAgent:
    """An agent's state as persisted, used to restore the distributor after a controller restart."""

    id: str
    state: str
    reason: str | None
    queues: tuple[str, ...]
    extension: str | None


@dataclass
class HotlineConfig:
    queues: list[QueueConfig]
    agents: list[AgentSetup]
    menus: dict[str, dict[str, MenuChoice]]  # service number -> digit -> choice
    announce_every: dict[str, float] = field(default_factory=dict)  # queue id -> seconds
    saved_agents: list[SavedAgent] = field(default_factory=list)


class HotlineStore(Protocol):
    """Persistence, called from worker threads (never on the event loop)."""

    def load(self) -> HotlineConfig: ...

    def persist(self, node: str, events: list[AcdEvent], calls: list[dict[str, Any]],
                agents: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True, slots=True)
class Leave:
    """Tells a waiting caller's coroutine that the call left the distributor without an agent."""

    reason: str  # "timeout"


@dataclass(frozen=True, slots=True)
class HotlineEvent:
    """Published on the bus for consoles: an ACD event with the node and wall-clock time."""

    node: str
    kind: str
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class HotlineStats:
    node: str
    stats: dict[str, Any]
    at: float


class Waiter:
    """One waiting caller, as the service sees it: where offers (or a Leave) are delivered."""

    def __init__(self, call_id: str, queue_id: str, channel: str, caller: str) -> None:
        self.call_id = call_id
        self.queue_id = queue_id
        self.channel = channel
        self.caller = caller
        self.inbox: asyncio.Queue[Offer | Leave] = asyncio.Queue()
        self.answered_by: str | None = None
        self.answered = asyncio.Event()
        self.offer: Offer | None = None  # the latest offer delivered; older ones in the inbox are stale


class HotlineService:
    def __init__(self, node_name: str, store: HotlineStore, bus: EventBus, *,
                 clock: Callable[[], float] = time.monotonic, wall_offset: float | None = None) -> None:
        self.node = node_name
        self.store = store
        self.bus = bus
        self.clock = clock
        self.acd = Distributor()
        self.config = HotlineConfig([], [], {})
        self.agents: dict[str, AgentSetup] = {}
        self.contact: dict[str, str] = {}  # agent id -> the extension their calls ring now
        self.by_extension: dict[str, str] = {}  # extension -> agent id
        self.waiters: dict[str, Waiter] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._pending_calls: dict[str, dict[str, Any]] = {}
        self._pending_agents: dict[str, dict[str, Any]] = {}
        self._pending_events: list[AcdEvent] = []
        self._flush_needed = asyncio.Event()
        self._wall_offset = time.time() - self.clock() if wall_offset is None else wall_offset
        self._stats_dirty = True
        self._stats_at = -1e9

    # ---- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        cfg = await asyncio.to_thread(self.store.load)
        self._apply_config(cfg, restore=True)
        self._task = asyncio.create_task(self._run(), name="hotline-distributor")
        self._writer = asyncio.create_task(self._write_loop(), name="hotline-writer")

    async def stop(self) -> None:
        await stop_tasks(self._task, self._writer)
        await asyncio.to_thread(self._flush_now)

    async def reload(self) -> None:
        """Queues, menus, skills or members changed in the database: apply without dropping anyone."""
        cfg = await asyncio.to_thread(self.store.load)
        self._apply_config(cfg, restore=False)
        self.kick()

    def _apply_config(self, cfg: HotlineConfig, *, restore: bool) -> None:
        self.config = cfg
        for q in cfg.queues:
            # The distributor's deadline trails Dial's own ring timeout (see RING_GRACE).
            self.acd.configure_queue(_with_ring_grace(q))
        self.agents = {a.id: a for a in cfg.agents}
        for a in cfg.agents:
            self.acd.configure_agent(AgentConfig(a.id, a.skills, a.wrapup))
            self.by_extension[a.extension] = a.id
            self.contact.setdefault(a.id, a.extension)
        if restore:
            now = self.clock()
            for saved in cfg.saved_agents:
                if saved.id not in self.agents or saved.state == AgentState.LOGGED_OUT:
                    continue
                try:
                    self._login(saved.id, saved.queues or None, saved.extension, now)
                    if saved.state == AgentState.PAUSED:
                        self.acd.pause(saved.id, now, saved.reason or "")
                except AcdError as e:
                    log.warning("could not restore agent %s: %s", saved.id, e)
            self._collect()

    # ---- agents ---------------------------------------------------------------------
    def _login(self, agent_id: str, queues: tuple[str, ...] | list[str] | None, extension: str | None,
               now: float) -> None:
        setup = self._agent(agent_id)
        members = {m.queue_id: m for m in setup.memberships}
        chosen = [members[q] if q in members else Membership(q) for q in queues] if queues else list(members.values())
        if not chosen:
            raise AcdInputError(f"agent {agent_id} belongs to no queue")
        self.acd.login(agent_id, chosen, now)
        ext = extension or setup.extension
        self.contact[agent_id] = ext
        self.by_extension[ext] = agent_id

    def _agent(self, agent_id: str) -> AgentSetup:
        try:
            return self.agents[agent_id]
        except KeyError:
            from huiyan.acd.errors import UnknownAgent

            raise UnknownAgent(f"unknown agent {agent_id!r}: not a configured hotline agent") from None

    def login(self, agent_id: str, queues: list[str] | None = None, extension: str | None = None) -> None:
        self._login(agent_id, queues, extension, self.clock())
        self._changed()

    def logout(self, agent_id: str) -> None:
        self._agent(agent_id)
        self._handle(self.acd.logout(agent_id, self.clock()))
        self._changed()

    def pause(self, agent_id: str, reason: str) -> None:
        self._agent(agent_id)
        self._handle(self.acd.pause(agent_id, self.clock(), reason))
        self._changed()

    def unpause(self, agent_id: str) -> None:
        self._agent(agent_id)
        self._handle(self.acd.unpause(agent_id, self.clock()))
        self._changed()

    def finish_wrapup(self, agent_id: str) -> None:
        self._agent(agent_id)
        self._handle(self.acd.finish_wrapup(agent_id, self.clock()))
        self._changed()

    # ---- calls (called by the caller's FastAGI coroutine) ---------------------------
    def menu(self, number: str) -> dict[str, MenuChoice]:
        return self.config.menus.get(number, {})

    def announce_every(self, queue_id: str) -> float:
        return self.config.announce_every.get(queue_id, 30.0)

    def ring_timeout(self, queue_id: str) -> float:
        return self.acd.queue_config(queue_id).ring_timeout - RING_GRACE

    def enqueue(self, call_id: str, choice: MenuChoice, *, channel: str, caller: str, caller_name: str,
                number: str, arrived_wall: float | None = None) -> tuple[EnqueueResult, Waiter | None]:
        now = self.clock()
        arrived = None if arrived_wall is None else arrived_wall - self._wall_offset
        res = self.acd.enqueue(call_id, choice.queue_id, now, priority=choice.priority, requires=choice.requires,
                               data={"caller": caller, "number": number, "digit": choice.digit},
                               arrived_at=arrived)
        waiter = None
        # A call transferred into a queue (Q<id>) chose no menu option: keep the digit its first leg chose.
        digit = {"menu_digit": choice.digit} if choice.digit else {}
        if res.accepted:
            waiter = Waiter(call_id, choice.queue_id, channel, caller)
            self.waiters[call_id] = waiter
            self._call_row(call_id, channel=channel, caller_number=caller, caller_name=caller_name,
                           service_number=number, queue_id=choice.queue_id, **digit,
                           priority=choice.priority, enqueued_at=self._wall(arrived if arrived is not None else now),
                           outcome="waiting")
            # Decide now rather than on the loop's next turn: the caller's coroutine can then see that an
            # agent is already ringing and skip "please wait" (see flow.py).
            self._dispatch()
        else:
            self._call_row(call_id, channel=channel, caller_number=caller, caller_name=caller_name,
                           service_number=number, queue_id=choice.queue_id, **digit,
                           enqueued_at=self._wall(now), ended_at=self._wall(now), outcome="failed",
                           notes=f"refused: {res.reason}")
        self._changed()
        return res, waiter

    def position(self, call_id: str) -> int | None:
        try:
            return self.acd.position(call_id)
        except AcdError:
            return None

    def estimated_wait(self, call_id: str) -> float | None:
        try:
            return self.acd.estimated_wait(call_id, self.clock())
        except AcdError:
            return None

    def offer_time_left(self, waiter: Waiter, offer: Offer) -> float | None:
        """Seconds before the distributor withdraws `offer` by itself; None if it is no longer current
        (withdrawn meanwhile because the agent paused or logged out, or superseded by a newer offer)."""
        if offer is not waiter.offer:
            return None
        try:
            view = self.acd.call(offer.call_id)
        except AcdError:
            return None
        if view.state.value != "offered" or tuple(view.agent_ids) != offer.agent_ids:
            return None
        return offer.deadline - self.clock()

    def offer_result(self, call_id: str, agent_ids: tuple[str, ...], dialstatus: str) -> None:
        """Dial came back without an answer: every agent still ringing for this call failed."""
        result = {"BUSY": OfferResult.BUSY, "CHANUNAVAIL": OfferResult.FAILED,
                  "CONGESTION": OfferResult.FAILED}.get(dialstatus, OfferResult.NO_ANSWER)
        now = self.clock()
        for agent_id in agent_ids:
            try:
                self._handle(self.acd.offer_failed(call_id, agent_id, now, result))
            except AcdError as e:  # already withdrawn by the distributor's own deadline
                log.debug("offer result for %s/%s ignored: %s", call_id, agent_id, e)
        self._changed()

    def answered(self, call_id: str, agent_id: str) -> None:
        waiter = self.waiters.get(call_id)
        try:
            self._handle(self.acd.answered(call_id, agent_id, self.clock()))
        except AcdError as e:
            log.warning("answer of %s by %s not applied: %s", call_id, agent_id, e)
            return
        if waiter is not None:
            waiter.answered_by = agent_id
            waiter.answered.set()
        self._call_row(call_id, answered_at=self._wall(self.clock()), agent_user_id=_int(agent_id),
                       outcome="answered")
        self._changed()

    def ended(self, call_id: str, *, abandoned: bool) -> None:
        """The caller's coroutine is done with the call (hung up, served, or gone)."""
        waiter = self.waiters.pop(call_id, None)
        now = self.clock()
        try:
            view = self.acd.call(call_id)
        except AcdError:
            view = None
        if view is not None:
            try:
                if view.state.value == "on_call":
                    self._handle(self.acd.call_ended(call_id, now))
                    self._call_row(call_id, ended_at=self._wall(now), outcome="completed")
                else:
                    self._handle(self.acd.abandon(call_id, now))
                    self._call_row(call_id, ended_at=self._wall(now), outcome="abandoned")
            except AcdError as e:
                log.warning("end of call %s: %s", call_id, e)
        elif waiter is not None and abandoned:
            self._call_row(call_id, ended_at=self._wall(now))
        self._changed()

    def transfer_out(self, call_id: str, target: str) -> None:
        """The call leaves the distributor by transfer; its agent (if it had one) goes to wrap-up."""
        now = self.clock()
        self._handle(self.acd.transfer_out(call_id, now, target))
        self._call_row(call_id, outcome="transferred", ended_at=self._wall(now), notes=f"transferred to {target}")
        self._changed()

    # ---- AMI ------------------------------------------------------------------------
    def on_ami_event(self, event: Any) -> None:
        name = getattr(event, "name", None)
        if name != "DialEnd":
            return
        fields = event.fields
        if fields.get("DialStatus") != "ANSWER":
            return
        call_id = fields.get("Uniqueid", "")
        if call_id not in self.waiters:
            return
        dest = fields.get("DestChannel", "")
        ext = dest.split("/", 1)[-1].rsplit("-", 1)[0] if dest.startswith("PJSIP/") else ""
        agent_id = self.by_extension.get(ext)
        if agent_id is None:
            log.warning("call %s answered by unknown channel %s", call_id, dest)
            return
        self.answered(call_id, agent_id)

    # ---- the distributor loop -------------------------------------------------------
    def kick(self) -> None:
        self._wake.set()

    def _changed(self) -> None:
        self._collect()
        self._stats_dirty = True
        self.kick()

    async def _run(self) -> None:
        while True:
            try:
                self._dispatch()
                self._collect()
                deadline = self.acd.next_deadline()
                timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - self.clock()))
                # Statistics cost ~1 ms to build: at most every STATS_EVERY seconds (consoles need < 2 s),
                # never on every decision of a burst.
                if self._stats_dirty:
                    wait = self._stats_at + STATS_EVERY - self.clock()
                    if wait <= 0:
                        self._stats_dirty = False
                        self._stats_at = self.clock()
                        self.bus.publish(HotlineStats(self.node, self.stats_dict(), time.time()))
                    else:
                        timeout = min(timeout, wait)
                self._wake.clear()
                await wait_event(self._wake, timeout)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad decision must not stop the hotline
                log.exception("distributor loop error")
                await asyncio.sleep(0.2)

    def _dispatch(self) -> None:
        now = self.clock()
        self._handle(self.acd.tick(now))
        for offer in self.acd.next_offers(now):
            self._deliver(offer)

    def _deliver(self, offer: Offer) -> None:
        waiter = self.waiters.get(offer.call_id)
        if waiter is None:
            # The caller's coroutine is gone (should not happen: it abandons on exit). Withdraw.
            log.warning("offer for %s without a waiting caller; withdrawing", offer.call_id)
            for a in offer.agent_ids:
                try:
                    self.acd.offer_failed(offer.call_id, a, self.clock(), OfferResult.FAILED)
                except AcdError:
                    pass
            return
        self._call_row(offer.call_id, outcome="ringing", offered_inc=1)
        waiter.offer = offer
        waiter.inbox.put_nowait(offer)

    def _handle(self, happenings: list[Happening]) -> None:
        for h in happenings:
            if isinstance(h, CallTimedOut):
                waiter = self.waiters.get(h.call_id)
                if waiter is not None:
                    waiter.inbox.put_nowait(Leave("timeout"))
                self._call_row(h.call_id, outcome="timeout", ended_at=self._wall(h.at))
            elif isinstance(h, CallOverflowed):
                waiter = self.waiters.get(h.call_id)
                if waiter is not None:
                    waiter.queue_id = h.to_queue_id
                self._call_row(h.call_id, queue_id=h.to_queue_id, outcome="waiting")
            elif isinstance(h, (OfferTimedOut, OfferCancelled)):
                log.info("offer of %s to %s withdrawn (%s)", h.call_id, ",".join(h.agent_ids),
                         getattr(h, "reason", "ring timeout"))

    # ---- persistence and publication ------------------------------------------------
    def _collect(self) -> None:
        events = self.acd.drain_events()
        if not events:
            return
        for e in events:
            if isinstance(e, AgentStateChanged):
                view = self.acd.agent(e.agent_id)
                self._pending_agents[e.agent_id] = {
                    "user_id": _int(e.agent_id), "state": e.new.value, "reason": e.reason or None,
                    "since": self._wall(e.at), "logged_in_queues": sorted(view.queues),
                    "extension": self.contact.get(e.agent_id),
                }
            self.bus.publish(HotlineEvent(self.node, type(e).__name__, _event_dict(e, self._wall), self._wall(e.at)))
        self._pending_events.extend(events)
        self._flush_needed.set()

    def note_call(self, call_id: str, **fields: Any) -> None:
        """Add facts to the call's database row (e.g. its recording path)."""
        self._call_row(call_id, **fields)

    def _call_row(self, call_id: str, offered_inc: int = 0, **fields: Any) -> None:
        row = self._pending_calls.setdefault(call_id, {"id": call_id, "node": self.node})
        row.update(fields)
        if offered_inc:
            row["offered_inc"] = row.get("offered_inc", 0) + offered_inc
        self._flush_needed.set()

    async def _write_loop(self) -> None:
        while True:
            await self._flush_needed.wait()
            # Batch what arrives together: the write runs in a thread but still holds the GIL, so fewer,
            # larger writes keep the event loop (FastAGI, AMI) responsive during bursts.
            await asyncio.sleep(WRITE_BATCH_SECONDS)
            self._flush_needed.clear()
            try:
                await asyncio.to_thread(self._flush_now)
            except Exception:  # noqa: BLE001 - logged; the rows are kept for the next try
                log.exception("could not persist hotline state; will retry")
                await asyncio.sleep(1.0)
                self._flush_needed.set()

    def _flush_now(self) -> None:
        events, self._pending_events = self._pending_events, []
        calls, self._pending_calls = list(self._pending_calls.values()), {}
        agents, self._pending_agents = list(self._pending_agents.values()), {}
        if not (events or calls or agents):
            return
        try:
            self.store.persist(self.node, events, calls, agents)
        except Exception:
            # Put them back (older first) so nothing is lost.
            self._pending_events[:0] = events
            for c in calls:
                self._call_row(c.pop("id"), **{k: v for k, v in c.items() if k != "node"})
            for a in agents:
                self._pending_agents.setdefault(str(a["user_id"]), a)
            raise

    def _wall(self, t: float) -> float:
        return t + self._wall_offset

    def stats_dict(self) -> dict[str, Any]:
        return _asdict(self.acd.stats(self.clock()))


class AcdInputError(AcdError):
    """A request the distributor cannot take as given (e.g. login to no queue)."""


def _with_ring_grace(q: QueueConfig) -> QueueConfig:
    from dataclasses import replace

    return replace(q, ring_timeout=q.ring_timeout + RING_GRACE)


def _int(agent_id: str) -> int | None:
    try:
        return int(agent_id)
    except ValueError:
        return None


def _event_dict(e: AcdEvent, wall: Callable[[float], float]) -> dict[str, Any]:
    from dataclasses import fields

    out: dict[str, Any] = {}
    for f in fields(e):
        v = getattr(e, f.name)
        if f.name in ("at", "deadline"):
            v = wall(v)
        elif hasattr(v, "value"):
            v = v.value
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _asdict(obj: Any) -> Any:
    from dataclasses import fields, is_dataclass
    from enum import Enum

    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _asdict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): _asdict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_asdict(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN has no JSON form
        return None
    return obj
