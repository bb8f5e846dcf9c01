"""The 12348 hotline's tables, kept by their rules: queues, voice menus, members, skills, agent state, log, calls.

Rules kept here (shared by the API, the seed and the runtime): queue settings lie in their ranges and
match what the distributor (`huiyan.acd`) accepts — an overflow needs a max wait and may not point at
its own queue, relaxation steps widen the pool as a caller waits; one queue per menu digit of a
service number; only agents and supervisors are queue members; skill levels are 1..10.
Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import (
    AgentSkill,
    AgentState,
    AgentStatus,
    CallOutcome,
    HotlineCall,
    JoinEmptyPolicy,
    MenuOption,
    Organisation,
    Queue,
    QueueEvent,
    QueueLogEntry,
    QueueMember,
    QueueStrategy,
    Role,
    User,
    utcnow,
)
from huiyan.db.store import _check, _flush, _get, _page

E = TypeVar("E", bound=StrEnum)

# Shared with the API schemas, so a bad value is refused with 422 before it gets here.
QUEUE_NAME_RE = r'^[^\x00-\x1f\x7f";<>\\]{1,100}$'
LABEL_RE = r"^[^\x00-\x1f\x7f]{1,100}$"
SERVICE_NUMBER_RE = r"^[0-9]{3,16}$"
DIGIT_RE = r"^[1-9]$"
DTMF_RE = r"^[0-9*#A-D]$"  # what a caller may actually have pressed (kept on the call, even if no option)
SKILL_RE = r"^[a-z][a-z0-9_]{0,31}$"
PROMPT_RE = r"^[a-z][a-z0-9_]{0,63}$"  # a name in huiyan.prompts.catalog
CALL_ID_RE = r"^[A-Za-z0-9._-]{1,64}$"  # an Asterisk uniqueid, optionally prefixed by its systemname
MIN_LEVEL, MAX_LEVEL = 1, 10
MAX_SKILLS = 20
MAX_RELAX_STEPS = 10
PRIORITY_RANGE = (0, 100)
PENALTY_RANGE = (0, 100)
# Whole seconds (or counts): (lowest, highest). The upper bounds only catch typos (a ring of 2000 s).
QUEUE_RANGES: dict[str, tuple[int, int]] = {
    "ring_timeout_s": (1, 600),
    "wrapup_s": (0, 3600),
    "max_wait_s": (1, 86400),
    "sl_threshold_s": (1, 3600),
    "autopause_after": (0, 100),
    "announce_every_s": (0, 3600),
}
MEMBER_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR})


ConfigKind = Literal["queue", "menu_option", "member", "skills"]
ConfigAction = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class HotlineConfigChanged:
    """Queues, menus, members or skills changed: the runtime reloads the distributor's configuration.
    `id` is the queue, the menu option, the queue (for a member) or the user (for skills)."""

    kind: ConfigKind
    action: ConfigAction
    id: int


# ---- checks -----------------------------------------------------------------------------------


def _enum_value(cls: type[E], value: Any, what: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise Invalid(f"{what} {value!r} is not one of {', '.join(m.value for m in cls)}") from None


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise Invalid(f"{what} must be a whole number {lo}..{hi}, got {value!r}")
    return value


def _aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid(f"{what} must be a datetime with a time zone (UTC), got {value!r}")
    return value


def _millis(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def check_relax_steps(steps: Any) -> list[list[int]]:
    """[[after_seconds, level_delta], ...]: both positive, later steps wait longer and never relax less."""
    if not isinstance(steps, list | tuple):
        raise Invalid(f"relax_steps must be a list of [after_seconds, level_delta] pairs, got {steps!r}")
    if len(steps) > MAX_RELAX_STEPS:
        raise Invalid(f"relax_steps: at most {MAX_RELAX_STEPS} steps")
    out: list[list[int]] = []
    for step in steps:
        if not isinstance(step, list | tuple) or len(step) != 2:
            raise Invalid(f"relax_steps: {step!r} is not an [after_seconds, level_delta] pair")
        after = _int(step[0], "relax_steps after_seconds", 1, QUEUE_RANGES["max_wait_s"][1])
        delta = _int(step[1], "relax_steps level_delta", 1, MAX_LEVEL - MIN_LEVEL)
        if out and (after <= out[-1][0] or delta < out[-1][1]):
            raise Invalid(
                f"relax_steps must be sorted: after_seconds increasing and level_delta never decreasing, got {steps!r}"
            )
        out.append([after, delta])
    return out


def check_skills(skills: Any, what: str) -> dict[str, int]:
    """{skill: level}, skill names like `lang_ko`, levels 1..10."""
    if not isinstance(skills, Mapping):
        raise Invalid(f"{what} must be a mapping of skill name to level, got {skills!r}")
    if len(skills) > MAX_SKILLS:
        raise Invalid(f"{what}: at most {MAX_SKILLS} skills")
    out: dict[str, int] = {}
    for name, level in skills.items():
        if not isinstance(name, str):
            raise Invalid(f"{what}: skill name {name!r} is not a string")
        _check(SKILL_RE, name, "skill name")
        out[name] = _int(level, f"{what}: level of {name}", MIN_LEVEL, MAX_LEVEL)
    return dict(sorted(out.items()))


def _existing(session: Session, model: type[Any], id_: int | None, what: str) -> Any:
    """For ids given in a body: a missing one is a bad request (400), not a missing resource (404)."""
    if id_ is None:
        return None
    obj = session.get(model, id_)
    if obj is None:
        raise Invalid(f"{what} {id_} does not exist")
    return obj


# ---- queues -----------------------------------------------------------------------------------

QUEUE_FIELDS = frozenset({
    "name", "name_en", "organisation_id", "strategy", "ring_timeout_s", "wrapup_s", "max_wait_s",
    "overflow_queue_id", "join_empty", "sl_threshold_s", "sl_target", "autopause_after", "relax_steps",
    "announce_every_s", "active",
})  # fmt: skip


def get_queue(session: Session, queue_id: int) -> Queue:
    return _get(session, Queue, queue_id, "queue")


def find_queue(session: Session, name: str) -> Queue | None:
    return session.scalar(select(Queue).where(Queue.name == name))


def _queue_values(session: Session, values: dict[str, Any], queue: Queue | None) -> dict[str, Any]:
    """Check a queue's complete settings (after a change): each value, then how they fit together."""
    v = dict(values)
    if not isinstance(v["name"], str):
        raise Invalid(f"queue name must be text, got {v['name']!r}")
    _check(QUEUE_NAME_RE, v["name"], "queue name")
    if (queue is None or v["name"] != queue.name) and find_queue(session, v["name"]) is not None:
        raise Conflict(f"a queue named {v['name']} already exists")
    if not isinstance(v["name_en"], str) or len(v["name_en"]) > 200:
        raise Invalid("name_en must be text of at most 200 characters")
    _existing(session, Organisation, v["organisation_id"], "organisation")
    v["strategy"] = _enum_value(QueueStrategy, v["strategy"], "strategy")
    v["join_empty"] = _enum_value(JoinEmptyPolicy, v["join_empty"], "join_empty")
    for key, (lo, hi) in QUEUE_RANGES.items():
        if key == "max_wait_s" and v[key] is None:
            continue
        _int(v[key], key, lo, hi)
    target = v["sl_target"]
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
        raise Invalid(f"sl_target must be a fraction, got {target!r}")
    if not 0 < target <= 1:
        raise Invalid(f"sl_target is the share of calls answered in time, 0 < sl_target <= 1, got {target}")
    v["sl_target"] = float(target)
    v["relax_steps"] = check_relax_steps(v["relax_steps"])
    overflow = v["overflow_queue_id"]
    if overflow is not None:
        if queue is not None and overflow == queue.id:
            raise Invalid(f"queue {queue.name} cannot overflow to itself")
        _existing(session, Queue, overflow, "overflow queue")
        if v["max_wait_s"] is None:
            raise Invalid("an overflow queue needs max_wait_s: callers overflow once they have waited that long")
    if not isinstance(v["active"], bool):
        raise Invalid(f"active must be true or false, got {v['active']!r}")
    return v


def create_queue(
    session: Session,
    *,
    name: str,
    name_en: str = "",
    organisation_id: int | None = None,
    strategy: QueueStrategy | str = QueueStrategy.LONGEST_IDLE,
    ring_timeout_s: int = 20,
    wrapup_s: int = 10,
    max_wait_s: int | None = None,
    overflow_queue_id: int | None = None,
    join_empty: JoinEmptyPolicy | str = JoinEmptyPolicy.JOIN,
    sl_threshold_s: int = 20,
    sl_target: float = 0.8,
    autopause_after: int = 3,
    relax_steps: Iterable[Iterable[int]] = (),
    announce_every_s: int = 30,
    active: bool = True,
) -> Queue:
    values = {
        "name": name, "name_en": name_en, "organisation_id": organisation_id, "strategy": strategy,
        "ring_timeout_s": ring_timeout_s, "wrapup_s": wrapup_s, "max_wait_s": max_wait_s,
        "overflow_queue_id": overflow_queue_id, "join_empty": join_empty, "sl_threshold_s": sl_threshold_s,
        "sl_target": sl_target, "autopause_after": autopause_after, "relax_steps": [list(s) for s in relax_steps],
        "announce_every_s": announce_every_s, "active": active,
    }  # fmt: skip
    queue = Queue(**_queue_values(session, values, None))
    session.add(queue)
    _flush(session)
    return queue


def update_queue(session: Session, queue_id: int, changes: Mapping[str, Any]) -> Queue:
    queue = get_queue(session, queue_id)
    unknown = set(changes) - QUEUE_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a queue")
    values = {key: changes.get(key, getattr(queue, key)) for key in QUEUE_FIELDS}
    for key, value in _queue_values(session, values, queue).items():
        if key in changes:
            setattr(queue, key, value)
    _flush(session)
    return queue


def delete_queue(session: Session, queue_id: int) -> Queue:
    """Refused while a menu routes to the queue, another queue overflows to it, or calls went through it:
    a queue with history is deactivated (active=false), so its reports keep their name."""
    queue = get_queue(session, queue_id)
    uses = [
        f"{n} {what}"
        for what, n in [
            ("menu options route to it", session.scalar(select(func.count()).where(MenuOption.queue_id == queue_id))),
            ("queues overflow to it", session.scalar(select(func.count()).where(Queue.overflow_queue_id == queue_id))),
        ]
        if n
    ]
    # History can be millions of rows: ask whether there is any, not how much.
    if session.scalar(select(HotlineCall.id).where(HotlineCall.queue_id == queue_id).limit(1)) is not None or (
        session.scalar(select(QueueLogEntry.id).where(QueueLogEntry.queue_id == queue_id).limit(1)) is not None
    ):
        uses.append("it has call history")
    in_use = ", ".join(uses)
    if in_use:
        raise Conflict(f"queue {queue.name} is in use ({in_use}); set active=false instead")
    session.delete(queue)
    _flush(session)
    return queue


def list_queues(
    session: Session,
    *,
    active: bool | None = None,
    organisation_id: int | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Queue], int]:
    stmt = select(Queue).order_by(Queue.id)
    if active is not None:
        stmt = stmt.where(Queue.active.is_(active))
    if organisation_id is not None:
        stmt = stmt.where(Queue.organisation_id == organisation_id)
    if q:
        stmt = stmt.where(Queue.name.icontains(q, autoescape=True) | Queue.name_en.icontains(q, autoescape=True))
    return _page(session, stmt, offset, limit)


# ---- voice menus ------------------------------------------------------------------------------

MENU_FIELDS = frozenset(
    {"service_number", "digit", "queue_id", "required_skills", "priority", "label_zh", "label_en", "prompt"}
)


def get_menu_option(session: Session, option_id: int) -> MenuOption:
    return _get(session, MenuOption, option_id, "menu option")


def _menu_values(session: Session, values: dict[str, Any], option: MenuOption | None) -> dict[str, Any]:
    v = dict(values)
    for key, pattern in [("service_number", SERVICE_NUMBER_RE), ("digit", DIGIT_RE), ("label_zh", LABEL_RE)]:
        if not isinstance(v[key], str):
            raise Invalid(f"{key} must be text, got {v[key]!r}")
        _check(pattern, v[key], key)
    if not isinstance(v["label_en"], str) or len(v["label_en"]) > 200:
        raise Invalid("label_en must be text of at most 200 characters")
    if v["prompt"] is not None:
        _check(PROMPT_RE, v["prompt"], "prompt")
    _existing(session, Queue, v["queue_id"], "queue")
    v["required_skills"] = check_skills(v["required_skills"], "required_skills")
    _int(v["priority"], "priority", *PRIORITY_RANGE)
    taken = session.scalar(
        select(MenuOption).where(MenuOption.service_number == v["service_number"], MenuOption.digit == v["digit"])
    )
    if taken is not None and taken is not option:
        raise Conflict(f"digit {v['digit']} of {v['service_number']} is already menu option {taken.id}")
    return v


def create_menu_option(
    session: Session,
    *,
    service_number: str,
    digit: str,
    queue_id: int,
    label_zh: str,
    label_en: str = "",
    required_skills: Mapping[str, int] | None = None,
    priority: int = 0,
    prompt: str | None = None,
) -> MenuOption:
    values = {
        "service_number": service_number, "digit": digit, "queue_id": queue_id, "label_zh": label_zh,
        "label_en": label_en, "required_skills": dict(required_skills or {}), "priority": priority, "prompt": prompt,
    }  # fmt: skip
    option = MenuOption(**_menu_values(session, values, None))
    session.add(option)
    _flush(session)
    return option


def update_menu_option(session: Session, option_id: int, changes: Mapping[str, Any]) -> MenuOption:
    option = get_menu_option(session, option_id)
    unknown = set(changes) - MENU_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a menu option")
    values = {key: changes.get(key, getattr(option, key)) for key in MENU_FIELDS}
    for key, value in _menu_values(session, values, option).items():
        if key in changes:
            setattr(option, key, value)
    _flush(session)
    return option


def delete_menu_option(session: Session, option_id: int) -> MenuOption:
    option = get_menu_option(session, option_id)
    session.delete(option)
    _flush(session)
    return option


def list_menu_options(
    session: Session,
    *,
    service_number: str | None = None,
    queue_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[MenuOption], int]:
    stmt = select(MenuOption).order_by(MenuOption.service_number, MenuOption.digit)
    if service_number is not None:
        stmt = stmt.where(MenuOption.service_number == service_number)
    if queue_id is not None:
        stmt = stmt.where(MenuOption.queue_id == queue_id)
    return _page(session, stmt, offset, limit)


def menu_for(session: Session, service_number: str) -> dict[str, MenuOption]:
    """The voice menu of a service number, digit -> option, in digit order; empty if it has none."""
    stmt = select(MenuOption).where(MenuOption.service_number == service_number).order_by(MenuOption.digit)
    return {o.digit: o for o in session.scalars(stmt)}


# ---- queue members ----------------------------------------------------------------------------


def _member(session: Session, queue_id: int, user_id: int) -> QueueMember:
    member = session.get(QueueMember, (queue_id, user_id))
    if member is None:
        get_queue(session, queue_id)
        raise NotFound(f"user {user_id} is not a member of queue {queue_id}")
    return member


def queue_members(session: Session, queue_id: int) -> list[QueueMember]:
    get_queue(session, queue_id)
    stmt = select(QueueMember).where(QueueMember.queue_id == queue_id).order_by(QueueMember.user_id)
    return list(session.scalars(stmt))


def all_queue_members(session: Session) -> list[QueueMember]:
    """Every membership, by queue then user: what the distributor loads."""
    return list(session.scalars(select(QueueMember).order_by(QueueMember.queue_id, QueueMember.user_id)))


def add_queue_member(session: Session, queue_id: int, user_id: int, *, penalty: int = 0) -> QueueMember:
    queue = get_queue(session, queue_id)
    user: User = _existing(session, User, user_id, "user")
    if user.role not in MEMBER_ROLES:
        raise Invalid(f"user {user.username} is a {user.role.value}: only agents and supervisors can join a queue")
    if session.get(QueueMember, (queue_id, user_id)) is not None:
        raise Conflict(f"user {user.username} is already a member of queue {queue.name}")
    member = QueueMember(queue_id=queue_id, user_id=user_id, penalty=_int(penalty, "penalty", *PENALTY_RANGE))
    session.add(member)
    _flush(session)
    return member


def update_queue_member(session: Session, queue_id: int, user_id: int, *, penalty: int) -> QueueMember:
    member = _member(session, queue_id, user_id)
    member.penalty = _int(penalty, "penalty", *PENALTY_RANGE)
    _flush(session)
    return member


def remove_queue_member(session: Session, queue_id: int, user_id: int) -> None:
    session.delete(_member(session, queue_id, user_id))
    _flush(session)


# ---- agent skills -----------------------------------------------------------------------------


def agent_skills(session: Session, user_id: int) -> dict[str, int]:
    _get(session, User, user_id, "user")
    stmt = select(AgentSkill).where(AgentSkill.user_id == user_id).order_by(AgentSkill.skill)
    return {s.skill: s.level for s in session.scalars(stmt)}


def all_agent_skills(session: Session) -> dict[int, dict[str, int]]:
    """user id -> {skill: level}, for every user who has a skill."""
    out: dict[int, dict[str, int]] = {}
    for s in session.scalars(select(AgentSkill).order_by(AgentSkill.user_id, AgentSkill.skill)):
        out.setdefault(s.user_id, {})[s.skill] = s.level
    return out


def set_agent_skills(session: Session, user_id: int, skills: Mapping[str, int]) -> dict[str, int]:
    """Replace the user's skills with `skills` (an empty mapping removes them all)."""
    _get(session, User, user_id, "user")
    wanted = check_skills(skills, "skills")
    have = {s.skill: s for s in session.scalars(select(AgentSkill).where(AgentSkill.user_id == user_id))}
    for name, row in have.items():
        if name not in wanted:
            session.delete(row)
        else:
            row.level = wanted[name]
    session.add_all(AgentSkill(user_id=user_id, skill=n, level=lv) for n, lv in wanted.items() if n not in have)
    _flush(session)
    return wanted


def set_agent_skill(session: Session, user_id: int, skill: str, level: int) -> AgentSkill:
    """Add one skill, or change its level."""
    _get(session, User, user_id, "user")
    level = check_skills({skill: level}, "skill")[skill]
    row = session.get(AgentSkill, (user_id, skill))
    if row is None:
        row = AgentSkill(user_id=user_id, skill=skill, level=level)
        session.add(row)
    row.level = level
    _flush(session)
    return row


def remove_agent_skill(session: Session, user_id: int, skill: str) -> None:
    row = session.get(AgentSkill, (user_id, skill))
    if row is None:
        raise NotFound(f"user {user_id} has no skill {skill}")
    session.delete(row)
    _flush(session)


# ---- agent state ------------------------------------------------------------------------------


def upsert_agent_status(
    session: Session,
    user_id: int,
    *,
    state: AgentState | str,
    reason: str | None = None,
    since: datetime | None = None,
    logged_in_queues: Iterable[int] | None = None,
) -> AgentStatus:
    """Record the agent's state now. `reason` belongs to the state (None clears it); `since` defaults to
    now; `logged_in_queues` None keeps the recorded list ([] for a new row)."""
    state = _enum_value(AgentState, state, "agent state")
    since = _aware(since, "since") if since is not None else utcnow()
    if reason is not None and (not isinstance(reason, str) or len(reason) > 100):
        raise Invalid("reason must be text of at most 100 characters")
    status = session.get(AgentStatus, user_id)
    if status is None:
        _get(session, User, user_id, "user")
        status = AgentStatus(user_id=user_id, logged_in_queues=[])
        session.add(status)
    if logged_in_queues is not None:
        queues = list(logged_in_queues)
        if not all(isinstance(q, int) and not isinstance(q, bool) for q in queues):
            raise Invalid(f"logged_in_queues must be queue ids, got {queues!r}")
        status.logged_in_queues = sorted(set(queues))
    status.state = state
    status.reason = reason
    status.since = since
    status.updated_at = utcnow()
    _flush(session)
    return status


def agent_statuses(session: Session) -> dict[int, AgentStatus]:
    """Every recorded agent state, by user id (ascending): what a restarted controller starts from."""
    return {s.user_id: s for s in session.scalars(select(AgentStatus).order_by(AgentStatus.user_id))}


# ---- queue log --------------------------------------------------------------------------------

_LOG_KEYS = ("at", "node", "call_id", "queue_id", "agent_user_id", "event", "data")


def _log_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(entry) - set(_LOG_KEYS)
    if unknown:
        raise Invalid(f"unknown queue log field(s) {', '.join(sorted(unknown))}")
    node = entry.get("node")
    if not isinstance(node, str) or not 0 < len(node) <= 64:
        raise Invalid(f"queue log node must be a name of 1..64 characters, got {node!r}")
    call_id = entry.get("call_id") or ""
    if not isinstance(call_id, str) or len(call_id) > 64:
        raise Invalid(f"queue log call_id must be text of at most 64 characters, got {call_id!r}")
    for key in ("queue_id", "agent_user_id"):
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(f"queue log {key} must be an id or null, got {value!r}")
    data = entry.get("data") or {}
    if not isinstance(data, Mapping):
        raise Invalid(f"queue log data must be a mapping, got {data!r}")
    return {
        "at": _millis(_aware(entry.get("at"), "queue log at")),
        "node": node,
        "call_id": call_id,
        "queue_id": entry.get("queue_id"),
        "agent_user_id": entry.get("agent_user_id"),
        "event": _enum_value(QueueEvent, entry.get("event"), "queue log event"),
        "data": dict(data),
    }


def append_queue_log(session: Session, entries: Iterable[Mapping[str, Any]]) -> int:
    """Insert log lines in one statement; each a mapping with at (aware, kept to the millisecond), node,
    call_id, queue_id, agent_user_id, event, data. All or nothing: one bad line refuses the batch."""
    rows = [_log_row(e) for e in entries]
    if rows:
        session.execute(insert(QueueLogEntry), rows)
        _flush(session)
    return len(rows)


def _log_query(
    *,
    since: datetime | None,
    until: datetime | None,
    queue_id: int | None,
    agent_user_id: int | None,
    event: QueueEvent | str | None,
    call_id: str | None,
) -> Select[tuple[QueueLogEntry]]:
    stmt = select(QueueLogEntry).order_by(QueueLogEntry.at, QueueLogEntry.id)
    if since is not None:
        stmt = stmt.where(QueueLogEntry.at >= _aware(since, "since"))
    if until is not None:
        stmt = stmt.where(QueueLogEntry.at < _aware(until, "until"))
    if queue_id is not None:
        stmt = stmt.where(QueueLogEntry.queue_id == queue_id)
    if agent_user_id is not None:
        stmt = stmt.where(QueueLogEntry.agent_user_id == agent_user_id)
    if event is not None:
        stmt = stmt.where(QueueLogEntry.event == _enum_value(QueueEvent, event, "event"))
    if call_id is not None:
        stmt = stmt.where(QueueLogEntry.call_id == call_id)
    return stmt


def query_queue_log(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    queue_id: int | None = None,
    agent_user_id: int | None = None,
    event: QueueEvent | str | None = None,
    call_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[QueueLogEntry], int]:
    """Log lines in time order (since inclusive, until exclusive), one page, and how many match."""
    stmt = _log_query(
        since=since, until=until, queue_id=queue_id, agent_user_id=agent_user_id, event=event, call_id=call_id
    )
    return _page(session, stmt, offset, limit)


def iter_queue_log(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    queue_id: int | None = None,
    agent_user_id: int | None = None,
    event: QueueEvent | str | None = None,
    call_id: str | None = None,
    batch: int = 1000,
) -> Iterator[QueueLogEntry]:
    """Every matching line in time order, fetched `batch` at a time (for exports of any size)."""
    stmt = _log_query(
        since=since, until=until, queue_id=queue_id, agent_user_id=agent_user_id, event=event, call_id=call_id
    )
    yield from session.scalars(stmt.execution_options(yield_per=batch))


# ---- hotline calls ----------------------------------------------------------------------------

CALL_FIELDS = frozenset({
    "node", "linkedid", "caller_number", "caller_name", "service_number", "menu_digit", "queue_id", "priority",
    "enqueued_at", "offered_count", "answered_at", "ended_at", "agent_user_id", "outcome", "wait_s", "talk_s",
    "recording_path", "notes",
})  # fmt: skip
# Caller-supplied text is cut to fit rather than refused: a call record must never be lost over a long name.
_NOT_NULL = frozenset({"node", "priority", "offered_count", "outcome"})
_CUT = {"caller_number": 32, "caller_name": 100, "linkedid": 64, "service_number": 16, "recording_path": 500}


def get_hotline_call(session: Session, call_id: str) -> HotlineCall:
    call = session.get(HotlineCall, call_id)
    if call is None:
        raise NotFound(f"hotline call {call_id} not found")
    return call


def upsert_hotline_call(session: Session, call_id: str, **fields: Any) -> HotlineCall:
    """Create the call's record (then `node` is required) or update the fields given."""
    unknown = set(fields) - CALL_FIELDS
    if unknown:
        raise Invalid(f"cannot set {', '.join(sorted(unknown))} of a hotline call")
    if not isinstance(call_id, str):
        raise Invalid(f"call id must be text, got {call_id!r}")
    _check(CALL_ID_RE, call_id, "call id")
    if fields.get("notes", "") is None:
        fields["notes"] = ""
    for key, value in fields.items():
        if value is None:
            if key in _NOT_NULL:
                raise Invalid(f"{key} of a hotline call may not be null")
            continue
        if key.endswith("_at"):
            _aware(value, key)
        elif key in ("queue_id", "agent_user_id"):
            _int(value, key, 1, 2**63 - 1)
        elif key == "priority":
            _int(value, key, *PRIORITY_RANGE)
        elif key == "offered_count":
            _int(value, key, 0, 10**6)
        elif key in ("wait_s", "talk_s"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise Invalid(f"{key} must be seconds >= 0, got {value!r}")
            fields[key] = float(value)
        elif key == "outcome":
            fields[key] = _enum_value(CallOutcome, value, "outcome")
        elif not isinstance(value, str):
            raise Invalid(f"{key} must be text, got {value!r}")
        elif key == "menu_digit":
            _check(DTMF_RE, value, "menu digit")
        elif key in _CUT:
            fields[key] = value[: _CUT[key]]
    if fields.get("node") is not None and not 0 < len(fields["node"]) <= 64:
        raise Invalid("node must be a name of 1..64 characters")
    call = session.get(HotlineCall, call_id)
    if call is None:
        if not fields.get("node"):
            raise Invalid(f"a new hotline call record ({call_id}) needs the node it is on")
        call = HotlineCall(id=call_id)
        session.add(call)
    for key, value in fields.items():
        setattr(call, key, value)
    _flush(session)
    return call


def list_hotline_calls(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    queue_id: int | None = None,
    agent_user_id: int | None = None,
    outcome: CallOutcome | str | None = None,
    service_number: str | None = None,
    caller_number: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[HotlineCall], int]:
    """Calls newest first, by when their record was created (since inclusive, until exclusive)."""
    stmt = select(HotlineCall).order_by(HotlineCall.created_at.desc(), HotlineCall.id.desc())
    if since is not None:
        stmt = stmt.where(HotlineCall.created_at >= _aware(since, "since"))
    if until is not None:
        stmt = stmt.where(HotlineCall.created_at < _aware(until, "until"))
    if queue_id is not None:
        stmt = stmt.where(HotlineCall.queue_id == queue_id)
    if agent_user_id is not None:
        stmt = stmt.where(HotlineCall.agent_user_id == agent_user_id)
    if outcome is not None:
        stmt = stmt.where(HotlineCall.outcome == _enum_value(CallOutcome, outcome, "outcome"))
    if service_number is not None:
        stmt = stmt.where(HotlineCall.service_number == service_number)
    if caller_number:
        stmt = stmt.where(HotlineCall.caller_number.contains(caller_number, autoescape=True))
    return _page(session, stmt, offset, limit)
