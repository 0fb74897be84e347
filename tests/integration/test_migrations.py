"""`incman db upgrade` on empty PostgreSQL and SQLite databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import sqlalchemy as sa

from incman.migrations import current_head

PG_ADMIN = os.environ.get("INCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = {"events", "occurrences", "incidents", "event_incidents", "notes", "triggers",
          "notifications", "actions", "audit", "debug_incidents", "alembic_version"}


def _upgrade(url: str, tmp: Path) -> None:
    env = {**os.environ, "INCMAN_DATABASE_URL": url, "INCMAN_DATA_DIR": str(tmp)}
    out = subprocess.run([sys.executable, "-m", "incman.cli", "db", "upgrade"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr


def _check(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        assert TABLES <= names, TABLES - names
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
                == current_head()
        indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("incidents")}
        assert indexes["uq_incidents_open_dedupid"]["unique"]
    finally:
        engine.dispose()


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def test_upgrade_an_empty_postgresql_database(tmp_path: Path) -> None:
    name = f"incman_mig_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
        url += f"/{name}"
        _upgrade(url, tmp_path)
        _upgrade(url, tmp_path)  # a second run changes nothing
        _check(url)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_upgrade_an_empty_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    _upgrade(url, tmp_path)
    _check(url)
