"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from huiyan.db import Base, make_config, make_engine, upgrade


def _diff(url: str, metadata: MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()


def test_migrated_schema_matches_models(db_url: str) -> None:
    assert _diff(db_url, Base.metadata) == []


def test_parity_check_does_notice_a_drift(db_url: str) -> None:
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    sa.Table("devices", drifted, sa.Column("firmware", sa.String(32)), extend_existing=True)
    diff = _diff(db_url, drifted)
    assert [d[0] for d in diff if isinstance(d, tuple)] == ["add_column"]


def test_upgrade_is_idempotent_and_downgrade_reverses_it(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    upgrade(url)  # already at head: nothing to do
    command.downgrade(make_config(url), "base")
    engine = make_engine(url)
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()
    upgrade(url)
    assert _diff(url, Base.metadata) == []


def test_config_keeps_urls_with_percent_signs_intact() -> None:
    url = "postgresql+psycopg://huiyan:p%40ss%25word@db.example/huiyan"
    assert make_config(url).attributes["url"] == url


def test_foreign_keys_are_enforced(db) -> None:
    # (SQLite only with the pragma huiyan.db.engine sets; PostgreSQL always: HUIYAN_TEST_POSTGRES runs this there)
    from sqlalchemy.exc import IntegrityError

    db.execute(sa.text("INSERT INTO organisations (name, name_en, code, level, created_at) "
                       "VALUES ('x', '', 'x', 'city', '2024-01-01 00:00:00')"))
    try:
        db.execute(sa.text("INSERT INTO devices (serial, model, kind, organisation_id, extension, sip_password, "
                           "display_name, active, created_at) VALUES "
                           "('s', '', 'terminal', 999, '80001', 'p', '', true, '2024-01-01 00:00:00')"))
    except IntegrityError:
        return
    raise AssertionError("a device pointing at no organisation was accepted")


def test_upgrade_creates_the_sqlite_directory(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'data' / 'huiyan.db'}"
    upgrade(url)
    assert _diff(url, Base.metadata) == []


def test_migrations_run_on_a_connection_handed_over() -> None:
    engine = make_engine("sqlite://")  # in memory: only this connection ever sees the schema
    with engine.begin() as conn:
        cfg = make_config("sqlite://")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()
