"""Shared pieces of the benches: services, HTTP load, waiting, the database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

from incman.testing import pg, procs
from incman.testing.bench import load
from incman.testing.procs import Proc

GOAL_SINGLE = 3000.0  # events/s, one per request
GOAL_BATCHED = 20000.0  # events/s, 100 per request
GOAL_REPEATS = 10000.0  # events/s, repeats of open events in batches of 100
GOAL_RATIO = 1.0  # end to end / Celery no-op
GOAL_BURST_P99 = 3.0  # seconds, event → incident, a burst of 2,000
GOAL_PACED_P99 = 1.0  # seconds, paced at half the end-to-end rate
GOAL_RSS_DRIFT = 0.10  # worker RSS from 10,000 to 200,000 actions
NOTIFICATION = "bench-debug"
OWNER_KEY = "incman:bench:owner"
BENCH_CONFIG: dict[str, Any] = {
    "triggers": [{"id": "bench-e2e", "when": {"device": {"_m": "^e2e-"}}}],
    "notifications": [{"id": NOTIFICATION, "integration": "debug", "triggers": ["bench-e2e"]}],
    "suppression": {"threshold_num": -1},
}


class BenchError(RuntimeError):
    """The bench could not measure what it was asked to (the reason says why)."""


@dataclass
class Results:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- services -------------------------------------------------------------------------------


def fresh_database(admin_url: str) -> Any:
    """A new PostgreSQL database migrated to head; dropped afterwards."""
    return pg.fresh_database(admin_url, prefix="incman_bench")


def start_api(env: dict[str, str], folder: Path, workers: int) -> tuple[Proc, str]:
    """`incman api --workers N` on a free port, once it answers."""
    try:
        return procs.start_api(env, folder, extra_args=["--workers", str(workers)])
    except (RuntimeError, TimeoutError) as exc:
        raise BenchError(str(exc)) from exc


# -- HTTP load ------------------------------------------------------------------------------


def post_all(urls: list[str], key: str, bodies: list[bytes], clients: int) -> float:
    """POST every body to /api/v1/events from `clients` keep-alive connections, spread over
    the API processes at `urls`; the seconds it took (incman.testing.bench.load)."""
    try:
        return load.post_all(urls, key, bodies, clients)
    except (load.LoadError, OSError, asyncio.IncompleteReadError) as exc:
        raise BenchError(str(exc)) from exc


def event_bodies(prefix: str, count: int, batch: int = 1, distinct: int = 0) -> list[bytes]:
    """Pre-encoded request bodies of `count` events: distinct ones, or repeats of the first
    `distinct` (their devices taken in turn)."""
    events = [
        {
            "device": f"{prefix}-{n % distinct if distinct else n}",
            "component": "bench",
            "eventClass": "/Bench",
            "severity": 4,
            "summary": f"bench event {n}",
        }
        for n in range(count)
    ]
    if batch == 1:
        return [json.dumps(ev).encode() for ev in events]
    return [json.dumps(events[n : n + batch]).encode() for n in range(0, count, batch)]


# -- waiting and reading -----------------------------------------------------------------------


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> float:
    """Poll `check` until true; the perf_counter time it became true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter()


class Database:
    """Read-only queries of the bench database (psycopg2, autocommit)."""

    def __init__(self, sqlalchemy_url: str) -> None:
        self.conn = psycopg2.connect(
            sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://")
        )
        self.conn.autocommit = True

    def scalar(self, sql: str, *args: Any) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def debug_incidents(self, prefix: str) -> int:
        """Debug incidents created for events whose device starts with `prefix`."""
        return int(
            self.scalar(
                "SELECT count(*) FROM incidents i JOIN events e ON e.id = i.origin_event_id "
                "JOIN debug_incidents d ON d.correlation_key = i.correlation_key "
                "WHERE e.device LIKE %s",
                prefix + "%",
            )
        )

    def latencies(self, prefix: str) -> list[float]:
        """Seconds from each event's firstTime to its Debug incident's creation."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT extract(epoch FROM d.created_at - e.first_time) FROM incidents i "
                "JOIN events e ON e.id = i.origin_event_id "
                "JOIN debug_incidents d ON d.correlation_key = i.correlation_key "
                "WHERE e.device LIKE %s",
                (prefix + "%",),
            )
            return sorted(float(row[0]) for row in cur.fetchall())

    def actions_of(self, prefix: str) -> int:
        """Outbox actions of events whose device starts with `prefix`."""
        return int(
            self.scalar(
                "SELECT count(*) FROM actions a JOIN events e ON e.id = a.event_id "
                "WHERE e.device LIKE %s",
                prefix + "%",
            )
        )

    def unfinished_actions(self) -> int:
        return int(
            self.scalar("SELECT count(*) FROM actions WHERE status IN ('pending', 'running')")
        )

    def action_statuses(self) -> dict[str, int]:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT status, count(*) FROM actions GROUP BY status")
                return {status: int(n) for status, n in cur.fetchall()}
        except psycopg2.Error:
            return {}

    def close(self) -> None:
        self.conn.close()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        raise BenchError("no latencies to summarise")
    rank = max(1, round(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def process_group_memory(pgid: int) -> tuple[int, int, int]:
    """(RSS bytes, PSS bytes, processes) summed over a process group, read from /proc."""
    rss = pss = count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
            count += 1
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss, count
