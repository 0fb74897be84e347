"""A per-key request rate limit of the ingest endpoints: a fixed window counted in Redis.

`INCMAN_API_RATE_LIMIT` is `N` (requests per second per key) or `N/S` (N per S seconds);
empty or 0 turns it off (the default). Over the limit the API answers 429 with
`Retry-After`. When Redis cannot be reached the request is let through: a slow Redis must
never cost an event."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from incman.api.auth import presented_key
from incman.settings import get_settings

log = logging.getLogger(__name__)

ENV_NAME = "INCMAN_API_RATE_LIMIT"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `seconds`, per key."""

    requests: int
    seconds: int = 1


def parse_rate_limit(raw: str) -> RateLimit | None:
    """`N` or `N/S`; None when off. A malformed value is a configuration error."""
    text = raw.strip()
    if not text or text == "0":
        return None
    count, _, window = text.partition("/")
    try:
        limit = RateLimit(int(count), int(window) if window else 1)
    except ValueError as exc:
        raise ValueError(f"{ENV_NAME} must be N or N/SECONDS, got {raw!r}") from exc
    if limit.requests < 0 or limit.seconds < 1:
        raise ValueError(f"{ENV_NAME} must be N or N/SECONDS with N >= 0, SECONDS >= 1")
    return limit if limit.requests > 0 else None


def window_of(now: float, limit: RateLimit) -> tuple[int, int]:
    """The window `now` falls in and the whole seconds until the next one starts."""
    index = int(now // limit.seconds)
    retry_after = max(1, math.ceil((index + 1) * limit.seconds - now))
    return index, retry_after


def caller_identity(request: Request, key: str | None = None) -> str:
    """Who is counted: a hash of the key presented, or the client address without one."""
    key = key or presented_key(request)
    if key:
        return "k:" + hashlib.sha256(key.encode()).hexdigest()[:24]
    host = request.client.host if request.client else "unknown"
    return "a:" + host


def check_rate(identity: str, now: float | None = None) -> None:
    """Count one request of `identity`; 429 with Retry-After past the limit."""
    limit = parse_rate_limit(get_settings().api_rate_limit)
    if limit is None:
        return
    index, retry_after = window_of(time.time() if now is None else now, limit)
    name = f"incman:ratelimit:api:{identity}:{index}"
    import redis

    from incman.store.redisconn import get_redis

    try:
        pipe = get_redis().pipeline()
        pipe.incr(name)
        pipe.expire(name, limit.seconds + 1)
        count = int(pipe.execute()[0])
    except (redis.RedisError, OSError) as exc:  # let the request through, say so in the log
        log.warning("rate limit not checked (Redis: %s)", exc.__class__.__name__)
        return
    if count > limit.requests:
        raise HTTPException(
            429,
            f"rate limit of {limit.requests} requests per {limit.seconds}s for this key "
            f"exceeded; retry after {retry_after}s",
            headers={"Retry-After": str(retry_after)},
        )


async def limit_rate(request: Request) -> None:
    """A dependency: count requests that send or change something (not reads); with no
    limit set it costs nothing, else the count runs off the event loop."""
    if request.method not in _SAFE_METHODS and get_settings().api_rate_limit:
        await run_in_threadpool(check_rate, caller_identity(request))
