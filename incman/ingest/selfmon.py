"""Self-monitoring: failures raise events of class /App/Incman/Failure (never triggering)."""

from __future__ import annotations

import logging

from incman.domain.event import FAILURE_CLASS, SUPPRESSION_CLASS, EventIn, make_dedupid
from incman.ingest.accept import accept
from incman.store.catalog import get_catalog
from incman.store.db import session_scope

log = logging.getLogger(__name__)


def report_failure(
    notification_id: str, what: str, error: str, event_id: str | None = None
) -> None:
    """Raise (or fold into) one failure event per notification and action kind."""
    ev = EventIn(
        device="incman",
        component=notification_id,
        event_class=FAILURE_CLASS,
        event_key=what,
        severity=4,
        summary=f"Notification {notification_id} failed to {what}: {error}"[:4000],
        agent="incman",
        details={
            "notificationId": notification_id,
            "error": error[:2000],
            **({"eventId": event_id} if event_id else {}),
        },
    )
    ev.dedupid = make_dedupid(ev)
    try:
        with session_scope() as session:
            accept(session, [ev], get_catalog())
    except Exception:
        log.exception("could not store the failure event for %s", notification_id)


def report_suppression(
    notification_id: str, key: str, threshold_num: int, threshold_secs: int
) -> None:
    """Raise (or fold into) one event per notification and key when a flood of incident
    creations starts being suppressed (once per flood, not once per suppressed event)."""
    ev = EventIn(
        device="incman",
        component=notification_id,
        event_class=SUPPRESSION_CLASS,
        event_key=key[:255],
        severity=3,
        summary=(
            f"Notification {notification_id} suppresses incident creation for {key}: "
            f"more than {threshold_num} within {threshold_secs}s"
        )[:4000],
        agent="incman",
        details={
            "notificationId": notification_id,
            "key": key,
            "thresholdNum": threshold_num,
            "thresholdSecs": threshold_secs,
        },
    )
    ev.dedupid = make_dedupid(ev)
    try:
        with session_scope() as session:
            accept(session, [ev], get_catalog())
    except Exception:
        log.exception("could not store the suppression event for %s", notification_id)
