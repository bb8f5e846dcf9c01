"""The hotline's persistence: queues, menus and agents in; queue log, call rows and agent states out."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.acd import events as ev
from huiyan.acd.model import JoinEmpty, Membership, QueueConfig, Strategy
from huiyan.db import hotline as db
from huiyan.db.models import HotlineCall, JoinEmptyPolicy, MenuOption, Queue, Role, User
from huiyan.hotline.service import AgentSetup, HotlineConfig, MenuChoice, SavedAgent

log = logging.getLogger(__name__)

# ACD event -> queue log verb. Events not listed (relaxation, pause pending) stay out of the log.
LOG_VERBS: dict[type, str] = {
    ev.CallQueued: "enqueue",
    ev.CallRefused: "refuse",
    ev.CallOffered: "offer",
    ev.CallAnswered: "connect",
    ev.OfferFailed: "noanswer",
    ev.OfferTimedOut: "noanswer",
    ev.CallAbandoned: "abandon",
    ev.CallTransferred: "transfer",
    ev.CallCompleted: "complete",
    ev.CallOverflowed: "overflow",
    ev.CallTimedOut: "timeout",
    ev.WrapUpEnded: "wrapup_end",
}
JOIN_EMPTY = {
    JoinEmptyPolicy.JOIN: JoinEmpty.JOIN,
    JoinEmptyPolicy.REFUSE_NO_AGENTS: JoinEmpty.REFUSE_NO_AGENTS,
    JoinEmptyPolicy.REFUSE_NONE_AVAILABLE: JoinEmpty.REFUSE_UNAVAILABLE,
}
STATE_VERBS = {"paused": "pause", "logged_out": "logout"}


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def _qid(queue_id: str | None) -> int | None:
    return int(queue_id) if queue_id and queue_id.isdigit() else None


class DbHotlineStore:
    def __init__(self, sessions: sessionmaker[Session], wall_offset: float) -> None:
        self.sessions = sessions
        self.wall_offset = wall_offset  # distributor clock + offset = epoch seconds

    def load(self) -> HotlineConfig:
        with self.sessions() as s:
            queues = list(s.scalars(select(Queue).where(Queue.active.is_(True)).order_by(Queue.id)))
            qcfgs: list[QueueConfig] = []
            announce: dict[str, float] = {}
            for q in queues:
                qcfgs.append(QueueConfig(
                    id=str(q.id), name=q.name, strategy=Strategy(q.strategy.value),
                    ring_timeout=float(q.ring_timeout_s), wrapup=float(q.wrapup_s),
                    max_wait=float(q.max_wait_s) if q.max_wait_s else None,
                    overflow_to=str(q.overflow_queue_id) if q.overflow_queue_id and q.max_wait_s else None,
                    join_empty=JOIN_EMPTY[q.join_empty],
                    sl_threshold=float(q.sl_threshold_s), sl_target=float(q.sl_target),
                    auto_pause_after=int(q.autopause_after),
                    relaxation=tuple((float(a), int(d)) for a, d in (q.relax_steps or [])),
                ))
                announce[str(q.id)] = float(q.announce_every_s) if q.announce_every_s else 1e9
            active_ids = {q.id for q in queues}
            skills = db.all_agent_skills(s)
            members: dict[int, list[Membership]] = {}
            for m in db.all_queue_members(s):
                if m.queue_id in active_ids:
                    members.setdefault(m.user_id, []).append(Membership(str(m.queue_id), int(m.penalty)))
            agents: list[AgentSetup] = []
            users = s.scalars(select(User).where(User.active.is_(True))).all()
            for u in users:
                if u.role not in (Role.AGENT, Role.SUPERVISOR) and u.id not in members:
                    continue
                agents.append(AgentSetup(
                    id=str(u.id), name=u.display_name or u.username, extension=u.extension,
                    skills=dict(skills.get(u.id, {})), memberships=tuple(members.get(u.id, ())),
                ))
            menus: dict[str, dict[str, MenuChoice]] = {}
            for opt in _all_menu_options(s):
                if opt.queue_id not in active_ids:
                    continue
                menus.setdefault(opt.service_number, {})[opt.digit] = MenuChoice(
                    digit=opt.digit, queue_id=str(opt.queue_id), requires=dict(opt.required_skills or {}),
                    priority=int(opt.priority), label_zh=opt.label_zh, label_en=opt.label_en,
                )
            saved = [
                SavedAgent(id=str(st.user_id), state=st.state.value, reason=st.reason,
                           queues=tuple(str(q) for q in (st.logged_in_queues or []) if q in active_ids),
                           extension=None)
                for st in db.agent_statuses(s).values()
            ]
        return HotlineConfig(qcfgs, agents, menus, announce, saved)

    def persist(self, node: str, events: list[ev.AcdEvent], calls: list[dict[str, Any]],
                agents: list[dict[str, Any]]) -> None:
        rows = []
        for e in events:
            verb = LOG_VERBS.get(type(e))
            agent = getattr(e, "agent_id", None)
            if isinstance(e, ev.AgentStateChanged):
                verb = STATE_VERBS.get(e.new.value)
                if e.old.value == "logged_out":
                    verb = "login"
                elif e.old.value == "paused" and e.new.value != "logged_out":
                    verb = "unpause"
            if verb is None:
                continue
            if agent is None and getattr(e, "agent_ids", None):
                agent = e.agent_ids[0]
            data = {k: _plain(getattr(e, k)) for k in getattr(e, "__dataclass_fields__", {})
                    if k not in ("at", "call_id", "queue_id", "agent_id")}
            rows.append({
                "at": _utc(e.at + self.wall_offset), "node": node,
                "call_id": getattr(e, "call_id", None) or "", "queue_id": _qid(getattr(e, "queue_id", None)),
                "agent_user_id": int(agent) if agent and str(agent).isdigit() else None,
                "event": verb, "data": data,
            })
        with self.sessions() as s:
            if rows:
                db.append_queue_log(s, rows)
            for c in calls:
                fields = dict(c)
                call_id = fields.pop("id")
                fields.pop("channel", None)
                inc = fields.pop("offered_inc", 0)
                for k in ("enqueued_at", "answered_at", "ended_at"):
                    if k in fields:
                        fields[k] = _utc(fields[k])
                if "queue_id" in fields:
                    fields["queue_id"] = _qid(fields["queue_id"])
                existing = s.get(HotlineCall, call_id)
                if inc:
                    fields["offered_count"] = (existing.offered_count if existing else 0) + inc
                if existing is None:
                    fields.setdefault("node", node)
                row = db.upsert_hotline_call(s, call_id, **fields)
                if row.enqueued_at and row.answered_at and row.wait_s is None:
                    row.wait_s = (row.answered_at - row.enqueued_at).total_seconds()
                if row.answered_at and row.ended_at and row.talk_s is None:
                    row.talk_s = (row.ended_at - row.answered_at).total_seconds()
            for a in agents:
                if a.get("user_id") is None:
                    continue
                db.upsert_agent_status(
                    s, a["user_id"], state=a["state"], reason=a.get("reason"), since=_utc(a["since"]),
                    logged_in_queues=[q for q in (_qid(x) for x in a.get("logged_in_queues", [])) if q is not None],
                )
            s.commit()


def _plain(v: Any) -> Any:
    if hasattr(v, "value"):
        return v.value
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, float):
        return round(v, 3)
    return v


def _all_menu_options(s: Session) -> list[MenuOption]:
    return list(s.scalars(select(MenuOption).order_by(MenuOption.service_number, MenuOption.digit)))
