"""Many creation locks at once: one round trip to take them, one to let them go.

The same keys as the one-at-a-time path's redis-py locks (`incman:lock:incident:<id>`), so
the two exclude each other; a batch holds all its keys under one token."""

from __future__ import annotations

import uuid

from incman.store.lua import LuaScript
from incman.store.redisconn import get_redis

# KEYS: the locks; ARGV: the token. Deletes the keys that still hold the token.
_RELEASE = LuaScript(
    """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""
)


def incident_lock(incident_id: str) -> str:
    return f"incman:lock:incident:{incident_id}"


def acquire_many(keys: list[str], ttl: float) -> tuple[str, list[bool]]:
    """Take each lock that is free, for `ttl` seconds; the token and which were taken."""
    token = uuid.uuid4().hex
    pipe = get_redis().pipeline(transaction=False)
    for key in keys:
        pipe.set(key, token, nx=True, px=max(1, int(ttl * 1000)))
    return token, [bool(taken) for taken in pipe.execute()]


def release_many(keys: list[str], token: str) -> int:
    """Let go of the locks still held under `token`; how many were."""
    if not keys:
        return 0
    return int(_RELEASE(get_redis(), keys=keys, args=[token]))
