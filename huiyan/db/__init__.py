"""The database: the directory (organisations, users, devices, their SIP endpoints) and the 12348 hotline's
queues, menus, skills, agent state, queue log and calls (`huiyan.db.hotline`).

Sync SQLAlchemy on purpose: the API serves these tables from plain `def` routes, which FastAPI runs in
its threadpool, so a query never blocks the event loop. Async code elsewhere (AGI, the distributor)
reaches the database through `asyncio.to_thread` / `run_in_threadpool`, never directly. Any SQLAlchemy
URL works; SQLite (in the data directory) is the default, PostgreSQL is the production choice.
"""

from huiyan.db.engine import make_engine, session_factory
from huiyan.db.migrate import make_config, upgrade
from huiyan.db.models import (
    AgentSkill,
    AgentState,
    AgentStatus,
    Base,
    CallOutcome,
    Device,
    DeviceKind,
    HotlineCall,
    JoinEmptyPolicy,
    MenuOption,
    Organisation,
    OrgLevel,
    Queue,
    QueueEvent,
    QueueLogEntry,
    QueueMember,
    QueueStrategy,
    Role,
    User,
)

__all__ = [
    "AgentSkill",
    "AgentState",
    "AgentStatus",
    "Base",
    "CallOutcome",
    "Device",
    "DeviceKind",
    "HotlineCall",
    "JoinEmptyPolicy",
    "MenuOption",
    "OrgLevel",
    "Organisation",
    "Queue",
    "QueueEvent",
    "QueueLogEntry",
    "QueueMember",
    "QueueStrategy",
    "Role",
    "User",
    "make_config",
    "make_engine",
    "session_factory",
    "upgrade",
]
