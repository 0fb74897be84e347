"""Celery beat entries: data only (their periods come from the settings)."""

from __future__ import annotations

from typing import Any

from incman.settings import get_settings

POLL_TICK = get_settings().poll_tick  # INCMAN_POLL_TICK, 5 s by default
RECONCILE_EVERY = 15.0
AGING_EVERY = 60.0
RETENTION_EVERY = 3600.0
WAKE_EVERY = 30.0  # ITSM waiting_until: requests resume within this many seconds

# Each entry expires after its own period: a tick left in a backed-up queue is replaced by
# the next one rather than run late. Two beat replicas are safe: polls are claimed per
# notification in Redis (incman.sync.schedule), the others are idempotent and batched.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "poll-tick": {
        "task": "incman.poll_due",
        "schedule": POLL_TICK,
        "options": {"expires": POLL_TICK},
    },
    "reconcile": {
        "task": "incman.reconcile",
        "schedule": RECONCILE_EVERY,
        "options": {"expires": RECONCILE_EVERY},
    },
    "age-events": {
        "task": "incman.age_events",
        "schedule": AGING_EVERY,
        "options": {"queue": "maintenance", "expires": AGING_EVERY},
    },
    "wake-waiting-requests": {
        "task": "incman.wake_waiting_requests",
        "schedule": WAKE_EVERY,
        "options": {"expires": WAKE_EVERY},
    },
    "purge-expired": {
        "task": "incman.purge_expired",
        "schedule": RETENTION_EVERY,
        "options": {"queue": "maintenance", "expires": RETENTION_EVERY},
    },
}
