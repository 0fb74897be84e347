"""`incman db upgrade` on empty PostgreSQL and SQLite databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from incman.store.migrations import current_head
from incman.testing.pg import fresh_database

PG_ADMIN = os.environ.get("INCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = {
    "events",
    "occurrences",
    "incidents",
    "event_incidents",
    "notes",
    "triggers",
    "notifications",
    "actions",
    "audit",
    "debug_incidents",
    "plugin_tickets",
    "alembic_version",
}


def _upgrade(url: str, tmp: Path) -> None:
    env = {**os.environ, "INCMAN_DATABASE_URL": url, "INCMAN_DATA_DIR": str(tmp)}
    out = subprocess.run(
        [sys.executable, "-m", "incman.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def _check(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        assert names >= TABLES, TABLES - names
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                == current_head()
            )
        indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("incidents")}
        assert indexes["uq_incidents_open_dedupid"]["unique"]
    finally:
        engine.dispose()


def test_upgrade_an_empty_postgresql_database(tmp_path: Path) -> None:
    with fresh_database(PG_ADMIN, prefix="incman_mig", migrate=False) as url:
        _upgrade(url, tmp_path)
        _upgrade(url, tmp_path)  # a second run changes nothing
        _check(url)


def test_upgrade_an_empty_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _upgrade(url, tmp_path)
    _check(url)
