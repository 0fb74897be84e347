"""Creation locks: one creator per incident at a time, across workers.

A lock's value names its holder's run (incman.store.liveness) and the holding, so a lock left
by a run that ended or a killed worker is taken over at once, instead of blocking the incident
until the lock's own TTL runs out. Many locks can be taken
in one round trip (a batch) and released in another; only the holding that took a lock
releases it."""

from __future__ import annotations

import time
import uuid

from incman.store.liveness import current_token, dead
from incman.store.lua import LuaScript
from incman.store.redisconn import get_redis

# KEYS: the locks; ARGV: the holding. Deletes the keys that still hold it.
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
# KEYS: the lock; ARGV: the dead holding, the new one, the TTL in ms. Takes it over.
_TAKE_OVER = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
)


def incident_lock(incident_id: str) -> str:
    return f"incman:lock:incident:{incident_id}"


def new_holding() -> str:
    """A lock value: the run's liveness token and a part of its own."""
    return f"{current_token()}|{uuid.uuid4().hex[:12]}"


def _holder_process(value: bytes | str | None) -> str:
    text = value.decode() if isinstance(value, bytes) else (value or "")
    return text.rsplit("|", 1)[0] if "|" in text else ""


def acquire_many(keys: list[str], ttl: float) -> tuple[str, list[bool]]:
    """Take each lock that is free, for `ttl` seconds; the holding and which were taken."""
    holding = new_holding()
    pipe = get_redis().pipeline(transaction=False)
    for key in keys:
        pipe.set(key, holding, nx=True, px=max(1, int(ttl * 1000)))
    return holding, [bool(taken) for taken in pipe.execute()]


def acquire(key: str, ttl: float, wait: float) -> str | None:
    """Take the lock for `ttl` seconds, waiting up to `wait` seconds for it, taking it over
    from a holder whose process is gone; the holding, or None."""
    r = get_redis()
    holding = new_holding()
    ms = max(1, int(ttl * 1000))
    deadline = time.monotonic() + wait
    while True:
        if r.set(key, holding, nx=True, px=ms):
            return holding
        held = r.get(key)
        holder = _holder_process(held)
        if held is not None and holder and dead({holder}):
            if _TAKE_OVER(r, keys=[key], args=[held, holding, ms]):
                return holding
            continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def release_many(keys: list[str], holding: str) -> int:
    """Let go of the locks still held by `holding`; how many were."""
    if not keys:
        return 0
    return int(_RELEASE(get_redis(), keys=keys, args=[holding]))
