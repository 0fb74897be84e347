"""When each notification's incidents are polled: due polls claimed in Redis on every tick.

The beat's short tick claims, in Redis, the polls now due per notification and its cycletime;
a lock keeps one poll per notification.

Why a claim in Redis rather than a lock around the beat or a Redis-backed scheduler: the
claim ("last polled" per notification, compared and set in one Lua script) makes the tick
itself idempotent. Two beat replicas, both active by mistake or during a hand-over, or a tick
delivered twice, still enqueue one poll per notification per cycle, with no lock to expire at
the wrong moment, no extra dependency, and beat_schedule.py stays a static list of entries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import redis

from incman.integrations.base import STATUS
from incman.integrations.errors import ConfigurationError
from incman.integrations.registry import integration_class
from incman.settings import Settings
from incman.store.catalog import Catalog, NotificationDef
from incman.store.lua import LuaScript

log = logging.getLogger(__name__)

LAST_KEY = "incman:poll:last"  # hash: notification id → ms of the last claimed poll
RUNS_KEY = "incman:poll:runs"  # hash: notification id → polls started
LOCK_PREFIX = "incman:poll:lock:"
EARLY_MS = 500  # a tick that fires a little early still finds its notification due

# KEYS: the last-polled hash. ARGV: now ms ("" = the Redis clock), early ms, then pairs of
# notification id and cycletime ms. Returns the ids claimed now.
_CLAIM = LuaScript("""
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local early = tonumber(ARGV[2])
local claimed = {}
for i = 3, #ARGV, 2 do
  local last = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not last or now - last >= tonumber(ARGV[i + 1]) - early then
    redis.call('HSET', KEYS[1], ARGV[i], now)
    claimed[#claimed + 1] = ARGV[i]
  end
end
return claimed
""")


def cycletime_of(notif: NotificationDef | None, settings: Settings) -> int:
    """The notification's own cycletime, else INCMAN_POLL_CYCLETIME."""
    if notif is not None and notif.cycletime:
        return notif.cycletime
    return settings.poll_cycletime


def _reads_status(notif: NotificationDef) -> bool:
    try:
        return STATUS in integration_class(notif.integration).capabilities
    except ConfigurationError:
        return False


def pollable_notifications(catalog: Catalog, settings: Settings) -> dict[str, int]:
    """Enabled notifications whose integration can read status → their cycletime (s)."""
    return {
        notif.id: cycletime_of(notif, settings)
        for notif in catalog.notifications.values()
        if notif.enabled and _reads_status(notif)
    }


def claim_due(r: redis.Redis, cycles: Mapping[str, float], now_ms: int | None = None) -> list[str]:
    """The notifications due now, each marked polled at `now` in the same atomic step."""
    if not cycles:
        return []
    args: list[Any] = ["" if now_ms is None else str(now_ms), EARLY_MS]
    for notification_id, seconds in sorted(cycles.items()):
        args += [notification_id, int(seconds * 1000)]
    claimed = _CLAIM(r, keys=[LAST_KEY], args=args)
    return [c.decode() if isinstance(c, bytes) else str(c) for c in claimed]


def due_polls(
    r: redis.Redis, catalog: Catalog, settings: Settings, now_ms: int | None = None
) -> list[tuple[str, int]]:
    """(notification id, cycletime) of each poll to enqueue now."""
    cycles = pollable_notifications(catalog, settings)
    return [(nid, cycles[nid]) for nid in claim_due(r, cycles, now_ms)]


def lock_ttl(cycletime: int) -> int:
    """How long a poll may hold its notification's lock (a crashed poll frees it then)."""
    return max(300, 5 * cycletime)


def run_exclusive(
    r: redis.Redis, notification_id: str, ttl: int, poll: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """Run `poll(notification_id)` unless a poll of that notification is running; a second
    one returns at once."""
    lock = r.lock(LOCK_PREFIX + notification_id, timeout=ttl)
    if not lock.acquire(blocking=False):
        return {
            "notificationId": notification_id,
            "skipped": "a poll of this notification is running",
        }
    try:
        r.hincrby(RUNS_KEY, notification_id, 1)
        return poll(notification_id)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning(
                "the poll lock of %s expired before the poll ended (ttl %ss)", notification_id, ttl
            )
