"""Many rows in one statement on the hot paths (ingest, batched actions).

On PostgreSQL a fixed SQL text is sent with psycopg2's `execute_values` (no statement to
compile per batch, one round trip per `PAGE` rows); SQLite, in process, takes SQLAlchemy's
executemany. Both run in the caller's session and transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
from psycopg2.extras import execute_values
from sqlalchemy import Table, bindparam, insert, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from incman.store.models import Base, Event

PAGE = 1000  # rows per statement
_OPEN = "status IN ('New', 'Acknowledged', 'Suppressed')"
_EVENT_COLUMNS = (
    "id",
    "dedupid",
    "device",
    "component",
    "event_class",
    "event_key",
    "event_class_key",
    "severity",
    "summary",
    "message",
    "status",
    "count",
    "first_time",
    "last_time",
    "agent",
    "source",
    "details",
    "updated_at",
)
_FOLDED = ("last_time", "summary", "message", "details", "updated_at")
_RETURNED = ("dedupid", "id", "count", "status", "first_time")
_UPSERT_PG = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES %s "
    f"ON CONFLICT (dedupid) WHERE {_OPEN} DO UPDATE SET count = events.count + EXCLUDED.count, "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _FOLDED)
    + f" RETURNING {', '.join(_RETURNED)}"
)
_JSON_COLUMNS = {"details", "payload", "fields", "notes"}


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _cursor(session: Session) -> Any:
    """The DBAPI cursor of the session's connection, inside its transaction."""
    return session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _values(row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    values = [row[c] for c in columns]
    for n, c in enumerate(columns):
        if c in _JSON_COLUMNS and values[n] is not None:
            values[n] = orjson.dumps(values[n], option=orjson.OPT_NON_STR_KEYS).decode()
    return tuple(values)


def upsert_events(session: Session, rows: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Insert events, each folding into the open event with its dedupid (`count` grows by
    the row's count); dedupid → (id, count, status, first_time) of each stored event. The
    rows' dedupids must be distinct (fold repeats first)."""
    stored: dict[str, tuple[Any, ...]] = {}
    if not rows:
        return stored
    if _is_postgres(session):
        with _cursor(session) as cur:
            for start in range(0, len(rows), PAGE):
                page = [_values(r, _EVENT_COLUMNS) for r in rows[start : start + PAGE]]
                for dedupid, *rest in execute_values(
                    cur, _UPSERT_PG, page, page_size=len(page), fetch=True
                ):
                    stored[dedupid] = tuple(rest)
        return stored
    table = cast(Table, Event.__table__)
    base = sqlite.insert(table)
    stmt = base.on_conflict_do_update(
        index_elements=[table.c.dedupid],
        index_where=text(_OPEN),
        set_={"count": table.c.count + base.excluded.count}
        | {c: base.excluded[c] for c in _FOLDED},
    ).returning(*(table.c[c] for c in _RETURNED))
    for row in rows:  # SQLite is in process: a statement per row costs no round trip
        dedupid, *rest = session.execute(stmt, row).one()
        stored[dedupid] = tuple(rest)
    return stored


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert rows of `model` that all have the same keys."""
    table = cast(Table, model.__table__)
    if not rows:
        return
    if not _is_postgres(session):
        session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES %s"
    with _cursor(session) as cur:
        execute_values(cur, sql, [_values(r, columns) for r in rows], page_size=PAGE)


def insert_returning_ids(
    session: Session, model: type[Base], rows: list[dict[str, Any]]
) -> list[int]:
    """Insert rows of `model` (same keys; a serial `id`); their ids in the rows' order."""
    table = cast(Table, model.__table__)
    if not rows:
        return []
    if not _is_postgres(session):
        result = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars())
    columns = list(rows[0])
    # A multi-row INSERT returns its rows in no promised order, but an INSERT ... SELECT
    # ordered by the row's ordinal draws the serial ids in that order: sorted, they are the
    # rows' ids in order. The VALUES are typed (a NULL in the first row would make a column
    # text).
    dialect = session.get_bind().dialect
    casts = ", ".join(f"%s::{table.c[c].type.compile(dialect=dialect)}" for c in columns)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"SELECT {', '.join(columns)} FROM (VALUES %s) AS v(n, {', '.join(columns)}) "
        "ORDER BY n RETURNING id"
    )
    ids: list[int] = []
    with _cursor(session) as cur:
        for start in range(0, len(rows), PAGE):
            page = [(n, *_values(r, columns)) for n, r in enumerate(rows[start : start + PAGE])]
            answer = execute_values(
                cur, sql, page, template=f"(%s, {casts})", page_size=len(page), fetch=True
            )
            ids += sorted(i for (i,) in answer)
    return ids


def update_rows(session: Session, model: type[Base], key: str, rows: list[dict[str, Any]]) -> None:
    """Update rows of `model` found by their `key` column, each with its own values (the rows
    share their keys)."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    columns = [c for c in rows[0] if c != key]
    if not _is_postgres(session):
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({c: bindparam(f"_{c}") for c in columns})
        )
        session.execute(
            stmt, [{f"_{c}": v for c, v in row.items()} | {"_key": row[key]} for row in rows]
        )
        return
    dialect = session.get_bind().dialect
    names = [key, *columns]
    casts = ", ".join(f"%s::{table.c[c].type.compile(dialect=dialect)}" for c in names)
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    sql = (
        f"UPDATE {table.name} AS t SET {sets} FROM (VALUES %s) AS v({', '.join(names)}) "
        f"WHERE t.{key} = v.{key}"
    )
    with _cursor(session) as cur:
        execute_values(
            cur, sql, [_values(r, names) for r in rows], template=f"({casts})", page_size=PAGE
        )
