"""Prometheus metrics of the API process (outcomes of actions are read from the outbox)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

EVENTS_ACCEPTED = Counter("incman_events_accepted", "Events accepted, by source", ["source"])
ACTION_RETRIES = Counter("incman_action_retries", "Action retries, by integration",
                         ["integration"])
QUEUE_LATENCY = Histogram("incman_queue_latency_seconds",
                          "Seconds from an action's commit to a worker starting it",
                          ["integration"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


class OutboxCollector(Collector):
    """Actions by integration and outcome, counted where they are recorded: the outbox."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from incman.db import session_scope
        from incman.models import Action

        family = GaugeMetricFamily("incman_actions", "Outbox actions by integration and status",
                                   labels=["integration", "status"])
        try:
            with session_scope() as session:
                rows = session.execute(
                    select(Action.integration, Action.status, func.count())
                    .group_by(Action.integration, Action.status)).all()
        except Exception:  # noqa: BLE001 (a scrape never fails on the database)
            rows = []
        for integration, status, count in rows:
            family.add_metric([integration, status], count)
        yield family


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(OutboxCollector())
        _registered = True
