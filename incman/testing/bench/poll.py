"""`make bench`, polling: 10,000 open incidents polled within one 60 s cycle.

The incidents span notifications and are polled against the ServiceNow simulator; the figure
comes with the number of remote requests it took.

A fresh PostgreSQL database and Redis database, the simulator on loopback holding the
incidents (1% of them resolved there, as a person would), the incidents' local records, and
a real Celery worker on the `poll` queue. The clock starts when `incman.poll_due` (what beat
sends every tick) is enqueued and stops when every incident has been read back."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import yaml

from incman.testing.bench.common import BenchError, Database, fresh_database, wait_until
from incman.testing.procs import Proc, start_worker
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimServer

CYCLE = 60
PASSWORD = "bench-poll-secret"


@dataclass
class PollFigures:
    incidents: int
    notifications: int
    seconds: float
    requests: int
    resolved_remotely: int
    resolved_seen: int

    @property
    def within_cycle(self) -> bool:
        return self.seconds <= CYCLE and self.resolved_seen == self.resolved_remotely


def _config(url: str, notifications: int) -> dict[str, Any]:
    return {
        "triggers": [{"id": "bench-none", "when": {"device": {"_m": "^no-event-matches$"}}}],
        "notifications": [
            {
                "id": f"bench-snow-{n}",
                "integration": "servicenow",
                "triggers": ["bench-none"],
                "cycletime": CYCLE,
                "options": {"close_event_on_resolve": True},
                "config": {"url": url, "username": "incman", "password": PASSWORD, "timeout": 30},
            }
            for n in range(notifications)
        ],
        "suppression": {"threshold_num": -1},
    }


def _seed(
    sim: ServiceNowSim, db_url: str, total: int, notifications: int, resolved_every: int
) -> int:
    """The incidents, remote and local; returns how many were resolved remotely."""
    import psycopg2
    from psycopg2.extras import execute_values

    rows = []
    resolved = 0
    with sim.lock:
        for n in range(total):
            key = uuid.uuid4().hex
            record = sim._insert(
                {"short_description": f"bench incident {n}", "correlation_id": key}, False
            )
            rows.append(
                (
                    str(uuid.uuid4()),
                    f"bench-snow-{n % notifications}",
                    "servicenow",
                    f"bench-{n}",
                    key,
                    record["number"],
                    record["sys_id"],
                    "OPEN",
                    "1",
                )
            )
            if n % resolved_every == 0:
                sim.act(
                    record["sys_id"],
                    {
                        "state": "6",
                        "close_code": "Solved (Permanently)",
                        "close_notes": "fixed by hand",
                    },
                )
                resolved += 1
    conn = psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn, conn.cursor() as cur:
            execute_values(
                cur,
                "INSERT INTO incidents (id, notification_id, integration, "
                "dedupid, correlation_key, number, remote_id, state, remote_state, "
                "manual, created_at, updated_at) VALUES %s",
                rows,
                template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, false, now(), now())",
            )
    finally:
        conn.close()
    return resolved


def bench_poll(
    pg_admin: str | None = None,
    redis_base: str | None = None,
    redis_db: int | None = None,
    incidents: int = 10_000,
    notifications: int = 4,
    concurrency: int = 4,
    resolved_every: int = 100,
) -> PollFigures:
    """Measure one poll cycle of `incidents` open incidents (see the module's docstring)."""
    from incman.settings import reset_settings

    pg_admin = pg_admin or os.environ.get(
        "INCMAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_base = redis_base or os.environ.get("INCMAN_BENCH_REDIS", "redis://127.0.0.1:6379")
    db_number = int(os.environ.get("INCMAN_BENCH_REDIS_DB", "14")) if redis_db is None else redis_db
    redis_url = f"{redis_base}/{db_number}"
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    app = ServiceNowSim(password=PASSWORD)
    saved = dict(os.environ)
    with (
        SimServer(app) as sim,
        tempfile.TemporaryDirectory(prefix="incman-bench-poll-") as tmp,
        fresh_database(pg_admin) as db_url,
    ):
        folder = Path(tmp)
        (folder / "incman.yaml").write_text(yaml.safe_dump(_config(sim.url, notifications)))
        env = {
            **os.environ,
            "INCMAN_DATABASE_URL": db_url,
            "INCMAN_REDIS_URL": redis_url,
            "INCMAN_BROKER_URL": redis_url,
            "INCMAN_CONFIG": str(folder / "incman.yaml"),
            "INCMAN_DATA_DIR": str(folder),
            "INCMAN_EGRESS_ALLOW": "127.0.0.1",  # the simulator listens on loopback
        }
        resolved = _seed(app, db_url, incidents, notifications, resolved_every)
        db = Database(db_url)
        worker: Proc | None = None
        try:
            os.environ.update(env)  # this process enqueues the tick on the same broker
            reset_settings()
            worker = start_worker(env, folder, "poll", concurrency=concurrency, name="bench-poll")
            from incman.outbox.sender import send_task

            app.requests.clear()
            began = time.perf_counter()
            send_task("incman.poll_due", queue="poll")
            done = wait_until(
                lambda: (
                    db.scalar("SELECT count(*) FROM incidents WHERE polled_at IS NOT NULL")
                    >= incidents
                ),
                CYCLE * 5,
                f"{incidents} incidents polled",
                interval=0.05,
            )
            requests = sum(1 for r in list(app.requests) if r["method"] == "GET")
            seen = int(db.scalar("SELECT count(*) FROM incidents WHERE state = 'RESOLVED'"))
            return PollFigures(incidents, notifications, done - began, requests, resolved, seen)
        finally:
            db.close()
            if worker is not None:
                worker.stop()
            broker.flushdb()
            os.environ.clear()
            os.environ.update(saved)
            reset_settings()


def report_poll(f: PollFigures) -> str:
    verdict = "within" if f.within_cycle else "NOT within"
    return (
        f"  incident poll         {f.incidents:,} open incidents across {f.notifications} "
        f"notifications in {f.seconds:.1f}s ({verdict} one {CYCLE}s cycle); "
        f"{f.requests} remote requests ({f.incidents / max(f.requests, 1):.0f} incidents "
        f"per request); {f.resolved_seen}/{f.resolved_remotely} remote resolutions applied"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m incman.testing.bench.poll", description=__doc__.splitlines()[0]
    )
    p.add_argument("--incidents", type=int, default=10_000)
    p.add_argument("--notifications", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=4, help="poll worker pool size")
    opts = p.parse_args(argv)
    try:
        figures = bench_poll(
            incidents=opts.incidents, notifications=opts.notifications, concurrency=opts.concurrency
        )
    except BenchError as exc:
        print(f"incman bench: {exc}", file=sys.stderr)
        return 1
    print(report_poll(figures))
    return 0 if figures.within_cycle else 1


if __name__ == "__main__":
    sys.exit(main())
