"""/api/queues, /api/menu-options, /api/users/{id}/skills: the hotline distributor's configuration.

Every change is announced on the bus as `HotlineConfigChanged`, after the commit; the runtime reloads
the distributor's configuration on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, StringConstraints, field_validator

from huiyan.api.access import Admin, Reader
from huiyan.api.context import ApiContext, Ctx, DbSession
from huiyan.api.schemas import Page, _In, _Patch
from huiyan.db import hotline
from huiyan.db.errors import Invalid
from huiyan.db.hotline import (
    DIGIT_RE,
    LABEL_RE,
    MAX_LEVEL,
    MAX_RELAX_STEPS,
    MAX_SKILLS,
    MIN_LEVEL,
    PENALTY_RANGE,
    PRIORITY_RANGE,
    PROMPT_RE,
    QUEUE_NAME_RE,
    QUEUE_RANGES,
    SERVICE_NUMBER_RE,
    SKILL_RE,
    ConfigAction,
    ConfigKind,
    HotlineConfigChanged,
)
from huiyan.db.models import JoinEmptyPolicy, MenuOption, QueueMember, QueueStrategy, Role
from huiyan.db.models import Queue as QueueRow

router = APIRouter(tags=["hotline"])

SkillName = Annotated[str, StringConstraints(pattern=SKILL_RE)]
Level = Annotated[int, Field(ge=MIN_LEVEL, le=MAX_LEVEL)]
Skills = Annotated[dict[SkillName, Level], Field(max_length=MAX_SKILLS)]
RelaxStep = tuple[
    Annotated[int, Field(ge=1, le=QUEUE_RANGES["max_wait_s"][1])], Annotated[int, Field(ge=1, le=MAX_LEVEL - 1)]
]
RELAX_DOC = "[[after_seconds, level_delta], ...]: after that wait, required skill levels drop by the delta"


def _seconds(key: str, default: int | None, doc: str = "") -> Any:
    lo, hi = QUEUE_RANGES[key]
    return Field(default, ge=lo, le=hi, description=doc or None)


def _publish(ctx: ApiContext, kind: ConfigKind, action: ConfigAction, id_: int) -> None:
    # Routes run in a threadpool worker; the bus's queues belong to the event loop.
    anyio.from_thread.run_sync(ctx.bus.publish, HotlineConfigChanged(kind, action, id_))


def _sorted_steps(steps: list[tuple[int, int]] | None) -> list[tuple[int, int]] | None:
    if steps is not None:
        try:
            hotline.check_relax_steps(steps)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
    return steps


# ---- queues -----------------------------------------------------------------------------------


class QueueCreate(_In):
    name: str = Field(pattern=QUEUE_NAME_RE, examples=["法律咨询"])
    name_en: str = Field("", max_length=200, examples=["Legal consultation"])
    organisation_id: int | None = Field(None, ge=1)
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    ring_timeout_s: int = _seconds("ring_timeout_s", 20, "how long one offer rings")
    wrapup_s: int = _seconds("wrapup_s", 10, "after-call work before the next offer")
    max_wait_s: int | None = _seconds("max_wait_s", None, "null: no limit")
    overflow_queue_id: int | None = Field(None, ge=1, description="where callers go after max_wait_s")
    join_empty: JoinEmptyPolicy = JoinEmptyPolicy.JOIN
    sl_threshold_s: int = _seconds("sl_threshold_s", 20, "service level: answered within this many seconds")
    sl_target: float = Field(0.8, gt=0, le=1, description="service level goal, a fraction")
    autopause_after: int = _seconds("autopause_after", 3, "pause an agent after this many missed offers; 0 = off")
    relax_steps: list[RelaxStep] = Field(default_factory=list, max_length=MAX_RELAX_STEPS, description=RELAX_DOC)
    announce_every_s: int = _seconds("announce_every_s", 30, "position announcements; 0 = never")
    active: bool = True

    _steps = field_validator("relax_steps")(_sorted_steps)


class QueuePatch(_Patch):
    nullable = frozenset({"organisation_id", "max_wait_s", "overflow_queue_id"})

    name: str | None = Field(None, pattern=QUEUE_NAME_RE)
    name_en: str | None = Field(None, max_length=200)
    organisation_id: int | None = Field(None, ge=1)
    strategy: QueueStrategy | None = None
    ring_timeout_s: int | None = _seconds("ring_timeout_s", None)
    wrapup_s: int | None = _seconds("wrapup_s", None)
    max_wait_s: int | None = _seconds("max_wait_s", None)
    overflow_queue_id: int | None = Field(None, ge=1)
    join_empty: JoinEmptyPolicy | None = None
    sl_threshold_s: int | None = _seconds("sl_threshold_s", None)
    sl_target: float | None = Field(None, gt=0, le=1)
    autopause_after: int | None = _seconds("autopause_after", None)
    relax_steps: list[RelaxStep] | None = Field(None, max_length=MAX_RELAX_STEPS, description=RELAX_DOC)
    announce_every_s: int | None = _seconds("announce_every_s", None)
    active: bool | None = None

    _steps = field_validator("relax_steps")(_sorted_steps)

    def changes(self) -> dict[str, Any]:
        out = super().changes()
        if "relax_steps" in out:
            out["relax_steps"] = [list(s) for s in out["relax_steps"]]
        return out


class QueueOut(BaseModel):
    id: int
    name: str
    name_en: str
    organisation_id: int | None
    strategy: QueueStrategy
    ring_timeout_s: int
    wrapup_s: int
    max_wait_s: int | None
    overflow_queue_id: int | None
    join_empty: JoinEmptyPolicy
    sl_threshold_s: int
    sl_target: float
    autopause_after: int
    relax_steps: list[tuple[int, int]]
    announce_every_s: int
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, queue: QueueRow) -> QueueOut:
        return cls.model_validate(
            {name: getattr(queue, name) for name in cls.model_fields} | {"relax_steps": queue.relax_steps or []}
        )


@router.get("/api/queues", response_model=Page[QueueOut])
def list_queues(
    caller: Reader,
    session: DbSession,
    active: bool | None = None,
    organisation_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or English name")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[QueueOut]:
    items, total = hotline.list_queues(
        session, active=active, organisation_id=organisation_id, q=q, offset=offset, limit=limit
    )
    return Page(items=[QueueOut.of(x) for x in items], total=total, offset=offset, limit=limit)


@router.get("/api/queues/{queue_id}", response_model=QueueOut)
def get_queue(caller: Reader, queue_id: int, session: DbSession) -> QueueOut:
    return QueueOut.of(hotline.get_queue(session, queue_id))


@router.post("/api/queues", status_code=status.HTTP_201_CREATED, response_model=QueueOut)
def create_queue(caller: Admin, body: QueueCreate, ctx: Ctx, session: DbSession) -> QueueOut:
    """An overflow queue needs `max_wait_s` (400 otherwise)."""
    queue = hotline.create_queue(session, **body.model_dump())
    session.commit()
    _publish(ctx, "queue", "created", queue.id)
    return QueueOut.of(queue)


@router.patch("/api/queues/{queue_id}", response_model=QueueOut)
def update_queue(caller: Admin, queue_id: int, body: QueuePatch, ctx: Ctx, session: DbSession) -> QueueOut:
    if body.overflow_queue_id == queue_id:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("body", "overflow_queue_id"), "input": queue_id,
            "msg": "Value error, a queue cannot overflow to itself",
        }])  # fmt: skip
    queue = hotline.update_queue(session, queue_id, body.changes())
    session.commit()
    _publish(ctx, "queue", "updated", queue.id)
    return QueueOut.of(queue)


@router.delete("/api/queues/{queue_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_queue(caller: Admin, queue_id: int, ctx: Ctx, session: DbSession) -> Response:
    """Refused (409) while menu options route to it, queues overflow to it, or it has call history:
    deactivate it instead (`active: false`). Its members go with it."""
    hotline.delete_queue(session, queue_id)
    session.commit()
    _publish(ctx, "queue", "deleted", queue_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- members ----------------------------------------------------------------------------------


class MemberAdd(_In):
    user_id: int = Field(ge=1)
    penalty: int = Field(0, ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1], description="lower is offered calls first")


class MemberPatch(_In):
    penalty: int = Field(ge=PENALTY_RANGE[0], le=PENALTY_RANGE[1])


class MemberOut(BaseModel):
    queue_id: int
    user_id: int
    penalty: int
    username: str
    display_name: str
    role: Role
    extension: str

    @classmethod
    def of(cls, member: QueueMember) -> MemberOut:
        user = member.user
        return cls(
            queue_id=member.queue_id,
            user_id=member.user_id,
            penalty=member.penalty,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            extension=user.extension,
        )


@router.get("/api/queues/{queue_id}/members", response_model=list[MemberOut])
def list_members(caller: Reader, queue_id: int, session: DbSession) -> list[MemberOut]:
    return [MemberOut.of(m) for m in hotline.queue_members(session, queue_id)]


@router.post("/api/queues/{queue_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut)
def add_member(caller: Admin, queue_id: int, body: MemberAdd, ctx: Ctx, session: DbSession) -> MemberOut:
    """Only agents and supervisors (400 otherwise); 409 if already a member."""
    member = hotline.add_queue_member(session, queue_id, body.user_id, penalty=body.penalty)
    session.commit()
    _publish(ctx, "member", "created", queue_id)
    return MemberOut.of(member)


@router.patch("/api/queues/{queue_id}/members/{user_id}", response_model=MemberOut)
def update_member(
    caller: Admin, queue_id: int, user_id: int, body: MemberPatch, ctx: Ctx, session: DbSession
) -> MemberOut:
    member = hotline.update_queue_member(session, queue_id, user_id, penalty=body.penalty)
    session.commit()
    _publish(ctx, "member", "updated", queue_id)
    return MemberOut.of(member)


@router.delete("/api/queues/{queue_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(caller: Admin, queue_id: int, user_id: int, ctx: Ctx, session: DbSession) -> Response:
    hotline.remove_queue_member(session, queue_id, user_id)
    session.commit()
    _publish(ctx, "member", "deleted", queue_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- voice menus ------------------------------------------------------------------------------

ServiceNumber = Annotated[str, StringConstraints(pattern=SERVICE_NUMBER_RE)]


class MenuOptionCreate(_In):
    service_number: ServiceNumber = Field(examples=["12348", "1234801"])
    digit: str = Field(pattern=DIGIT_RE, examples=["1"])
    queue_id: int = Field(ge=1)
    required_skills: Skills = Field(default_factory=dict, examples=[{"consultation": 1}])
    priority: int = Field(0, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1], description="higher is served first")
    label_zh: str = Field(pattern=LABEL_RE, examples=["法律咨询"])
    label_en: str = Field("", max_length=200, examples=["Legal consultation"])
    prompt: str | None = Field(None, pattern=PROMPT_RE, description="a prompt name from the catalogue")


class MenuOptionPatch(_Patch):
    nullable = frozenset({"prompt"})

    service_number: ServiceNumber | None = None
    digit: str | None = Field(None, pattern=DIGIT_RE)
    queue_id: int | None = Field(None, ge=1)
    required_skills: Skills | None = None
    priority: int | None = Field(None, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])
    label_zh: str | None = Field(None, pattern=LABEL_RE)
    label_en: str | None = Field(None, max_length=200)
    prompt: str | None = Field(None, pattern=PROMPT_RE)


class MenuOptionOut(BaseModel):
    id: int
    service_number: str
    digit: str
    queue_id: int
    required_skills: dict[str, int]
    priority: int
    label_zh: str
    label_en: str
    prompt: str | None

    @classmethod
    def of(cls, option: MenuOption) -> MenuOptionOut:
        return cls.model_validate({name: getattr(option, name) for name in cls.model_fields})


@router.get("/api/menu-options", response_model=Page[MenuOptionOut])
def list_menu_options(
    caller: Reader,
    session: DbSession,
    service_number: Annotated[str | None, Query(pattern=SERVICE_NUMBER_RE)] = None,
    queue_id: int | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[MenuOptionOut]:
    """Ordered by service number, then digit."""
    items, total = hotline.list_menu_options(
        session, service_number=service_number, queue_id=queue_id, offset=offset, limit=limit
    )
    return Page(items=[MenuOptionOut.of(o) for o in items], total=total, offset=offset, limit=limit)


@router.get("/api/menu-options/{option_id}", response_model=MenuOptionOut)
def get_menu_option(caller: Reader, option_id: int, session: DbSession) -> MenuOptionOut:
    return MenuOptionOut.of(hotline.get_menu_option(session, option_id))


@router.post("/api/menu-options", status_code=status.HTTP_201_CREATED, response_model=MenuOptionOut)
def create_menu_option(caller: Admin, body: MenuOptionCreate, ctx: Ctx, session: DbSession) -> MenuOptionOut:
    """409 if the digit of that service number is taken."""
    option = hotline.create_menu_option(session, **body.model_dump())
    session.commit()
    _publish(ctx, "menu_option", "created", option.id)
    return MenuOptionOut.of(option)


@router.patch("/api/menu-options/{option_id}", response_model=MenuOptionOut)
def update_menu_option(
    caller: Admin, option_id: int, body: MenuOptionPatch, ctx: Ctx, session: DbSession
) -> MenuOptionOut:
    option = hotline.update_menu_option(session, option_id, body.changes())
    session.commit()
    _publish(ctx, "menu_option", "updated", option.id)
    return MenuOptionOut.of(option)


@router.delete("/api/menu-options/{option_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_menu_option(caller: Admin, option_id: int, ctx: Ctx, session: DbSession) -> Response:
    hotline.delete_menu_option(session, option_id)
    session.commit()
    _publish(ctx, "menu_option", "deleted", option_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- skills -----------------------------------------------------------------------------------


class SkillsIn(_In):
    skills: Skills = Field(
        description="the complete set, {skill: level 1..10}; {} removes them all",
        examples=[{"consultation": 8, "lang_zh": 10, "lang_ko": 6}],
    )


class SkillsOut(BaseModel):
    user_id: int
    skills: dict[str, int]


@router.get("/api/users/{user_id}/skills", response_model=SkillsOut)
def get_skills(caller: Reader, user_id: int, session: DbSession) -> SkillsOut:
    return SkillsOut(user_id=user_id, skills=hotline.agent_skills(session, user_id))


@router.put("/api/users/{user_id}/skills", response_model=SkillsOut)
def put_skills(caller: Admin, user_id: int, body: SkillsIn, ctx: Ctx, session: DbSession) -> SkillsOut:
    """Replaces the user's skills with the set sent."""
    skills = hotline.set_agent_skills(session, user_id, body.skills)
    session.commit()
    _publish(ctx, "skills", "updated", user_id)
    return SkillsOut(user_id=user_id, skills=skills)
