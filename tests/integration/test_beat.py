"""Two real beat replicas, both active: each notification is still polled once per cycle."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import Stack
from helpers import wait_for

from incman.sync.schedule import RUNS_KEY
from incman.testing.procs import Proc

CYCLES = {"poll-fast": 2, "poll-slow": 4}
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "never", "when": {"device": {"_m": "^never-matches-"}}}],
    "notifications": [
        {"id": nid, "integration": "debug", "triggers": ["never"], "cycletime": cycle}
        for nid, cycle in CYCLES.items()
    ],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Stack:
    return make_stack(CONFIG, extra_env={"INCMAN_POLL_TICK": "0.5"})


@pytest.fixture
def beats(stack: Stack) -> Iterator[list[Proc]]:
    procs = [
        Proc(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(stack.logs / f"beat-{name}-schedule"),
            ],
            stack.env,
            stack.logs / f"beat-{name}.log",
        )
        for name in ("a", "b")
    ]
    yield procs
    for proc in procs:
        proc.stop()


def runs(r: redis.Redis) -> dict[str, int]:
    raw = r.hgetall(RUNS_KEY)
    return {nid: int(raw.get(nid.encode(), 0)) for nid in CYCLES}


def test_two_beat_replicas_poll_each_notification_once_per_cycle(
    stack: Stack, beats: list[Proc]
) -> None:
    r = redis.Redis.from_url(stack.env["INCMAN_REDIS_URL"])
    wait_for(lambda: all(runs(r).values()), timeout=30, what="the first polls")

    def ticks() -> int:
        return sum(beat.output().count("Sending due task poll-tick") for beat in beats)

    start, before, ticks_before = time.monotonic(), runs(r), ticks()
    # A window of at least three slow cycles, however slowly this machine runs them.
    wait_for(
        lambda: runs(r)["poll-slow"] - before["poll-slow"] >= 3, timeout=60, what="three polls"
    )
    elapsed, after, ticked = time.monotonic() - start, runs(r), ticks() - ticks_before
    for beat in beats:
        assert beat.alive(), beat.output()
        assert "Sending due task poll-tick (incman.poll_due)" in beat.output()
    polled = {nid: after[nid] - before[nid] for nid in CYCLES}
    # Both replicas ticked far more often than anything was polled...
    assert ticked > 2 * sum(polled.values()), (ticked, polled)
    for nid, cycle in CYCLES.items():
        # ...yet no notification is polled more than once per cycle (the claim in Redis);
        # a slow machine can only poll less often.
        assert 1 <= polled[nid] <= math.ceil(elapsed / cycle) + 1, (nid, polled, elapsed)
