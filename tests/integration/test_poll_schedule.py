"""Poll scheduling on a real Redis: due claims per cycletime, racing ticks, the poll lock."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from helpers import unique

from incman.settings import Settings
from incman.store.catalog import parse_catalog
from incman.sync.schedule import (
    LAST_KEY,
    RUNS_KEY,
    claim_due,
    cycletime_of,
    lock_ttl,
    pollable_notifications,
    run_exclusive,
)


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_pollable_notifications_and_their_cycletimes() -> None:
    catalog = parse_catalog(
        {
            "triggers": [{"id": "t", "when": {"severity": {"_gte": 3}}}],
            "notifications": [
                {"id": "fast", "integration": "debug", "triggers": ["t"], "cycletime": 10},
                {"id": "default", "integration": "debug", "triggers": ["t"]},
                {"id": "off", "integration": "debug", "triggers": ["t"], "enabled": False},
            ],
        }
    )
    settings = Settings(poll_cycletime=45)
    assert pollable_notifications(catalog, settings) == {"fast": 10, "default": 45}
    assert cycletime_of(None, settings) == 45  # a deleted notification: the default
    assert lock_ttl(10) == 300 and lock_ttl(120) == 600


def test_claims_follow_each_cycletime_with_frozen_time(client: redis.Redis) -> None:
    a, b = unique("a"), unique("b")
    cycles = {a: 10, b: 30}
    t = 1_000_000_000
    seen = []
    for second in range(0, 65, 5):  # a tick every 5 s for 60 s
        seen.append((second, sorted(claim_due(client, cycles, now_ms=t + second * 1000))))
    polled_a = [s for s, ids in seen if a in ids]
    polled_b = [s for s, ids in seen if b in ids]
    assert polled_a == [0, 10, 20, 30, 40, 50, 60]
    assert polled_b == [0, 30, 60]
    # a tick a little early (timer jitter) still finds the notification due
    assert claim_due(client, {a: 10}, now_ms=t + 69_600) == [a]
    assert client.hget(LAST_KEY, a) == str(t + 69_600).encode()


def test_racing_ticks_claim_each_poll_once(redis_url: str) -> None:
    ids = [unique("race") for _ in range(20)]
    cycles = dict.fromkeys(ids, 60)
    barrier = threading.Barrier(8)

    def tick(_: int) -> list[str]:
        c = redis.Redis.from_url(redis_url)
        barrier.wait()
        return claim_due(c, cycles)

    with ThreadPoolExecutor(8) as pool:
        claimed = [nid for part in pool.map(tick, range(8)) for nid in part]
    assert sorted(claimed) == sorted(ids)  # every poll enqueued once, by whichever tick won


def test_a_second_poll_of_the_same_notification_returns_at_once(client: redis.Redis) -> None:
    nid = unique("locked")
    started, release = threading.Event(), threading.Event()

    def slow_poll(notification_id: str) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {"notificationId": notification_id, "polled": 1}

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run_exclusive, client, nid, 60, slow_poll)
        assert started.wait(5)
        t0 = time.monotonic()
        second = run_exclusive(client, nid, 60, slow_poll)
        assert time.monotonic() - t0 < 0.5
        assert second["skipped"] == "a poll of this notification is running"
        release.set()
        assert first.result(5) == {"notificationId": nid, "polled": 1}
    assert run_exclusive(client, nid, 60, lambda n: {"polled": 0}) == {"polled": 0}
    assert int(client.hget(RUNS_KEY, nid) or 0) == 2
