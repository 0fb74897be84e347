"""Prometheus metrics: every process adds to Redis; the API's /metrics reads them all back.

Why Redis: the API and the Celery workers are separate processes, usually on separate hosts,
and the API may itself run several processes (`incman api --workers 2`). prometheus-client's
in-process metrics would show only the process that happens to answer a scrape, and its
multiprocess mode shares files on one host only. So each process adds its observations to a
few small Redis hashes, and a Collector in the API reads them at scrape time: one scrape of any
API process shows every worker on every host. Ingest never waits on Redis, and a metric that
cannot be written is logged and dropped; metrics never fail an ingest or an action. (what is
written when, counter resets, action outcomes: docs/operations.md)"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

PREFIX = "incman:metrics:"
EVENTS_KEY = PREFIX + "events_accepted"
RETRIES_KEY = PREFIX + "action_retries"
DEFERRALS_KEY = PREFIX + "action_deferrals"
LATENCY_KEY = PREFIX + "queue_latency"
SUPPRESSED_KEY = PREFIX + "suppressed"  # counted by the suppression Lua script
FLUSH_SECONDS = 1.0  # how often a process writes its event counts
# Seconds; a reconciled (lost and re-sent) action lands in the last buckets.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    math.inf,
)


def _redis_failed(what: str, exc: Exception) -> None:
    log.warning("metrics: could not record %s: %s", what, exc)


class SharedCounter:
    """A counter with one label, kept in a Redis hash: `COUNTER.labels(source="api").inc(3)`.

    With `flush_every` > 0, adds are summed in the process and written by a daemon thread
    that often (and at exit), so a hot path such as ingest never waits on Redis; a crash
    loses at most that interval's counts. With 0, each add is written at once."""

    def __init__(self, key: str, label: str, flush_every: float = 0.0) -> None:
        self.key = key
        self.label = label
        self.flush_every = flush_every
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None
        os.register_at_fork(after_in_child=self._forget)

    def labels(self, **labels: str) -> _CounterChild:
        return _CounterChild(self, labels[self.label])

    def add(self, value: str, amount: float = 1) -> None:
        if self.flush_every <= 0:
            self._write({value: int(amount)})
            return
        with self._lock:
            self._pending[value] += int(amount)
            if self._flusher_pid != os.getpid():
                self._start_flusher()

    def flush(self) -> None:
        """Write what was added since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if pending and not self._write(pending):
            with self._lock:  # keep them for the next flush (one entry per label value)
                self._pending.update(pending)

    def _write(self, amounts: Mapping[str, int]) -> bool:
        from incman.store.redisconn import get_redis

        try:
            pipe = get_redis().pipeline(transaction=False)
            for value, amount in amounts.items():
                pipe.hincrby(self.key, value, amount)
            pipe.execute()
            return True
        except Exception as exc:  # noqa: BLE001 (metrics must not fail the work)
            _redis_failed(self.key, exc)
            return False

    def _start_flusher(self) -> None:
        self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_forever, name=f"flush {self.key}", daemon=True).start()
        atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_every)
            self.flush()

    def _forget(self) -> None:
        """In a forked child: the parent flushes its own counts."""
        self._lock = threading.Lock()
        self._pending = Counter()
        self._flusher_pid = None


class _CounterChild:
    def __init__(self, counter: SharedCounter, value: str) -> None:
        self.counter = counter
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.counter.add(self.value, amount)


EVENTS_ACCEPTED = SharedCounter(EVENTS_KEY, "source", flush_every=FLUSH_SECONDS)
ACTION_RETRIES = SharedCounter(RETRIES_KEY, "integration")
ACTION_DEFERRALS = SharedCounter(DEFERRALS_KEY, "integration")


def bucket_for(seconds: float) -> float:
    """The smallest bucket bound at or above `seconds`."""
    return next(bound for bound in LATENCY_BUCKETS if seconds <= bound)


def observe_queue_latencies(integration: str, waits: list[float]) -> None:
    """Record how long each of many actions of `integration` waited (one round trip)."""
    from incman.store.redisconn import get_redis

    waits = [max(0.0, seconds) for seconds in waits]
    buckets = Counter(floatToGoString(bucket_for(seconds)) for seconds in waits)
    try:
        pipe = get_redis().pipeline(transaction=True)
        for bucket, count in buckets.items():
            pipe.hincrby(LATENCY_KEY, f"{integration}|{bucket}", count)
        pipe.hincrbyfloat(LATENCY_KEY, f"{integration}|sum", sum(waits))
        pipe.hincrby(LATENCY_KEY, f"{integration}|count", len(waits))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001
        _redis_failed(LATENCY_KEY, exc)


def action_retried(integration: str, count: int = 1) -> None:
    ACTION_RETRIES.labels(integration=integration).inc(count)


def action_deferred(integration: str) -> None:
    ACTION_DEFERRALS.labels(integration=integration).inc()


def latency_families(fields: dict[str, str]) -> HistogramMetricFamily:
    """The histogram from the Redis hash: per-bucket counts made cumulative."""
    family = HistogramMetricFamily(
        "incman_queue_latency_seconds",
        "Seconds from an action's creation to a worker starting it",
        labels=["integration"],
    )
    per: dict[str, dict[str, float]] = {}
    for field, value in fields.items():
        integration, _, part = field.rpartition("|")
        per.setdefault(integration, {})[part] = float(value)
    for integration in sorted(per):
        values = per[integration]
        running = 0.0
        buckets: list[tuple[str, float]] = []
        for bound in LATENCY_BUCKETS:
            name = floatToGoString(bound)
            running += values.get(name, 0.0)
            buckets.append((name, running))
        family.add_metric([integration], buckets, sum_value=values.get("sum", 0.0))
    return family


def counter_family(name: str, doc: str, label: str, fields: dict[str, str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in sorted(fields.items()):
        family.add_metric([value], float(count))
    return family


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class SharedCollector(Collector):
    """The counters and histogram every process wrote to Redis."""

    def describe(self) -> Iterable[Metric]:
        return self._families({}, {}, {}, {}, {})

    def collect(self) -> Iterable[Metric]:
        from incman.store.redisconn import get_redis

        try:
            pipe = get_redis().pipeline(transaction=False)
            for key in (EVENTS_KEY, RETRIES_KEY, LATENCY_KEY, SUPPRESSED_KEY, DEFERRALS_KEY):
                pipe.hgetall(key)
            events, retries, latency, suppressed, deferrals = (
                _decode(raw) for raw in pipe.execute()
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: cannot read the shared metrics from Redis: %s", exc)
            return []
        return self._families(events, retries, latency, suppressed, deferrals)

    @staticmethod
    def _families(
        events: dict[str, str],
        retries: dict[str, str],
        latency: dict[str, str],
        suppressed: dict[str, str],
        deferrals: dict[str, str],
    ) -> list[Metric]:
        return [
            counter_family(
                "incman_events_accepted", "Events accepted, by source", "source", events
            ),
            counter_family(
                "incman_action_retries", "Action retries, by integration", "integration", retries
            ),
            latency_families(latency),
            counter_family(
                "incman_suppressed_creations",
                "Incident creations held back by suppression",
                "notification",
                suppressed,
            ),
            counter_family(
                "incman_action_deferrals",
                "Actions held back by a remote's breaker, pause or rate limit, by integration",
                "integration",
                deferrals,
            ),
        ]


class OutboxCollector(Collector):
    """Actions by integration and outcome, counted where they are recorded: the outbox."""

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "incman_actions",
            "Outbox actions by integration and status",
            labels=["integration", "status"],
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from incman.store.db import session_scope
        from incman.store.models import Action

        family = self._family()
        try:
            with session_scope() as session:
                rows = session.execute(
                    select(Action.integration, Action.status, func.count()).group_by(
                        Action.integration, Action.status
                    )
                ).all()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: cannot read the outbox: %s", exc)
            rows = []
        for integration, status, count in rows:
            family.add_metric([integration, status], count)
        yield family


_registered = False


def register_collectors() -> None:
    """Add incman's collectors to the default registry (once per process)."""
    global _registered
    if not _registered:
        REGISTRY.register(OutboxCollector())
        REGISTRY.register(SharedCollector())
        _registered = True
