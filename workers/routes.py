"""Every queue and route, in one place."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from incman.integrations.registry import known_integrations, queue_for

INGEST_QUEUE = "ingest"
POLL_QUEUE = "poll"
MAINTENANCE_QUEUE = "maintenance"


def integration_queues() -> list[str]:
    return [queue_for(name) for name in known_integrations()]


def all_queue_names() -> list[str]:
    return [INGEST_QUEUE, POLL_QUEUE, MAINTENANCE_QUEUE, *integration_queues()]


def queues() -> list[Queue]:
    return [Queue(name, routing_key=name) for name in all_queue_names()]


# Tasks with a fixed queue. `incman.run_action` is routed per call to its integration's
# queue (`itsm.<integration>`) by incman.dispatch.
TASK_ROUTES: dict[str, dict[str, Any]] = {
    "incman.ingest_events": {"queue": INGEST_QUEUE},
    "incman.poll_due": {"queue": POLL_QUEUE},
    "incman.poll_notification": {"queue": POLL_QUEUE},
    "incman.reconcile": {"queue": MAINTENANCE_QUEUE},
    "incman.noop": {"queue": MAINTENANCE_QUEUE},
}
