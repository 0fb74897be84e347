"""A Redis database of its own for a test session or a bench run, on a shared Redis.

The first empty database (of 1..15) is claimed with an owner key written with SET NX, so two
sessions never take the same one; a database holding anything else is someone else's and is
left alone. The claim names the owner's process: a claim left by a process that has died is
taken over (its database flushed). At the end the database is flushed and released."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

OWNER_KEY = "incman:test:owner"
DATABASES = range(1, 16)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _abandoned(owner: bytes | str | None) -> bool:
    """The claim was made on this host by a process that no longer runs."""
    if owner is None:
        return False
    text = owner.decode(errors="replace") if isinstance(owner, bytes) else owner
    host, _, rest = text.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim(client: redis.Redis, me: str) -> bool:
    if client.dbsize() == 0:
        return bool(client.set(OWNER_KEY, me, nx=True)) and client.get(OWNER_KEY) == me.encode()
    if _abandoned(client.get(OWNER_KEY)):
        client.flushdb()
        return bool(client.set(OWNER_KEY, me, nx=True))
    return False


@contextmanager
def private_redis_db(base_url: str, database: int | None = None) -> Iterator[str]:
    """The URL of a Redis database claimed for the caller (`database`: that one, which must
    be free); flushed and released on exit."""
    me = _owner()
    candidates = [database] if database is not None else list(DATABASES)
    for db in candidates:
        url = f"{base_url.rstrip('/')}/{db}"
        client = redis.Redis.from_url(url)
        if _claim(client, me):
            break
        client.close()
    else:
        raise RuntimeError(
            f"no free Redis database at {base_url} (tried {candidates}): each "
            "holds data of another user or test session"
        )
    try:
        yield url
    finally:
        if client.get(OWNER_KEY) == me.encode():
            client.flushdb()
        client.close()


def still_owned(url: str) -> bool:
    """False when someone flushed the database since it was claimed (a foreign user)."""
    return bool(redis.Redis.from_url(url).exists(OWNER_KEY))
