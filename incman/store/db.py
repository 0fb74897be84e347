"""Database engine and sessions: one engine per process, disposed after a fork."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from incman.settings import get_settings

_engine: Engine | None = None
_engine_pid: int | None = None
_sessionmaker: sessionmaker[Session] | None = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def relax_this_commit(session: Session) -> None:
    """Let the current transaction commit without waiting for its WAL flush (PostgreSQL's
    `SET LOCAL synchronous_commit TO off`; SQLite is left as it is).

    Only for writes whose loss in a crash of the database server is harmless: nothing may be
    answered, acknowledged or sent to a remote on the strength of such a commit. Every other
    commit waits for the flush (the server default). Any later durable commit flushes the
    relaxed ones before it too, since the WAL is written in order."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO off"))


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (it costs a round trip per checkout): a connection broken by a database
    # restart fails one transaction, which the API answers 503 (nothing accepted) and a
    # worker retries; connections are recycled before server-side idle limits.
    return create_engine(url, pool_size=20, max_overflow=40, pool_recycle=1800)


def get_engine() -> Engine:
    """The process's engine; a forked child gets a fresh one (never share sockets)."""
    global _engine, _engine_pid, _sessionmaker
    if _engine is None or _engine_pid != os.getpid():
        if _engine is not None:
            _engine.dispose(close=False)
        _engine = make_engine(get_settings().effective_database_url())
        _engine_pid = os.getpid()
        _sessionmaker = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def reset_engine() -> None:
    """Drop the process's engine (after settings change)."""
    global _engine, _sessionmaker, _engine_pid
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _sessionmaker = None
    _engine_pid = None


def new_session() -> Session:
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_sqlite() -> bool:
    return get_engine().dialect.name == "sqlite"
