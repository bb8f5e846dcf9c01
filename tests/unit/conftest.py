"""Fixtures for the database and API unit tests: a migrated SQLite file per test, and the API on top."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from huiyan.bus import EventBus
from huiyan.config.settings import Settings


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the cheapest parameters: the defaults cost ~50 ms per hash, tests hash a lot."""
    from huiyan.db import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(passwords, "_dummy_hash", None)


# HUIYAN_TEST_POSTGRES=<SQLAlchemy URL of a PostgreSQL server's maintenance database> runs every test that
# uses these fixtures on PostgreSQL instead of SQLite: one template database migrated once, and a fresh
# copy of it per test (CREATE DATABASE ... TEMPLATE). tests/integration/test_postgres.py does that against a
# throw-away cluster of its own.
POSTGRES = os.environ.get("HUIYAN_TEST_POSTGRES")


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | str]:
    """One database migrated with `upgrade()`; each test gets a copy (copying is faster than migrating)."""
    from huiyan.db import upgrade

    if POSTGRES:
        name = f"huiyan_tpl_{os.getpid()}"
        _pg_admin(f"DROP DATABASE IF EXISTS {name}")
        _pg_admin(f"CREATE DATABASE {name}")
        upgrade(_pg_url(name))
        yield name
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    path = tmp_path_factory.mktemp("db-template") / "huiyan.db"
    upgrade(f"sqlite:///{path}")
    yield path


_pg_serial = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL only the tests that use a database run: the rest would repeat the SQLite run."""
    if not POSTGRES:
        return
    keep = [i for i in items if "db_url" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.fixture
def db_url(tmp_path: Path, migrated_template: Path | str) -> Iterator[str]:
    if POSTGRES:
        name = f"huiyan_t_{os.getpid()}_{next(_pg_serial)}"
        # FILE_COPY: for a small database a plain copy beats PostgreSQL 15's default WAL-logged one.
        _pg_admin(f"CREATE DATABASE {name} TEMPLATE {migrated_template} STRATEGY FILE_COPY")
        yield _pg_url(name)
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    path = tmp_path / "huiyan.db"
    shutil.copy(migrated_template, path)  # type: ignore[arg-type]
    yield f"sqlite:///{path}"


@pytest.fixture
def db_sessions(db_url: str, fast_hashing: None) -> Iterator[sessionmaker[Session]]:
    from huiyan.db import make_engine, session_factory

    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def db(db_sessions: sessionmaker[Session]) -> Iterator[Session]:
    with db_sessions() as session:
        yield session


@dataclass
class ApiHarness:
    """The API on a fresh database, a user per role, and what the runtime hooks saw."""

    app: FastAPI
    client: TestClient
    bus: EventBus
    sessions: sessionmaker[Session]
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token
    user_ids: dict[str, int] = field(default_factory=dict)  # role -> user id
    directory_changes: int = 0
    health_parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def org(self, code: str = "220000", level: str = "province", parent_id: int | None = None, **kw: Any) -> int:
        body = {"name": f"org {code}", "code": code, "level": level, "parent_id": parent_id, **kw}
        r = self.client.post("/api/organisations", json=body, headers=self.auth("admin"))
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


@pytest.fixture
def api(tmp_path: Path, db_sessions: sessionmaker[Session]) -> Iterator[ApiHarness]:
    from huiyan.api import create_app
    from huiyan.api.access import issue_token
    from huiyan.db import store
    from huiyan.db.models import Role

    settings = Settings(data_dir=tmp_path / "data")
    bus = EventBus()
    holder: dict[str, ApiHarness] = {}

    async def health() -> dict[str, dict[str, Any]]:
        return holder["h"].health_parts

    async def on_directory_change() -> None:
        holder["h"].directory_changes += 1

    app = create_app(
        settings, session_factory=db_sessions, bus=bus, health=health, on_directory_change=on_directory_change
    )
    with TestClient(app) as client:
        h = ApiHarness(app, client, bus, db_sessions, settings)
        h.health_parts = {"asterisk": {"ok": True}, "ami": {"ok": True}, "fastagi": {"ok": True}}
        holder["h"] = h
        key = settings.secret("jwt")
        with db_sessions() as session:
            for role in Role:
                user = store.create_user(
                    session, username=f"{role.value}1", password=f"{role.value}-password", role=role
                )
                h.user_ids[role.value] = user.id
                h.tokens[role.value] = issue_token(user, key=key, ttl_seconds=settings.token_ttl_seconds)
            session.commit()
        yield h
