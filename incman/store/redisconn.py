"""The Redis client for locks, counters and rate limits (one per process)."""

from __future__ import annotations

import os

import redis

from incman.settings import get_settings

_client: redis.Redis | None = None
_pid: int | None = None


def get_redis() -> redis.Redis:
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client = redis.Redis.from_url(
            get_settings().effective_redis_url(), socket_timeout=10, socket_connect_timeout=5
        )
        _pid = os.getpid()
    return _client


def reset_redis() -> None:
    global _client, _pid
    _client = None
    _pid = None
