"""PostgreSQL, for real: every unit test that uses a database runs again on a throw-away PostgreSQL cluster.

SQLite is the default and what the rest of the suite uses; a province runs PostgreSQL. This starts a cluster
of its own (initdb into a temporary directory, a Unix socket, no TCP, fsync off), then runs `tests/unit` in a
child pytest with HUIYAN_TEST_POSTGRES pointing at it: tests/unit/conftest.py then migrates one template
database with Alembic and gives each test a fresh copy, and leaves out the tests that use no database.
What this catches that SQLite does not: column types and lengths enforced, booleans that are not integers,
time zones on timestamps, constraint names, transactional DDL in the migrations, SQL that only SQLite accepts.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed: {r.stderr or r.stdout}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    bindir = _pg_bin()
    assert bindir is not None, "PostgreSQL's server is not installed: `./quickstart.sh test` installs it (apt)"
    # Not under pytest's temporary directory: that is private to root, and the server may run as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="huiyan-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    # initdb refuses to run as root: as root, the cluster belongs to the `postgres` user Debian's package made.
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    _run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
    port = "55432"
    opts = f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"),
          "-w", "-t", "60", "start"])
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(1800)
def test_the_database_unit_tests_pass_on_postgresql(postgres: str) -> None:
    env = {**os.environ, "HUIYAN_TEST_POSTGRES": postgres}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    tail = r.stdout[-6000:]
    assert r.returncode == 0, f"unit tests on PostgreSQL failed:\n{tail}\n{r.stderr[-2000:]}"
    summary = re.search(r"(\d+) passed.*?(\d+) deselected", tail)
    assert summary, tail
    passed = int(summary.group(1))
    # Most of the suite's database tests (582 when this was written): a conftest that silently fell back to
    # SQLite, or deselected everything, would not get here.
    assert passed >= 500, tail
    print(f"\n{passed} database unit tests passed on PostgreSQL")
