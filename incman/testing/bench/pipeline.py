"""`make bench`: ingest, end-to-end and Celery no-op rates of incman on this machine.

One run on PostgreSQL and Redis: a fresh database (dropped at the end), a Redis database of
its own (flushed before and after), the API and one Celery worker as real processes.

- single: distinct events, one per HTTP request, from `--clients` keep-alive connections;
- batched: distinct events, `--batch-size` per request;
  (neither matches a trigger: the figures are the ingest path alone)
- repeats: repeats of 100 open events that have their incident, in batches; with the default
  options (initial occurrence only) they make no outbox action, so no task message and no
  remote call: the bench counts them;
- end to end: distinct events matching a Debug notification, sent in batches; the clock stops
  when every one has its Debug incident (read from the database);
- no-op: `incman.noop` tasks on the same broker, consumed by the same worker process (so with
  identical options). The tasks acknowledge late, so with the Redis broker a message stays in
  the queue's list or in the `unacked` hash until its task has run: the clock stops when both
  are empty;
- latency: event firstTime → Debug incident created, for the end-to-end burst (a backlog) and
  for events paced at half the end-to-end rate just measured (`--paced-seconds` of them);
- worker memory: RSS of the worker's process group after 10,000 actions and after
  `--memory-actions`, and RSS and PSS after the run.

Each figure is printed with its goal and its ratio to the goal. The load generator is
incman.testing.bench.load (one asyncio loop), lean because it shares the machine."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

from incman.testing.bench.common import (
    BENCH_CONFIG,
    GOAL_BATCHED,
    GOAL_BURST_P99,
    GOAL_PACED_P99,
    GOAL_RATIO,
    GOAL_REPEATS,
    GOAL_RSS_DRIFT,
    GOAL_SINGLE,
    OWNER_KEY,
    BenchError,
    Database,
    Results,
    event_bodies,
    fresh_database,
    percentile,
    post_all,
    process_group_memory,
    start_api,
    wait_until,
)
from incman.testing.bench.load import post_paced
from incman.testing.procs import Proc, start_worker

# -- the measurements ---------------------------------------------------------------------------


@dataclass
class Bench:
    opts: argparse.Namespace
    urls: list[str]
    key: str
    db: Database
    broker: redis.Redis
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def ingest_rate(self, name: str, count: int, batch: int, clients: int) -> float:
        bodies = event_bodies(f"{name}-{self.run}", count, batch)
        return count / post_all(self.urls, self.key, bodies, clients)

    def warm_up(self) -> None:
        post_all(self.urls, self.key, event_bodies(f"warm-{self.run}", 200), self.opts.clients)
        post_all(self.urls, self.key, event_bodies(f"warmb-{self.run}", 1000, 100), 2)
        prefix = f"e2e-warm-{self.run}"
        post_all(self.urls, self.key, event_bodies(prefix, 50, 50), 1)
        wait_until(lambda: self.db.debug_incidents(prefix) >= 50, 60, "the warm-up incidents")

    def noop_rate(self, count: int) -> float:
        from incman.outbox.sender import celery_app

        app = celery_app()
        queue = "maintenance"
        began = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(count):
                app.send_task("incman.noop", queue=queue, producer=producer)

        def drained() -> bool:
            pipe = self.broker.pipeline(transaction=False)
            pipe.llen(queue)
            pipe.hlen("unacked")
            return sum(pipe.execute()) == 0

        done = wait_until(drained, 120, f"{count} no-op tasks")
        return count / (done - began)

    def end_to_end(self, count: int) -> tuple[float, list[float]]:
        prefix = f"e2e-burst-{self.run}"
        bodies = event_bodies(prefix, count, 100)
        began = time.perf_counter()
        post_all(self.urls, self.key, bodies, 2)
        try:
            done = wait_until(
                lambda: self.db.debug_incidents(prefix) >= count,
                240,
                f"{count} Debug incidents",
                interval=0.05,
            )
        except BenchError as exc:
            raise BenchError(
                f"{exc}: {self.db.debug_incidents(prefix)} made; outbox "
                f"actions by status: {self.db.action_statuses()}"
            ) from exc
        return count / (done - began), self.db.latencies(prefix)

    def paced_latencies(self, count: int, rate: float) -> list[float]:
        prefix = f"e2e-paced-{self.run}"
        post_paced(self.urls, self.key, event_bodies(prefix, count), rate, self.opts.clients)
        wait_until(
            lambda: self.db.debug_incidents(prefix) >= count,
            120,
            f"{count} paced Debug incidents",
            interval=0.05,
        )
        return self.db.latencies(prefix)

    def repeats_rate(self, count: int, distinct: int = 100) -> tuple[float, int]:
        """Repeats of open events that have their incident (the common case in a flood):
        the rate, and the outbox actions (so task messages) they made."""
        prefix = f"e2e-rep-{self.run}"
        post_all(self.urls, self.key, event_bodies(prefix, distinct, distinct), 1)
        wait_until(lambda: self.db.debug_incidents(prefix) >= distinct, 60, "first incidents")
        before = self.db.actions_of(prefix)
        bodies = event_bodies(prefix, count, self.opts.batch_size, distinct=distinct)
        rate = count / post_all(self.urls, self.key, bodies, 4)
        return rate, self.db.actions_of(prefix) - before

    def worker_memory(self, worker: Proc, total: int, first: int = 10_000) -> tuple[int, int]:
        """The worker's RSS after `first` actions and after `total` (sent 10,000 at a time,
        each lot taken to its incidents before the next)."""
        rss: list[int] = []
        done = 0
        for lot in [first] + [10_000] * max(0, (total - first + 9_999) // 10_000):
            prefix = f"e2e-mem{done}-{self.run}"
            post_all(self.urls, self.key, event_bodies(prefix, lot, self.opts.batch_size), 4)
            wait_until(lambda: self.db.unfinished_actions() == 0, 600, "the actions", 0.5)
            done += lot
            if done == first or done >= total:
                rss.append(process_group_memory(worker.pid)[0])
        return rss[0], rss[-1]


def progress(what: str) -> None:
    print(f"  ... {what}", file=sys.stderr, flush=True)


def measure(bench: Bench, worker: Proc) -> Results:
    opts = bench.opts
    res = Results()
    progress("warming up")
    bench.warm_up()
    progress(f"{opts.single:,} single events")
    res.figures["single"] = bench.ingest_rate("single", opts.single, 1, opts.clients)
    progress(f"{opts.batched:,} events in batches of {opts.batch_size}")
    res.figures["batched"] = bench.ingest_rate("batched", opts.batched, opts.batch_size, 4)
    progress(f"{opts.repeats:,} repeats of open events")
    res.figures["repeats"], res.figures["repeat_actions"] = bench.repeats_rate(opts.repeats)
    progress(f"{opts.noop:,} no-op tasks")
    res.figures["noop"] = bench.noop_rate(opts.noop)
    progress(f"{opts.e2e:,} events to Debug incidents")
    rate, burst = bench.end_to_end(opts.e2e)
    res.figures["e2e"] = rate
    res.figures["burst_p50"] = percentile(burst, 50)
    res.figures["burst_p99"] = percentile(burst, 99)
    res.figures["paced_rate"] = paced_rate = max(25.0, rate / 2)
    count = max(100, int(paced_rate * opts.paced_seconds))
    progress(f"{count:,} events paced at {paced_rate:,.0f}/s")
    paced = bench.paced_latencies(count, paced_rate)
    res.figures["paced_p50"] = percentile(paced, 50)
    res.figures["paced_p99"] = percentile(paced, 99)
    if opts.memory_actions:
        progress(f"{opts.memory_actions:,} actions for the worker's memory")
        before, after = bench.worker_memory(worker, opts.memory_actions)
        res.figures.update(rss_first=before, rss_last=after)
    rss, pss, procs = process_group_memory(worker.pid)
    res.figures.update(worker_rss=rss, worker_pss=pss, worker_procs=procs)
    return res


# -- running it -----------------------------------------------------------------------------------


def _verdict(value: float, goal: float, lower_is_better: bool = False) -> str:
    ratio = goal / value if lower_is_better and value else value / goal
    met = value <= goal if lower_is_better else value >= goal
    return f"{ratio:.2f} × goal: {'meets' if met else 'misses'}"


def _figure(name: str, value: str, goal: str = "", verdict: str = "") -> str:
    if not goal:
        return f"  {name:<40}{value:>16}"
    return f"  {name:<40}{value:>16}   goal {goal:<12}({verdict})"


def report(res: Results, opts: argparse.Namespace) -> str:
    f = res.figures
    ratio = f["e2e"] / f["noop"]
    mib = 1024 * 1024
    lines = [
        f"incman bench — {os.cpu_count()} CPUs; API: {opts.api_procs} × `incman api "
        f"--workers {opts.api_workers}`; "
        f"worker: -P {opts.pool} -c {opts.concurrency}; {opts.clients} HTTP connections",
        "",
        _figure(
            "single-event durable ingest",
            f"{f['single']:,.0f} events/s",
            f"≥ {GOAL_SINGLE:,.0f}",
            _verdict(f["single"], GOAL_SINGLE),
        ),
        _figure(
            f"batched ingest ({opts.batch_size} per request)",
            f"{f['batched']:,.0f} events/s",
            f"≥ {GOAL_BATCHED:,.0f}",
            _verdict(f["batched"], GOAL_BATCHED),
        ),
        _figure(
            "repeats of open events (batched)",
            f"{f['repeats']:,.0f} events/s",
            f"≥ {GOAL_REPEATS:,.0f}",
            _verdict(f["repeats"], GOAL_REPEATS),
        ),
        f"  {'':<40}{'':>16}   their outbox actions (so task messages and remote calls): "
        f"{f['repeat_actions']:.0f}",
        _figure("event → Debug incident, end to end", f"{f['e2e']:,.0f} events/s"),
        _figure("Celery no-op tasks, same worker", f"{f['noop']:,.0f} tasks/s"),
        _figure(
            "end to end / no-op", f"{ratio:.2f}", f"≥ {GOAL_RATIO}", _verdict(ratio, GOAL_RATIO)
        ),
        _figure(
            f"burst of {opts.e2e:,}: latency p99",
            f"{f['burst_p99']:.3f} s",
            f"≤ {GOAL_BURST_P99:g} s",
            _verdict(f["burst_p99"], GOAL_BURST_P99, lower_is_better=True),
        ),
        f"  {'':<40}{'p50 ' + format(f['burst_p50'], '.3f') + ' s':>16}",
        _figure(
            f"paced at {f['paced_rate']:,.0f}/s (half e2e): p99",
            f"{f['paced_p99']:.3f} s",
            f"< {GOAL_PACED_P99:g} s",
            _verdict(f["paced_p99"], GOAL_PACED_P99, lower_is_better=True),
        ),
        f"  {'':<40}{'p50 ' + format(f['paced_p50'], '.3f') + ' s':>16}",
    ]
    if "rss_first" in f:
        drift = f["rss_last"] / f["rss_first"] - 1
        lines.append(
            _figure(
                f"worker RSS, 10,000 → {opts.memory_actions:,} actions",
                f"{f['rss_first'] / mib:.0f} → {f['rss_last'] / mib:.0f} MiB",
                f"± {GOAL_RSS_DRIFT:.0%}",
                f"{drift:+.1%}: {'meets' if abs(drift) <= GOAL_RSS_DRIFT else 'misses'}",
            )
        )
    lines.append(
        f"  worker memory at the end: RSS {f['worker_rss'] / mib:.0f} MiB, PSS "
        f"{f['worker_pss'] / mib:.0f} MiB over {f['worker_procs']:.0f} processes"
    )
    return "\n".join(lines + res.notes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m incman.testing.bench", description=__doc__.splitlines()[0]
    )
    p.add_argument("--single", type=int, default=3000, help="events sent one per request")
    p.add_argument("--batched", type=int, default=30000, help="events sent in batches")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--e2e", type=int, default=2000, help="events taken to a Debug incident")
    p.add_argument("--noop", type=int, default=5000, help="no-op Celery tasks")
    p.add_argument("--repeats", type=int, default=30000, help="repeats of open events")
    p.add_argument(
        "--paced-seconds", type=float, default=3.0, help="seconds of paced events (latency)"
    )
    p.add_argument(
        "--memory-actions",
        type=int,
        default=200_000,
        help="actions run to see the worker's memory stay flat (0 skips it)",
    )
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP connections")
    p.add_argument(
        "--api-procs",
        type=int,
        default=2,
        help="`incman api` processes, each on its own port (clients spread over them)",
    )
    p.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="uvicorn processes of each `incman api` (its --workers)",
    )
    p.add_argument("--concurrency", type=int, default=2, help="worker pool size (-c)")
    p.add_argument("--pool", default="prefork", help="worker pool (-P)")
    p.add_argument(
        "--poll-incidents",
        type=int,
        default=10_000,
        help="open incidents polled in one cycle against the ServiceNow simulator (0 skips it)",
    )
    p.add_argument(
        "--redis-db", type=int, default=int(os.environ.get("INCMAN_BENCH_REDIS_DB", "14"))
    )
    p.add_argument(
        "--pg",
        default=os.environ.get("INCMAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to create databases",
    )
    p.add_argument(
        "--redis", default=os.environ.get("INCMAN_BENCH_REDIS", "redis://127.0.0.1:6379")
    )
    return p.parse_args(argv)


def _log_tail(proc: Proc, lines: int = 15) -> str:
    tail = proc.output().splitlines()[-lines:]
    return f"--- {proc.log_path.name}:\n" + "\n".join(tail)


def run(opts: argparse.Namespace) -> Results:
    from incman.settings import reset_settings

    redis_url = f"{opts.redis}/{opts.redis_db}"
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    key = uuid.uuid4().hex
    broker.set(OWNER_KEY, key)  # gone if another process flushes this database meanwhile
    with (
        tempfile.TemporaryDirectory(prefix="incman-bench-") as tmp,
        fresh_database(opts.pg) as db_url,
    ):
        folder = Path(tmp)
        (folder / "incman.yaml").write_text(yaml.safe_dump(BENCH_CONFIG))
        env = {
            **os.environ,
            "INCMAN_DATABASE_URL": db_url,
            "INCMAN_REDIS_URL": redis_url,
            "INCMAN_BROKER_URL": redis_url,
            "INCMAN_CONFIG": str(folder / "incman.yaml"),
            "INCMAN_API_KEYS": f"bench:admin:{key}",
            "INCMAN_DATA_DIR": str(folder),
        }
        os.environ.update(env)  # this process sends the no-op tasks on the same broker
        reset_settings()
        procs: list[Proc] = []
        db = Database(db_url)
        try:
            urls = []
            for _ in range(opts.api_procs):
                api, url = start_api(env, folder, opts.api_workers)
                procs.append(api)
                urls.append(url)
            worker = start_worker(
                env,
                folder,
                "itsm.debug,maintenance",
                concurrency=opts.concurrency,
                name="bench",
                pool=opts.pool,
            )
            procs.append(worker)
            return measure(Bench(opts, urls, key, db, broker), worker)
        except BenchError as exc:
            flushed = (
                ""
                if broker.get(OWNER_KEY)
                else (
                    f"\nRedis db {opts.redis_db} was flushed by another process during the run: "
                    "use another one (--redis-db)"
                )
            )
            raise BenchError(
                f"{exc}{flushed}\noutbox actions by status: "
                f"{db.action_statuses()}\n" + "\n".join(_log_tail(proc) for proc in procs)
            ) from exc
        finally:
            db.close()
            for proc in reversed(procs):
                proc.stop()
            broker.flushdb()


def _stop(signum: int, _frame: Any) -> None:
    raise BenchError(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # clean up (processes, database) when stopped
    signal.signal(signal.SIGHUP, _stop)
    print("incman bench: a fresh database, the API and a worker ...", flush=True)
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        res = run(opts)
    except BenchError as exc:
        print(f"incman bench: {exc}", file=sys.stderr)
        return 1
    print(report(res, opts))
    if opts.poll_incidents:
        from incman.testing.bench.poll import bench_poll

        print(f"\nincman bench: polling {opts.poll_incidents:,} open incidents ...", flush=True)
        poll = bench_poll(
            pg_admin=opts.pg,
            redis_base=opts.redis,
            redis_db=opts.redis_db,
            incidents=opts.poll_incidents,
        )
        print(
            f"  poll cycle            {poll.seconds:9.1f} s for {poll.incidents:,} open "
            f"incidents over {poll.notifications} notifications, {poll.requests:,} remote "
            f"requests; {poll.resolved_seen}/{poll.resolved_remotely} remote resolutions "
            f"applied  ({'within' if poll.within_cycle else 'NOT within'} one 60 s cycle)"
        )
    print(
        f"\n  ({time.monotonic() - began:.0f}s in all; 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; database dropped, "
        f"Redis db {opts.redis_db} flushed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
