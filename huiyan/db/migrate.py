"""Schema migrations: Alembic, configured in code (no alembic.ini), scripts in `huiyan/db/migrations/`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_config(db_url: str) -> Config:
    """An Alembic config for `db_url`; also usable for new revisions:
    `alembic.command.revision(make_config(url), message="...", autogenerate=True)`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: ConfigParser would choke on a '%' in a password.
    cfg.attributes["url"] = db_url
    return cfg


def upgrade(db_url: str, revision: str = "head") -> None:
    """`alembic upgrade head` on `db_url`; for a SQLite file, its directory is created first."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(make_config(db_url), revision)
