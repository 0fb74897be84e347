"""Throw-away PostgreSQL databases for tests and benchmarks: created, migrated, dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2


def admin_sql(admin_url: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@contextmanager
def fresh_database(
    admin_url: str, prefix: str = "incman_test", migrate: bool = True
) -> Iterator[str]:
    """A new database (migrated to head unless told not to), as a SQLAlchemy URL; dropped
    afterwards. `admin_url` is a libpq URL of a role allowed to create databases."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_sql(admin_url, f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    url = f"{base}/{name}"
    try:
        if migrate:
            from incman.store.migrations import upgrade

            upgrade(url)
        yield url
    finally:
        admin_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
