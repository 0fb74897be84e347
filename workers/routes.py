"""Every queue and route, in one place: kombu queues built from incman's queue names."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from incman.outbox.queues import (
    INGEST_QUEUE,
    MAINTENANCE_QUEUE,
    POLL_QUEUE,
    all_queue_names,
    integration_queues,
)

__all__ = [
    "INGEST_QUEUE",
    "MAINTENANCE_QUEUE",
    "POLL_QUEUE",
    "TASK_ROUTES",
    "all_queue_names",
    "integration_queues",
    "queues",
]


def queues() -> list[Queue]:
    return [Queue(name, routing_key=name) for name in all_queue_names()]


# Tasks with a fixed queue. `incman.run_action` is routed per call to its integration's
# queue (`itsm.<integration>`) by incman.outbox.sender.
TASK_ROUTES: dict[str, dict[str, Any]] = {
    "incman.ingest_events": {"queue": INGEST_QUEUE},
    "incman.poll_due": {"queue": POLL_QUEUE},
    "incman.poll_notification": {"queue": POLL_QUEUE},
    "incman.reconcile": {"queue": MAINTENANCE_QUEUE},
    "incman.wake_waiting_requests": {"queue": MAINTENANCE_QUEUE},
    "incman.noop": {"queue": MAINTENANCE_QUEUE},
}
