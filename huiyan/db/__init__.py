"""The directory's database: organisations, users and devices, and the SIP endpoints derived from them.

Sync SQLAlchemy on purpose: the API serves these tables from plain `def` routes, which FastAPI runs in
its threadpool, so a query never blocks the event loop. Async code elsewhere (AGI, the distributor)
reaches the database through `asyncio.to_thread` / `run_in_threadpool`, never directly. Any SQLAlchemy
URL works; SQLite (in the data directory) is the default, PostgreSQL is the production choice.
"""

from huiyan.db.engine import make_engine, session_factory
from huiyan.db.migrate import make_config, upgrade
from huiyan.db.models import Base, Device, DeviceKind, Organisation, OrgLevel, Role, User

__all__ = [
    "Base",
    "Device",
    "DeviceKind",
    "OrgLevel",
    "Organisation",
    "Role",
    "User",
    "make_config",
    "make_engine",
    "session_factory",
    "upgrade",
]
