"""Flood control on a real Redis: circuit breaker, Retry-After pause, token bucket under 8
threads, and the guard in HttpClient against a loopback HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from helpers import unique

from incman.integrations.egress import EgressPolicy
from incman.integrations.errors import TransientError
from incman.integrations.http import HttpClient
from incman.store.flood import Deferred, FloodGuard, FloodSettings


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def guard(client: redis.Redis, key: str, **settings: float) -> FloodGuard:
    return FloodGuard(key, FloodSettings(**settings), client=lambda: client)  # type: ignore[arg-type]


def deferred_for(g: FloodGuard, now_ms: int | None = None) -> float | None:
    """Seconds the guard defers a call by, or None when the call may go."""
    try:
        g.before(now_ms)
    except Deferred as exc:
        return exc.retry_after
    return None


def test_breaker_opens_after_consecutive_failures_then_lets_one_probe_through(
    client: redis.Redis,
) -> None:
    g = guard(client, unique("breaker"), breaker_failures=3, breaker_cooldown=1.0)
    t = 1_000_000
    for _ in range(2):
        assert deferred_for(g, t) is None
        g.after("transient", now_ms=t)
    g.after("ok", now_ms=t)  # a success in between: failures are consecutive only
    for _ in range(3):
        assert deferred_for(g, t) is None
        g.after("transient", now_ms=t)
    assert deferred_for(g, t + 400) == pytest.approx(0.6)  # open: wait the cool-down out
    assert deferred_for(g, t + 1000) is None  # the probe
    assert deferred_for(g, t + 1001) is not None  # only one probe at a time
    g.after("transient", now_ms=t + 1002)  # the probe failed: open again
    assert deferred_for(g, t + 1500) == pytest.approx(0.502)
    assert deferred_for(g, t + 2002) is None  # the next probe
    g.after("ok", now_ms=t + 2003)  # it worked: closed
    assert [deferred_for(g, t + 2004) for _ in range(5)] == [None] * 5


def test_breaker_off_with_zero_failures(client: redis.Redis) -> None:
    g = guard(client, unique("nobreaker"), breaker_failures=0)
    for _ in range(20):
        assert deferred_for(g) is None
        g.after("transient")


def test_retry_after_pauses_every_guard_of_the_integration(client: redis.Redis) -> None:
    key = unique("pause")
    first, other = guard(client, key), guard(client, key)  # two workers
    first.after("retry_after", 1.5)
    wait = deferred_for(other)
    assert wait is not None and 1.3 < wait <= 1.5
    first.after("retry_after", 0.2)  # a shorter Retry-After never shortens the pause
    wait = deferred_for(other)
    assert wait is not None and wait > 1.0
    assert deferred_for(guard(client, unique("elsewhere"))) is None  # other remotes go on


def test_token_bucket_with_frozen_time(client: redis.Redis) -> None:
    g = guard(client, unique("bucket"), rate_limit=10.0, burst=2)
    t = 5_000_000
    assert deferred_for(g, t) is None
    assert deferred_for(g, t) is None
    assert deferred_for(g, t) == pytest.approx(0.1)
    assert deferred_for(g, t + 100) is None
    assert deferred_for(g, t + 100) == pytest.approx(0.1)
    assert deferred_for(g, t + 1000) is None  # refilled up to the burst only
    assert deferred_for(g, t + 1000) is None
    assert deferred_for(g, t + 1000) is not None


def test_rate_limit_is_shared_by_eight_concurrent_workers(redis_url: str) -> None:
    key = unique("shared")
    rate, burst, seconds = 40.0, 4, 1.5
    barrier = threading.Barrier(8)

    def worker(_: int) -> int:
        g = guard(redis.Redis.from_url(redis_url), key, rate_limit=rate, burst=burst)
        barrier.wait()
        calls = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            wait = deferred_for(g)
            if wait is None:
                calls += 1
            else:
                time.sleep(min(wait, 0.02))
        return calls

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(worker, range(8)))
    assert rate * seconds * 0.8 <= total <= burst + rate * seconds + 2


class _Remote(BaseHTTPRequestHandler):
    """Answers 429 (Retry-After: 1) to the first `storm` requests, then 200."""

    storm = 0
    seen: list[float] = []

    def do_GET(self) -> None:
        type(self).seen.append(time.monotonic())
        if len(type(self).seen) <= type(self).storm:
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def remote() -> Iterator[str]:
    _Remote.storm, _Remote.seen = 1, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Remote)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/x"
    server.shutdown()
    server.server_close()


def test_http_client_429_pauses_the_other_workers_without_calling(
    client: redis.Redis, remote: str
) -> None:
    key = unique("http")
    loopback = EgressPolicy.from_setting("127.0.0.0/8")  # the test's server is on loopback
    one = HttpClient(timeout=5, guard=guard(client, key), egress=loopback)
    two = HttpClient(timeout=5, guard=guard(client, key), egress=loopback)
    with pytest.raises(TransientError) as first:
        one.request("GET", remote)
    assert not isinstance(first.value, Deferred) and first.value.retry_after == 1.0
    with pytest.raises(Deferred) as held:
        two.request("GET", remote)
    assert held.value.retry_after is not None and 0.5 < held.value.retry_after <= 1.0
    assert len(_Remote.seen) == 1  # the second worker did not call
    time.sleep(held.value.retry_after + 0.05)
    assert two.request("GET", remote).status_code == 200
    assert len(_Remote.seen) == 2


def test_a_quota_the_remote_tells_is_counted_down_by_every_caller(client: redis.Redis) -> None:
    """Four calls left for the next minute: two guards (two workers) take them between them,
    the fifth waits for the window; an answer telling more left does not raise the count
    (calls in flight were counted already), one telling fewer lowers it."""
    key = unique("quota")
    one, two = guard(client, key), guard(client, key)
    one.note_quota(4, 60)
    for g in (one, two, one, two):
        g.before()
    assert deferred_for(one) is not None and 50 < (deferred_for(two) or 0) <= 60
    two.note_quota(9, 60)
    assert deferred_for(one) is not None  # still used up
    client.delete(f"incman:flood:{key}:quota")  # a new window: the remote tells again
    one.note_quota(3, 60)
    two.note_quota(1, 60)
    one.before()
    assert deferred_for(two) is not None
