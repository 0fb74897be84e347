"""Queue names: `ingest`, `poll`, `maintenance`, and one `itsm.<integration>` per plugin."""

from __future__ import annotations

from incman.integrations.registry import known_integrations

INGEST_QUEUE = "ingest"
POLL_QUEUE = "poll"
MAINTENANCE_QUEUE = "maintenance"
RUN_ACTIONS = "incman.run_actions"


def queue_for(integration: str) -> str:
    """Each integration has its own worker queue."""
    return f"itsm.{integration}"


def integration_queues() -> list[str]:
    return [queue_for(name) for name in known_integrations()]


def all_queue_names() -> list[str]:
    return [INGEST_QUEUE, POLL_QUEUE, MAINTENANCE_QUEUE, *integration_queues()]
