"""The suppression window's Lua script on a real Redis: the same answers as the reference
model, and exact counts under 8 concurrent workers."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import redis
from helpers import unique

from incman.actions.suppression import admit_creation, window_keys
from incman.domain.suppression import SuppressionRule, WindowState, admit
from incman.store.metrics import SUPPRESSED_KEY


def test_lua_window_answers_like_the_reference_model(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    rng = random.Random(7)
    for rule in (
        SuppressionRule(3, 10),
        SuppressionRule(1, 5),
        SuppressionRule(0, 5),
        SuppressionRule(5, 2),
    ):
        notification = unique("model")
        state = WindowState()
        now_ms = 1_000_000
        for _ in range(300):
            now_ms += rng.choice((0, 1, 50, 400, 1500, 4000, 12000))
            member = f"ev{rng.randrange(40)}"
            expected, state = admit(state, member, now_ms / 1000, rule)
            got = admit_creation(r, notification, "db01|disk|5", member, rule, now_ms=now_ms)
            assert got == expected, (rule, now_ms, member)


def test_eight_concurrent_workers_count_exactly(redis_url: str) -> None:
    notification = unique("flood")
    rule = SuppressionRule(threshold_num=50, threshold_secs=60)
    members = [f"event-{n}" for n in range(320)]
    barrier = threading.Barrier(8)

    def worker(chunk: list[str]) -> list[tuple[bool, bool]]:
        client = redis.Redis.from_url(redis_url)  # a connection of its own, like a worker
        barrier.wait()
        out = []
        for member in chunk:
            d = admit_creation(client, notification, "web01|eth0|4", member, rule)
            out.append((d.allowed, d.started))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(worker, [members[i::8] for i in range(8)]) for x in part]
    allowed = sum(1 for ok, _ in results if ok)
    starts = sum(1 for ok, started in results if not ok and started)
    assert allowed == 50  # no over- and no under-count
    assert starts == 1  # one suppression start for the flood, not one per event
    r = redis.Redis.from_url(redis_url)
    win, refused = window_keys(notification, "web01|eth0|4")
    assert r.zcard(win) == 50
    assert int(r.hget(SUPPRESSED_KEY, notification) or 0) == 270
    # every key expires by itself
    assert 0 < r.pttl(win) <= 60_000 and 0 < r.pttl(refused) <= 60_000
    # the same events delivered again are not counted twice
    again = [admit_creation(r, notification, "web01|eth0|4", m, rule).allowed for m in members]
    assert sum(again) == 50
