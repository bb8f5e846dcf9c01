"""The tables: the directory (organisations = the bureau tree, users = staff, devices = terminals), then the
12348 hotline's (queues, voice menus, skills, members, agent state, queue log, calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: SQLite batch migrations can only drop what has a name, and names match across DBs.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OrgLevel(StrEnum):
    """Level in the justice administration, top to bottom: 省 province, 市州 city, 县区 county, 司法所 office."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    OFFICE = "office"

    @property
    def rank(self) -> int:
        """0 for the province, growing downwards."""
        return list(OrgLevel).index(self)

    def is_below(self, other: OrgLevel) -> bool:
        return self.rank > other.rank


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"  # 坐席, answers 12348
    SUPERVISOR = "supervisor"
    MEDIATOR = "mediator"  # 调解员
    OFFICER = "officer"  # 社区矫正工作人员
    LAWYER = "lawyer"


# Users with these roles get a browser (WebRTC) SIP endpoint in the "staff" caller class.
STAFF_ROLES: frozenset[Role] = frozenset(Role)


class DeviceKind(StrEnum):
    TERMINAL = "terminal"  # a bureau's video terminal (小鱼)
    SOFTPHONE = "softphone"
    BROWSER = "browser"  # a fixed browser client (WebRTC), e.g. a hotline seat's PC
    KIOSK = "kiosk"  # a citizen-facing terminal in a bureau's hall: may only call the services


def _enum(cls: type[StrEnum], name: str, length: int = 16) -> Enum:
    # VARCHAR, not a native PostgreSQL ENUM: adding a value later is then a code change, not a migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Organisation(Base):
    """A justice bureau (司法厅/司法局) or judicial office (司法所); they form a tree."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    code: Mapped[str] = mapped_column(String(32), unique=True)  # GB/T 2260 division code where one exists
    level: Mapped[OrgLevel] = mapped_column(_enum(OrgLevel, "org_level"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organisation]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.code} {self.name} {self.level}>"


class User(Base):
    """A member of staff who logs in to the web console; also a browser SIP endpoint."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    sip_password: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role} {self.extension}>"


class Device(Base):
    """A video terminal, softphone, fixed browser seat or citizen kiosk, registered by SIP."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[DeviceKind] = mapped_column(_enum(DeviceKind, "device_kind"), default=DeviceKind.TERMINAL)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"), index=True)
    department: Mapped[str | None] = mapped_column(String(32), default=None)  # head, command, hotline...
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    sip_password: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Presence, from AMI ContactStatus (huiyan/directory/presence.py): registered now, and when last heard of.
    online: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Device {self.id} {self.serial} {self.kind} {self.extension}>"


# ---- the 12348 hotline's call distributor (热线排队): configuration, agent state, and what happened ----


class QueueStrategy(StrEnum):
    """How a queue picks among able agents; the values of `huiyan.acd.model.Strategy`."""

    LONGEST_IDLE = "longest-idle"
    FEWEST_CALLS = "fewest-calls"
    ROUND_ROBIN = "round-robin"
    RING_ALL = "ring-all"
    SKILLS = "skills"


class JoinEmptyPolicy(StrEnum):
    """Whether a caller may join a queue nobody able could answer."""

    JOIN = "join"
    REFUSE_NO_AGENTS = "refuse_no_agents"  # refuse when no able agent is logged in
    REFUSE_NONE_AVAILABLE = "refuse_none_available"  # refuse when every able agent is logged out or paused


class AgentState(StrEnum):
    """An agent's state in the distributor; the values of `huiyan.acd.model.AgentState`."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"  # ringing
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class QueueEvent(StrEnum):
    """What a queue log line records (the hotline's counterpart of Asterisk's queue_log verbs)."""

    ENQUEUE = "enqueue"
    REFUSE = "refuse"  # the join-empty policy turned the caller away; the call never entered the queue
    OFFER = "offer"
    CONNECT = "connect"
    NOANSWER = "noanswer"
    ABANDON = "abandon"
    TRANSFER = "transfer"
    COMPLETE = "complete"
    OVERFLOW = "overflow"
    TIMEOUT = "timeout"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    LOGIN = "login"
    LOGOUT = "logout"
    WRAPUP_END = "wrapup_end"


class CallOutcome(StrEnum):
    """Where a hotline call stands, or how it ended."""

    WAITING = "waiting"
    RINGING = "ringing"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    OVERFLOWED = "overflowed"
    TRANSFERRED = "transferred"
    FAILED = "failed"
    COMPLETED = "completed"


class Queue(Base):
    """A queue of the 12348 hotline (队列), e.g. 法律咨询; callers wait in it for an able agent."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    name_en: Mapped[str] = mapped_column(String(200), default="")
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    strategy: Mapped[QueueStrategy] = mapped_column(
        _enum(QueueStrategy, "queue_strategy"), default=QueueStrategy.LONGEST_IDLE
    )
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=20)
    wrapup_s: Mapped[int] = mapped_column(Integer, default=10)
    max_wait_s: Mapped[int | None] = mapped_column(Integer, default=None)  # None: no limit
    overflow_queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="RESTRICT"), index=True, default=None
    )
    join_empty: Mapped[JoinEmptyPolicy] = mapped_column(
        _enum(JoinEmptyPolicy, "join_empty_policy", 24), default=JoinEmptyPolicy.JOIN
    )
    sl_threshold_s: Mapped[int] = mapped_column(Integer, default=20)
    sl_target: Mapped[float] = mapped_column(Float, default=0.8)
    autopause_after: Mapped[int] = mapped_column(Integer, default=3)  # unanswered offers in a row; 0 = off
    relax_steps: Mapped[list[list[int]]] = mapped_column(JSON, default=list)  # [[after_seconds, level_delta], ...]
    announce_every_s: Mapped[int] = mapped_column(Integer, default=30)  # position announcements; 0 = never
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[QueueMember]] = relationship(
        back_populates="queue", cascade="all, delete-orphan", passive_deletes=True, order_by="QueueMember.user_id"
    )

    def __repr__(self) -> str:
        return f"<Queue {self.id} {self.name} {self.strategy}>"


class MenuOption(Base):
    """One digit of a service number's voice menu (IVR): press it to wait in a queue with these skills."""

    __tablename__ = "menu_options"
    __table_args__ = (UniqueConstraint("service_number", "digit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_number: Mapped[str] = mapped_column(String(16))  # "12348", or a city's "1234801"
    digit: Mapped[str] = mapped_column(String(1))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"), index=True)
    required_skills: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # {skill: minimum level}
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher is served first
    label_zh: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(200), default="")
    prompt: Mapped[str | None] = mapped_column(String(64), default=None)  # a prompt name from the catalogue

    queue: Mapped[Queue] = relationship()

    def __repr__(self) -> str:
        return f"<MenuOption {self.id} {self.service_number}/{self.digit} -> queue {self.queue_id}>"


class AgentSkill(Base):
    """What an agent can do and how well (1..10): consultation, legal_aid, mediation, lang_ko (延边)..."""

    __tablename__ = "agent_skills"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"<AgentSkill {self.user_id} {self.skill}={self.level}>"


class QueueMember(Base):
    """An agent (or supervisor) who may take calls from a queue; lower penalty is offered calls first."""

    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    penalty: Mapped[int] = mapped_column(Integer, default=0)

    queue: Mapped[Queue] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<QueueMember queue {self.queue_id} user {self.user_id} penalty {self.penalty}>"


class AgentStatus(Base):
    """An agent's last known distributor state, written as it changes so a controller restart loses nothing."""

    __tablename__ = "agent_statuses"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[AgentState] = mapped_column(_enum(AgentState, "agent_state"), default=AgentState.LOGGED_OUT)
    reason: Mapped[str | None] = mapped_column(String(100), default=None)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    logged_in_queues: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<AgentStatus {self.user_id} {self.state}>"


# The log only grows: 64-bit ids where the database has them (SQLite's rowid is 64-bit already).
_LOG_ID = BigInteger().with_variant(Integer(), "sqlite")


class QueueLogEntry(Base):
    """One line of the queue log (队列日志): the distributor's history, for reports and audits.

    queue_id and agent_user_id are plain numbers, not foreign keys: the log must take every line the
    runtime writes, and must outlive the queues and users it mentions."""

    __tablename__ = "queue_log"
    __table_args__ = (
        Index("ix_queue_log_at", "at"),
        Index("ix_queue_log_queue_id_at", "queue_id", "at"),
        Index("ix_queue_log_agent_user_id_at", "agent_user_id", "at"),
        Index("ix_queue_log_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(_LOG_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # milliseconds (the store truncates)
    node: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(64), default="")  # the caller channel's Asterisk uniqueid
    queue_id: Mapped[int | None] = mapped_column(Integer, default=None)
    agent_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    event: Mapped[QueueEvent] = mapped_column(_enum(QueueEvent, "queue_event"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<QueueLogEntry {self.id} {self.at} {self.event} call {self.call_id}>"


class HotlineCall(Base):
    """One call to the hotline, from the voice menu to hang-up; upserted by the runtime as it goes.

    Keyed by the caller channel's uniqueid; with several PBX nodes, give each its own `systemname` in
    asterisk.conf so uniqueids cannot collide. queue_id and agent_user_id are not foreign keys, for the
    reason given at `QueueLogEntry`."""

    __tablename__ = "hotline_calls"
    __table_args__ = (Index("ix_hotline_calls_queue_id_created_at", "queue_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    caller_number: Mapped[str | None] = mapped_column(String(32), default=None)
    caller_name: Mapped[str | None] = mapped_column(String(100), default=None)
    service_number: Mapped[str | None] = mapped_column(String(16), default=None)
    menu_digit: Mapped[str | None] = mapped_column(String(1), default=None)  # the key pressed: 0-9 * # A-D
    queue_id: Mapped[int | None] = mapped_column(Integer, default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    offered_count: Mapped[int] = mapped_column(Integer, default=0)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    agent_user_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    outcome: Mapped[CallOutcome] = mapped_column(_enum(CallOutcome, "call_outcome"), default=CallOutcome.WAITING)
    wait_s: Mapped[float | None] = mapped_column(Float, default=None)
    talk_s: Mapped[float | None] = mapped_column(Float, default=None)
    recording_path: Mapped[str | None] = mapped_column(String(500), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    # When the record was first written: calls that never reached a queue have no enqueued_at.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<HotlineCall {self.id} {self.outcome} queue {self.queue_id}>"


# ---- rooms (会议室): video meetings, and the rooms mediation, dispatch and education sessions run in ----


class RoomKind(StrEnum):
    """What a room is for. A mediation session or a dispatch meeting is a room plus its own line's data
    (a table with a `room_id`), so every room shares joining, meeting control and recording."""

    MEETING = "meeting"  # 视频会议
    MEDIATION = "mediation"  # 远程调解
    DISPATCH = "dispatch"  # 指挥调度
    EDUCATION = "education"  # 社区矫正教育


class VideoMode(StrEnum):
    """How a room shares video (see `huiyan.rooms.model` for which endpoint sees what)."""

    SFU = "sfu"  # every participant's stream to every multi-stream endpoint (browsers, capable SIP clients)
    FOLLOW_TALKER = "follow_talker"  # one stream, the loudest talker's: what terminals and legacy rooms take
    PRESENTER = "presenter"  # one stream, the presenter's (the chair until someone else is made presenter)


class Room(Base):
    """A conference room (会议室) with a number in the room plan (_6XXX). Permanent when it has no
    schedule (a bureau's or department's own room), scheduled otherwise (open from `starts_at` to
    `ends_at`). The number is also the ConfBridge conference name on the PBX."""

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[RoomKind] = mapped_column(_enum(RoomKind, "room_kind"), default=RoomKind.MEETING)
    video_mode: Mapped[VideoMode] = mapped_column(_enum(VideoMode, "room_video_mode"), default=VideoMode.FOLLOW_TALKER)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    department: Mapped[str | None] = mapped_column(String(32), default=None)  # head, command, hotline...
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pin: Mapped[str | None] = mapped_column(String(16), default=None)  # digits; None: no PIN for participants
    moderator_pin: Mapped[str | None] = mapped_column(String(16), default=None)
    max_participants: Mapped[int] = mapped_column(Integer, default=50)
    record: Mapped[bool] = mapped_column(Boolean, default=False)  # record every session from its start
    locked: Mapped[bool] = mapped_column(Boolean, default=False)  # only moderators may join
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    moderators: Mapped[list[RoomModerator]] = relationship(
        back_populates="room", cascade="all, delete-orphan", passive_deletes=True, order_by="RoomModerator.user_id"
    )
    invitees: Mapped[list[RoomInvitee]] = relationship(
        back_populates="room", cascade="all, delete-orphan", passive_deletes=True, order_by="RoomInvitee.id"
    )

    def __repr__(self) -> str:
        return f"<Room {self.id} {self.number} {self.name} {self.kind} {self.video_mode}>"


class RoomModerator(Base):
    """A user who chairs a room: joins from their own devices without a PIN, as moderator."""

    __tablename__ = "room_moderators"

    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)

    room: Mapped[Room] = relationship(back_populates="moderators")
    user: Mapped[User] = relationship()


class RoomInvitee(Base):
    """Someone invited to a room: an extension (joins without a PIN), a SIP URI or a phone number.
    `POST /api/rooms/{id}/invitations/all` dials every invitee at once."""

    __tablename__ = "room_invitees"
    __table_args__ = (UniqueConstraint("room_id", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100), default="")
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)

    room: Mapped[Room] = relationship(back_populates="invitees")


class RoomSession(Base):
    """One sitting of a room on a PBX node: from the first participant joining to the last leaving."""

    __tablename__ = "room_sessions"
    __table_args__ = (Index("ix_room_sessions_room_id_started_at", "room_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"))
    node: Mapped[str] = mapped_column(String(64))
    bridge_id: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    peak_participants: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<RoomSession {self.id} room {self.room_id} {self.started_at}>"


class RoomRecording(Base):
    """An audio recording of a room session (ConfBridge's mix); video recording is issue 5."""

    __tablename__ = "room_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"), index=True)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("room_sessions.id", ondelete="RESTRICT"), index=True, default=None
    )
    path: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"<RoomRecording {self.id} room {self.room_id} {self.path}>"


# --- mediation (issue 4) ---


class CaseType(StrEnum):
    """What a mediation case (调解案件) is about."""

    NEIGHBOUR = "neighbour"  # 邻里纠纷
    FAMILY = "family"  # 婚姻家庭纠纷
    LABOUR = "labour"  # 劳动争议
    CONSUMER = "consumer"  # 消费纠纷
    TOURISM = "tourism"  # 旅游纠纷
    OTHER = "other"


class CaseStatus(StrEnum):
    """Where a case stands; `huiyan.mediation.model` says which changes are allowed."""

    OPEN = "open"
    IN_SESSION = "in_session"  # a mediation session (a room) is running
    SETTLED = "settled"  # 调解成功 (an agreement; outcome says what)
    FAILED = "failed"  # 调解不成 (outcome says why)
    CLOSED = "closed"  # 结案 / withdrawn: read-only from then on


class PartyRole(StrEnum):
    APPLICANT = "applicant"  # 申请人
    RESPONDENT = "respondent"  # 被申请人
    OTHER = "other"  # a third party, an interpreter, a relative...


class MediationCase(Base):
    """A remote mediation case (远程调解案件): parties, a mediator, and sessions held in its own room
    (created at the first session). Parties dial the room number and key in the case's PIN."""

    __tablename__ = "mediation_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # "2026-00001"
    title: Mapped[str] = mapped_column(String(200))
    type: Mapped[CaseType] = mapped_column(_enum(CaseType, "mediation_case_type"))
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus, "mediation_case_status"), default=CaseStatus.OPEN, index=True
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )  # the mediation centre (调解中心 / 人民调解委员会)
    mediator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    pin: Mapped[str] = mapped_column(String(16), unique=True)  # digits; also the room's participant PIN
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"), unique=True,
                                                default=None)
    summary: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    mediator: Mapped[User] = relationship(foreign_keys=[mediator_id])
    room: Mapped[Room | None] = relationship()
    parties: Mapped[list[MediationParty]] = relationship(
        back_populates="case", cascade="all, delete-orphan", passive_deletes=True, order_by="MediationParty.id"
    )
    notes: Mapped[list[MediationNote]] = relationship(
        back_populates="case", cascade="all, delete-orphan", passive_deletes=True, order_by="MediationNote.id"
    )
    sessions: Mapped[list[MediationSession]] = relationship(
        back_populates="case", order_by="MediationSession.started_at"
    )

    def __repr__(self) -> str:
        return f"<MediationCase {self.id} {self.number} {self.type} {self.status}>"


class MediationParty(Base):
    """A party to a case. `target` (an extension or SIP URI) lets the party join from that endpoint without
    the PIN, and be dialled when the session starts."""

    __tablename__ = "mediation_parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    role: Mapped[PartyRole] = mapped_column(_enum(PartyRole, "mediation_party_role"))
    target: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[MediationCase] = relationship(back_populates="parties")

    def __repr__(self) -> str:
        return f"<MediationParty {self.id} case {self.case_id} {self.role} {self.name}>"


class MediationNote(Base):
    """A line of a case's file, appended only: a mediator's note, or (`system`) a record of what happened
    (status changes, sessions, invitations)."""

    __tablename__ = "mediation_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    text: Mapped[str] = mapped_column(Text)
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[MediationCase] = relationship(back_populates="notes")
    author: Mapped[User | None] = relationship()


class MediationSession(Base):
    """One mediation session of a case: from the mediator starting it to ending it, in the case's room.
    The room's own sittings and recordings (room_sessions, room_recordings) fall inside it."""

    __tablename__ = "mediation_sessions"
    __table_args__ = (Index("ix_mediation_sessions_case_id_started_at", "case_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id", ondelete="RESTRICT"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)

    case: Mapped[MediationCase] = relationship(back_populates="sessions")

    def __repr__(self) -> str:
        return f"<MediationSession {self.id} case {self.case_id} {self.started_at}>"


# --- dispatch (issue 4) ---


class DispatchGroupKind(StrEnum):
    """Who a dispatch group (调度组) calls, resolved from the organisation tree when the dispatch starts."""

    ALL_CITIES = "all_cities"  # every city bureau (市州司法局)
    COUNTIES_OF_CITY = "counties_of_city"  # every county bureau (县区司法局) of one city
    ALL = "all"  # every city and county bureau
    CUSTOM = "custom"  # listed organisations (their terminals) and/or listed devices


class DispatchStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class LegKind(StrEnum):
    """What one leg of a dispatch calls."""

    DEVICE = "device"  # a terminal (or another device) from the directory
    USER = "user"  # a member of staff's own endpoint
    EXTENSION = "extension"  # an internal extension given as a number
    SIP = "sip"  # a SIP URI (a legacy room, another system)
    PHONE = "phone"  # a phone number, through the trunk


class LegStatus(StrEnum):
    """Where one leg of a dispatch stands; see `huiyan.dispatch.model` for the transitions."""

    PENDING = "pending"  # not dialled yet
    CALLING = "calling"  # Originate sent, not ringing yet
    RINGING = "ringing"
    ANSWERED = "answered"  # on its way into the room (hearing the joining prompt)
    JOINED = "joined"  # in the room
    LEFT = "left"  # was in the room, hung up or was hung up
    BUSY = "busy"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"  # not registered, offline, or the network refused
    FAILED = "failed"  # any other failure (the reason says which)
    DROPPED = "dropped"  # the commander hung it up
    CANCELLED = "cancelled"  # the dispatch ended before this leg got in


class DispatchGroup(Base):
    """A dispatch group: one click calls every terminal it resolves to into an emergency room."""

    __tablename__ = "dispatch_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[DispatchGroupKind] = mapped_column(_enum(DispatchGroupKind, "dispatch_group_kind", 24))
    # counties_of_city: the city whose county bureaus are called.
    city_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    department: Mapped[str | None] = mapped_column(String(32), default=None)  # only terminals of this department
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[DispatchGroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True, order_by="DispatchGroupMember.id"
    )

    def __repr__(self) -> str:
        return f"<DispatchGroup {self.id} {self.name} {self.kind}>"


class DispatchGroupMember(Base):
    """One entry of a custom group: an organisation (its terminals) or a device. Deleting the organisation or
    device removes the entry."""

    __tablename__ = "dispatch_group_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dispatch_groups.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True, default=None
    )
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True,
                                                  default=None)

    group: Mapped[DispatchGroup] = relationship(back_populates="members")


class Dispatch(Base):
    """One command-and-dispatch operation (一键调度): its emergency room, who commands it, how unreachable
    parties are retried, and its legs. Kept after it ends (the room's recordings are its record)."""

    __tablename__ = "dispatches"
    __table_args__ = (Index("ix_dispatches_status_started_at", "status", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispatch_groups.id", ondelete="SET NULL"), index=True, default=None
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"), index=True)
    commander_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    node: Mapped[str] = mapped_column(String(64))
    status: Mapped[DispatchStatus] = mapped_column(_enum(DispatchStatus, "dispatch_status"),
                                                   default=DispatchStatus.ACTIVE)
    retries: Mapped[int] = mapped_column(Integer, default=2)
    retry_interval_s: Mapped[float] = mapped_column(Float, default=30.0)
    retry_on: Mapped[list[str]] = mapped_column(JSON, default=list)  # leg statuses that are retried
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    auto_answer: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    room: Mapped[Room] = relationship()
    legs: Mapped[list[DispatchLeg]] = relationship(
        back_populates="dispatch", cascade="all, delete-orphan", passive_deletes=True, order_by="DispatchLeg.id"
    )

    def __repr__(self) -> str:
        return f"<Dispatch {self.id} {self.name} {self.status}>"


class DispatchLeg(Base):
    """One party called by a dispatch, with its last known status (written as it changes).

    device_id and organisation_id are plain numbers, not foreign keys: a dispatch's record outlives the
    directory entries it called (as the queue log does)."""

    __tablename__ = "dispatch_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(ForeignKey("dispatches.id", ondelete="CASCADE"), index=True)
    kind: Mapped[LegKind] = mapped_column(_enum(LegKind, "dispatch_leg_kind"))
    target: Mapped[str] = mapped_column(String(200))  # what is dialled: an extension, a SIP URI, a number
    name: Mapped[str] = mapped_column(String(100), default="")
    device_id: Mapped[int | None] = mapped_column(Integer, default=None)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    organisation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    auto_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[LegStatus] = mapped_column(_enum(LegStatus, "dispatch_leg_status"), default=LegStatus.PENDING)
    reason: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # Originates sent; retries = attempts - 1
    channel_id: Mapped[str] = mapped_column(String(150), default="", index=True)  # the current attempt's uniqueid
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dispatch: Mapped[Dispatch] = relationship(back_populates="legs")

    def __repr__(self) -> str:
        return f"<DispatchLeg {self.id} dispatch {self.dispatch_id} {self.target} {self.status}>"


# --- recordings (issue 5) ---


class RecordingStatus(StrEnum):
    """A finalised recording's (录音录像) place in its life; the chain row itself never changes."""

    COMPLETE = "complete"
    PURGED = "purged"  # retention: the file is deleted, the row stays in the chain
    SUPERSEDED = "superseded"  # re-encoded: a later row (supersedes_id) replaces it


class RecordingJobState(StrEnum):
    """Where a finalisation job stands; each step is idempotent, so a job resumes where it stopped."""

    QUEUED = "queued"  # waiting for the capture to close
    ENCODING = "encoding"  # ffmpeg writing a temporary file (or it died doing so)
    ENCODED = "encoded"  # the final file is in place, not yet checked
    VERIFIED = "verified"  # ffprobe: its duration matches the capture's
    RECORDED = "recorded"  # hashed and in the chain; the raw capture not yet deleted
    DONE = "done"
    SKIPPED = "skipped"  # nothing to finalise (the call was never bridged, an empty capture)
    FAILED = "failed"  # given up after the allowed attempts: the raw capture is kept


class Recording(Base):
    """One finalised recording (M4A, or MP4 with video) and its evidence metadata. Rows form a hash chain in
    `seq` order: `digest` covers every field below it in `huiyan.recordings.model.CHAIN_FIELDS` and the
    previous row's digest, so changing, removing or inserting a row breaks the chain. Only `status` and
    `status_at` change after insertion (purge, supersede); they are outside the digest.

    room_id, case_id, organisation_id are plain numbers, not foreign keys: evidence outlives the directory."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_session_type_session_id", "session_type", "session_id"),
        Index("ix_recordings_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    job_id: Mapped[int] = mapped_column(Integer, unique=True)  # the job that made it: never two rows per job
    session_type: Mapped[str] = mapped_column(String(16))  # hotline, meeting, mediation, dispatch, ...
    session_id: Mapped[str] = mapped_column(String(64))  # call id, room session id, mediation session id...
    call_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    room_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    organisation_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    container: Mapped[str] = mapped_column(String(8))  # m4a, mp4
    codecs: Mapped[list[str]] = mapped_column(JSON, default=list)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))  # relative to the recordings directory
    supersedes_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[RecordingStatus] = mapped_column(
        _enum(RecordingStatus, "recording_status"), default=RecordingStatus.COMPLETE
    )
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"<Recording {self.id} #{self.seq} {self.session_type}/{self.session_id} {self.status}>"


class RecordingParticipant(Base):
    """Who took part in a recording (for search and for access: a participant may see it)."""

    __tablename__ = "recording_participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    number: Mapped[str] = mapped_column(String(64), default="", index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(32), default="")


class RecordingJob(Base):
    """Finalisation of one capture (or re-encoding of one recording), persisted step by step so that a
    crash resumes where it stopped. `key` makes queuing idempotent: one job per capture."""

    __tablename__ = "recording_jobs"
    __table_args__ = (Index("ix_recording_jobs_state_not_before", "state", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(600), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="finalise")  # finalise, reencode
    session_type: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))  # hotline_call, room_recording, recording
    source_ref: Mapped[str] = mapped_column(String(500))
    state: Mapped[RecordingJobState] = mapped_column(
        _enum(RecordingJobState, "recording_job_state"), default=RecordingJobState.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str | None] = mapped_column(String(100), default=None)  # host:pid of the runner holding it
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output_path: Mapped[str | None] = mapped_column(String(500), default=None)
    recording_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RecordingJob {self.id} {self.key} {self.state}>"


class RecordingAudit(Base):
    """Every access to a recording, allowed or denied, and every deletion (retention purge, supersede).
    Plain numbers, not foreign keys: the audit outlives users and takes unknown ids (a 404 is logged too)."""

    __tablename__ = "recording_audit"
    __table_args__ = (Index("ix_recording_audit_recording_id_at", "recording_id", "at"),)

    id: Mapped[int] = mapped_column(_LOG_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    recording_id: Mapped[int | None] = mapped_column(Integer, default=None)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    username: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(32))  # search, metadata, stream, download, share, shared, purge...
    allowed: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int] = mapped_column(Integer, default=200)
    reason: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str] = mapped_column(String(64), default="")

    def __repr__(self) -> str:
        return f"<RecordingAudit {self.id} {self.action} rec {self.recording_id} user {self.user_id} {self.allowed}>"


# --- check-in (issue 7) ---

from datetime import date  # noqa: E402 - kept with the section that needs it

from sqlalchemy import Date  # noqa: E402


class RiskLevel(StrEnum):
    """A supervised person's assessed risk (风险等级): decides how often they are checked."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ScheduleKind(StrEnum):
    """How a check-in schedule (点验计划) makes windows; see `huiyan.checkin.model.windows_of`."""

    DAILY = "daily"  # every day, start_time..end_time (Asia/Shanghai)
    WEEKLY = "weekly"  # on `days` (ISO weekdays 1-7), start_time..end_time
    SPOT = "spot"  # `per_week` random spot checks within start_time..end_time, each `spot_s` long
    ONCE = "once"  # one window, opens_at..closes_at


class WindowResult(StrEnum):
    PENDING = "pending"  # not closed yet
    PASSED = "passed"  # a check-in inside it passed
    FAILED = "failed"  # check-ins were made, none passed (each one alerted already)
    MISSED = "missed"  # nobody checked in: alerted
    CANCELLED = "cancelled"  # the schedule was removed or the subject deactivated before it opened


class CheckinKind(StrEnum):
    PHONE = "phone"  # the subject called the check-in number (SIP client / phone)
    BROWSER = "browser"  # the subject's phone page (its API: /api/checkin/sessions)
    ROLLCALL = "rollcall"  # an officer's roll-call (点验) dialled the subject's registered client
    WINDOW = "window"  # a window closed with no check-in: the row that records the miss


class CheckinOutcome(StrEnum):
    """How a check-in ended. Passes: on_time, late. Alerted: missed, identity_failed, outside_area, rejected."""

    PENDING = "pending"  # in progress (or a roll-call not dialled yet)
    ON_TIME = "on_time"
    LATE = "late"  # inside the window's grace period, after it closed
    MISSED = "missed"  # window closed without a check-in, or a roll-call not answered
    IDENTITY_FAILED = "identity_failed"  # the face did not match the enrolled photo
    OUTSIDE_AREA = "outside_area"  # the page's geolocation lies outside the allowed area
    REJECTED = "rejected"  # three wrong PINs
    OUTSIDE_WINDOW = "outside_window"  # an attempt with no window open: recorded, never a pass
    INCOMPLETE = "incomplete"  # hung up (or the page gave up) before the check-in was complete


class CheckinSubject(Base):
    """A person under community correction (社区矫正对象) who checks in by video: who supervises them, from
    which judicial office, for how long, what they must show (face, place) and how they are reached."""

    __tablename__ = "checkin_subjects"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)  # keyed on the phone: digits
    name: Mapped[str] = mapped_column(String(100))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"), index=True)
    supervision_start: Mapped[date] = mapped_column(Date)
    supervision_end: Mapped[date] = mapped_column(Date)
    risk_level: Mapped[RiskLevel] = mapped_column(_enum(RiskLevel, "checkin_risk_level"), default=RiskLevel.LOW)
    # The registered client: an internal extension (also how a phone call identifies them) or a SIP URI.
    client: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    # Allowed area: {"center": [lat, lon], "radius_m": r} or {"polygon": [[lat, lon], ...]}; None: anywhere.
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    pin_hash: Mapped[str] = mapped_column(String(255))
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)  # wrong PINs in a row on the page's API
    photo_path: Mapped[str | None] = mapped_column(String(500), default=None)  # relative to the data dir
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    photo_descriptor: Mapped[list[float] | None] = mapped_column(JSON, default=None)  # the face model's
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    officer: Mapped[User] = relationship()
    organisation: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<CheckinSubject {self.id} {self.number} {self.name}>"


class CheckinSchedule(Base):
    """When a subject must check in. Times are wall-clock times in the province's zone (`timezone`)."""

    __tablename__ = "checkin_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ScheduleKind] = mapped_column(_enum(ScheduleKind, "checkin_schedule_kind"))
    start_time: Mapped[str | None] = mapped_column(String(8), default=None)  # "09:00:00"
    end_time: Mapped[str | None] = mapped_column(String(8), default=None)  # "11:30:00"
    days: Mapped[list[int]] = mapped_column(JSON, default=list)  # ISO weekdays (weekly; spot: allowed days)
    per_week: Mapped[int] = mapped_column(Integer, default=0)  # spot checks a week
    spot_s: Mapped[int] = mapped_column(Integer, default=1800)  # how long a spot check's window stays open
    seed: Mapped[int] = mapped_column(BigInteger, default=0)  # spot checks: the same seed, the same times
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # once
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # once
    grace_s: Mapped[int] = mapped_column(Integer, default=0)  # after the close: still accepted, as late
    remind_s: Mapped[int] = mapped_column(Integer, default=900)  # the reminder goes this long before opening
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subject: Mapped[CheckinSubject] = relationship()

    def __repr__(self) -> str:
        return f"<CheckinSchedule {self.id} subject {self.subject_id} {self.kind}>"


class CheckinWindow(Base):
    """One window a schedule made (materialised ahead by the scheduler): open, then closed with a result."""

    __tablename__ = "checkin_windows"
    __table_args__ = (
        UniqueConstraint("schedule_id", "opens_at"),
        Index("ix_checkin_windows_subject_id_opens_at", "subject_id", "opens_at"),
        Index("ix_checkin_windows_result_grace_until", "result", "grace_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"))
    schedule_id: Mapped[int] = mapped_column(ForeignKey("checkin_schedules.id", ondelete="CASCADE"))
    kind: Mapped[ScheduleKind] = mapped_column(_enum(ScheduleKind, "checkin_schedule_kind"))
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    grace_until: Mapped[datetime] = mapped_column(UTCDateTime)  # closes_at + the schedule's grace
    remind_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # when the scheduler saw it open
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    result: Mapped[WindowResult] = mapped_column(_enum(WindowResult, "checkin_window_result"),
                                                 default=WindowResult.PENDING)

    def __repr__(self) -> str:
        return f"<CheckinWindow {self.id} subject {self.subject_id} {self.opens_at} {self.result}>"


class RollCall(Base):
    """An officer's roll-call (点验) of one or more subjects, dialled one after another."""

    __tablename__ = "checkin_rollcalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, done, cancelled
    ring_s: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"<RollCall {self.id} {self.status}>"


class CheckIn(Base):
    """One check-in (点验记录) with its evidence: how it came (phone, page, roll-call, or a missed window),
    the PIN result, the liveness challenge, the recording, location and face verdicts, the outcome, and the
    officer's review. organisation_id and officer_id are copied from the subject when it is made, so a
    report of a past month stays right after a subject changes office."""

    __tablename__ = "checkins"
    __table_args__ = (
        Index("ix_checkins_subject_id_started_at", "subject_id", "started_at"),
        Index("ix_checkins_organisation_id_started_at", "organisation_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="RESTRICT"))
    organisation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    officer_id: Mapped[int | None] = mapped_column(Integer, default=None)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_windows.id", ondelete="SET NULL"),
                                                  index=True, default=None)
    rollcall_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_rollcalls.id", ondelete="SET NULL"),
                                                    index=True, default=None)
    kind: Mapped[CheckinKind] = mapped_column(_enum(CheckinKind, "checkin_kind"))
    outcome: Mapped[CheckinOutcome] = mapped_column(_enum(CheckinOutcome, "checkin_outcome"),
                                                    default=CheckinOutcome.PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    node: Mapped[str] = mapped_column(String(64), default="")
    call_id: Mapped[str | None] = mapped_column(String(150), default=None, index=True)  # the channel's uniqueid
    caller: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pin_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    challenge: Mapped[str] = mapped_column(String(16), default="")  # digits the subject was asked to read out
    recording_path: Mapped[str | None] = mapped_column(String(500), default=None)  # the raw capture (WAV)
    location: Mapped[str] = mapped_column(String(16), default="none")  # none, in_area, outside_area, no_area
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    accuracy_m: Mapped[float | None] = mapped_column(Float, default=None)
    distance_m: Mapped[float | None] = mapped_column(Float, default=None)  # outside: how far from the area
    identity: Mapped[str] = mapped_column(String(16), default="not_checked")  # match, no_match, no_face, ...
    identity_distance: Mapped[float | None] = mapped_column(Float, default=None)
    review: Mapped[str | None] = mapped_column(String(8), default=None)  # pass, fail (the officer's word)
    review_note: Mapped[str] = mapped_column(Text, default="")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    subject: Mapped[CheckinSubject] = relationship()

    def __repr__(self) -> str:
        return f"<CheckIn {self.id} subject {self.subject_id} {self.kind} {self.outcome}>"


class CheckinSnapshot(Base):
    """A still from the subject's video sent by the page, and the face model's verdict on it."""

    __tablename__ = "checkin_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))  # relative to the data dir
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    faces: Mapped[int | None] = mapped_column(Integer, default=None)  # None: no model to count them
    identity: Mapped[str] = mapped_column(String(16))
    distance: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckinCode(Base):
    """A one-time code an officer gives a subject to start a check-in on the page instead of the PIN."""

    __tablename__ = "checkin_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the code
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckinAlert(Base):
    """A miss or a failure for the officer to act on (告警); escalated to the office head when nobody
    acknowledges it in time."""

    __tablename__ = "checkin_alerts"
    __table_args__ = (Index("ix_checkin_alerts_acknowledged_at_escalate_at", "acknowledged_at", "escalate_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"), index=True)
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id", ondelete="SET NULL"), index=True,
                                                   default=None)
    organisation_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    kind: Mapped[str] = mapped_column(String(32))  # the outcome that raised it (missed, rejected, ...)
    message: Mapped[str] = mapped_column(String(500))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True,
                                                   default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    escalate_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                           default=None)
    ack_note: Mapped[str] = mapped_column(Text, default="")

    subject: Mapped[CheckinSubject] = relationship()


class CheckinNotification(Base):
    """A notice kept for its recipient: a reminder to a subject before a window, an alert or an
    escalation to a member of staff. The bus carries the same, live."""

    __tablename__ = "checkin_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # reminder, alert, escalation
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"),
                                                   index=True, default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                                default=None)
    window_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_windows.id", ondelete="CASCADE"),
                                                  default=None)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("checkin_alerts.id", ondelete="CASCADE"),
                                                 default=None)
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class EducationSession(Base):
    """A group education session (集中教育) of subjects: a room of kind `education` for its time, and who
    is expected. Attendance comes from the room's join/leave events (`EducationPresence`)."""

    __tablename__ = "education_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="RESTRICT"), unique=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"),
                                                        index=True, default=None)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    min_share: Mapped[float] = mapped_column(Float, default=0.8)  # present: at least this share of the session
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    room: Mapped[Room] = relationship()
    attendees: Mapped[list[EducationAttendee]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True,
        order_by="EducationAttendee.subject_id")


class EducationAttendee(Base):
    __tablename__ = "education_attendees"

    session_id: Mapped[int] = mapped_column(ForeignKey("education_sessions.id", ondelete="CASCADE"),
                                            primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)

    session: Mapped[EducationSession] = relationship(back_populates="attendees")
    subject: Mapped[CheckinSubject] = relationship()


class EducationPresence(Base):
    """One stretch of a subject in an education room: from a join to its leave (open while still in)."""

    __tablename__ = "education_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("education_sessions.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("checkin_subjects.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[str] = mapped_column(String(150))  # the room participant (channel uniqueid)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


# --- entry points (issue 6) ---


class EntryPoint(Base):
    """A QR entry point (扫码入口): a printed poster whose code opens the citizen page preset to one service,
    e.g. 长白山 "天池和" 旅游纠纷调解 → the Changbai Mountain bureau's mediation option of 12348."""

    __tablename__ = "entry_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)  # the `entry=` of the URL: /call?entry=<slug>
    title: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    service_number: Mapped[str] = mapped_column(String(16))
    menu_digit: Mapped[str] = mapped_column(String(1))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"),
                                                        index=True, default=None)
    instructions: Mapped[str] = mapped_column(String(500), default="")
    instructions_en: Mapped[str] = mapped_column(String(1000), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()
