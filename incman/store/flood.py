"""Outbound flood control per remote, shared by every worker through Redis.

A token bucket, a pause after a 429/503 with Retry-After, and a circuit breaker whose cooldown
ends with one probe call that decides (settings: docs/integrations.md, "Every integration").

It guards the one choke point of remote calls, HttpClient.request. It never waits: a call it
holds back raises Deferred (a TransientError with `retry_after`), so the action goes back to
its queue with that countdown and nothing is dropped. A deferral uses up none of the task's
retries; instead the time an action may keep being deferred is bounded (INCMAN_ACTION_MAX_WAIT,
then the dead letter: incman.actions.run.defer). Times come from the Redis server's clock, the
one clock all workers share. If Redis cannot be reached the guard lets calls through:
flood control is a protection, not a condition of delivery."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from incman.integrations.config import IntegrationConfig
from incman.integrations.errors import Deferred
from incman.store.lua import LuaScript

log = logging.getLogger(__name__)

PREFIX = "incman:flood:"
OK, TRANSIENT, RETRY_AFTER = "ok", "transient", "retry_after"
FAILURE_MEMORY_MS = 600_000  # consecutive failures further apart than this are forgotten
_URL_KEYS = ("url", "api_url", "base_url", "endpoint")

_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
# KEYS: pause, breaker hash, probe, bucket hash, quota. ARGV: now ms, rate/s (0 = none),
# burst, probe ttl ms. Returns {reason, wait ms}: 0 go, 1 paused, 2 breaker open, 3 probe in
# flight, 4 rate limited, 5 the remote's request quota used up.
_BEFORE = LuaScript(
    _NOW
    + """
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then return {1, pause} end
local quota = tonumber(redis.call('GET', KEYS[5]))
if quota then
  if quota <= 0 then return {5, math.max(1, redis.call('PTTL', KEYS[5]))} end
  redis.call('DECR', KEYS[5])
end
local probe = false
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until'))
if open_until then
  if now < open_until then return {2, open_until - now} end
  if not redis.call('SET', KEYS[3], now, 'NX', 'PX', tonumber(ARGV[4])) then
    return {3, math.max(1, redis.call('PTTL', KEYS[3]))}
  end
  probe = true
end
local rate = tonumber(ARGV[2])
if rate > 0 then
  local burst = tonumber(ARGV[3])
  local b = redis.call('HMGET', KEYS[4], 'tokens', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
    ts = now
  end
  if tokens < 1 then
    if probe then redis.call('DEL', KEYS[3]) end
    return {4, math.ceil((1 - tokens) * 1000 / rate)}
  end
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'ts', tostring(ts))
  redis.call('PEXPIRE', KEYS[4], math.ceil(burst * 1000 / rate) + 1000)
end
return {0, 0}
"""
)
# KEYS: breaker hash, probe. ARGV: now ms, threshold, cooldown ms, memory ms. Returns 1 when
# it opened.
_FAILED = LuaScript(
    _NOW
    + """
local was_open = redis.call('HEXISTS', KEYS[1], 'open_until') == 1
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[2])
if was_open or (threshold > 0 and failures >= threshold) then
  local cooldown = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'open_until', now + cooldown, 'failures', 0)
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], cooldown * 2 + tonumber(ARGV[4]))
  return 1
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 0
"""
)
# KEYS: breaker hash, probe. The remote answered: close the breaker.
_SUCCEEDED = LuaScript("""
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return 0
""")
# KEYS: pause, probe. ARGV: pause ms. A pause is only ever lengthened.
_PAUSE = LuaScript("""
redis.call('DEL', KEYS[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
end
return 0
""")
# KEYS: quota. ARGV: requests left, ms until they renew. The count only ever goes down
# within a window (calls in flight were counted already); it expires when the window ends.
_QUOTA = LuaScript("""
local ms = tonumber(ARGV[2])
if ms <= 0 then return 0 end
local left = tonumber(ARGV[1])
local known = tonumber(redis.call('GET', KEYS[1]))
if not known or left < known then redis.call('SET', KEYS[1], left, 'PX', ms) end
return 0
""")
_REASONS = {
    1: "paused by the remote's Retry-After",
    2: "circuit breaker open",
    3: "circuit breaker probing",
    4: "rate limit",
    5: "the remote's request quota is used up",
}


@dataclass(frozen=True)
class FloodSettings:
    rate_limit: float = 0.0  # requests per second; 0 = no limit
    burst: int = 1
    breaker_failures: int = 5  # 0 = no breaker
    breaker_cooldown: float = 30.0
    probe_ttl: float = 35.0  # the probe's slot is freed after this if its worker dies


def flood_settings(cfg: IntegrationConfig) -> FloodSettings:
    """The flood settings of a notification's integration config (declared and checked once,
    in incman.integrations.config)."""
    return FloodSettings(
        rate_limit=cfg.rate_limit,
        burst=cfg.rate_burst or max(1, math.ceil(cfg.rate_limit)),
        breaker_failures=cfg.breaker_failures,
        breaker_cooldown=cfg.breaker_cooldown,
        probe_ttl=cfg.timeout + 5.0,
    )


def guard_key(integration: str, config: Mapping[str, Any] | IntegrationConfig) -> str:
    """What a guard protects: the integration at its remote host (two notifications of one
    integration on the same host share it; another host has its own)."""
    for name in _URL_KEYS:
        value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
        if isinstance(value, str) and (host := urlsplit(value).netloc):
            return f"{integration}@{host}"
    return integration


class FloodGuard:
    """`before()` ahead of every remote call, `after(outcome)` once it answered or failed."""

    def __init__(
        self, key: str, settings: FloodSettings, client: Callable[[], redis.Redis] | None = None
    ) -> None:
        self.key = key
        self.settings = settings
        self._client = client
        base = PREFIX + key
        self.pause_key, self.breaker_key = base + ":pause", base + ":breaker"
        self.probe_key, self.bucket_key = base + ":probe", base + ":bucket"
        self.quota_key = base + ":quota"

    def _redis(self) -> redis.Redis:
        if self._client is not None:
            return self._client()
        from incman.store.redisconn import get_redis

        return get_redis()

    def before(self, now_ms: int | None = None) -> None:
        """Raise Deferred when the call must wait; otherwise take a token and return."""
        s = self.settings
        try:
            reason, wait_ms = _BEFORE(
                self._redis(),
                keys=[
                    self.pause_key,
                    self.breaker_key,
                    self.probe_key,
                    self.bucket_key,
                    self.quota_key,
                ],
                args=[_arg(now_ms), repr(s.rate_limit), s.burst, int(s.probe_ttl * 1000)],
            )
        except redis.RedisError as exc:
            _redis_unavailable(exc)
            return
        if reason:
            wait = int(wait_ms) / 1000
            raise Deferred(
                f"{self.key}: {_REASONS[int(reason)]}; next call in {wait:.2f}s", retry_after=wait
            )

    def note_quota(self, remaining: int, seconds: float) -> None:
        """The remote says `remaining` requests are left for `seconds`: every worker's calls
        count down from it (one per call) and wait once it reaches 0."""
        try:
            _QUOTA(self._redis(), keys=[self.quota_key], args=[remaining, int(seconds * 1000)])
        except redis.RedisError as exc:
            _redis_unavailable(exc)

    def after(
        self, outcome: str, retry_after: float | None = None, now_ms: int | None = None
    ) -> None:
        """Record how the call went: `ok` (the remote answered, even with a 4xx),
        `transient` (timeout, connection error, 5xx) or `retry_after` (429/503 with
        Retry-After: pause every worker's calls for that long)."""
        try:
            client = self._redis()
            if outcome == RETRY_AFTER and retry_after is not None:
                ms = max(1, int(retry_after * 1000))
                _PAUSE(client, keys=[self.pause_key, self.probe_key], args=[ms])
                log.warning(
                    "%s: remote asked to wait %.1fs: every worker pauses", self.key, retry_after
                )
            elif outcome in (TRANSIENT, RETRY_AFTER):
                opened = _FAILED(
                    client,
                    keys=[self.breaker_key, self.probe_key],
                    args=[
                        _arg(now_ms),
                        self.settings.breaker_failures,
                        int(self.settings.breaker_cooldown * 1000),
                        FAILURE_MEMORY_MS,
                    ],
                )
                if opened:
                    log.warning(
                        "%s: circuit breaker open for %.1fs",
                        self.key,
                        self.settings.breaker_cooldown,
                    )
            else:
                _SUCCEEDED(client, keys=[self.breaker_key, self.probe_key])
        except redis.RedisError as exc:
            _redis_unavailable(exc)


def _arg(now_ms: int | None) -> str:
    return "" if now_ms is None else str(now_ms)


_last_warning = 0.0


def _redis_unavailable(exc: Exception) -> None:
    global _last_warning
    if time.monotonic() - _last_warning > 60:
        _last_warning = time.monotonic()
        log.warning("flood control is off while Redis cannot be reached: %s", exc)


def flood_guard(integration: str, cfg: IntegrationConfig) -> FloodGuard:
    """The guard of one plugin instance (its settings read from the notification config)."""
    return FloodGuard(guard_key(integration, cfg), flood_settings(cfg))
