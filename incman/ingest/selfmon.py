"""Self-monitoring: failures raise events of class /App/Incman/Failure (never triggering)."""

from __future__ import annotations

import logging

from incman.domain.event import FAILURE_CLASS, SUPPRESSION_CLASS, EventIn, make_dedupid
from incman.ingest.accept import accept
from incman.store.catalog import get_catalog
from incman.store.db import session_scope

log = logging.getLogger(__name__)


def report_failure(
    notification_id: str,
    what: str,
    reason: str,
    event_id: str | None = None,
    action_id: int | None = None,
) -> None:
    """Raise (or fold into) one failure event per notification and action kind. Viewers
    read events, so `reason` is the failure without the remote's text (which stays in the
    dead-letter record of `action_id`, shown to managers)."""
    where = f"; action {action_id} in the dead letter" if action_id is not None else ""
    ev = EventIn(
        device="incman",
        component=notification_id,
        event_class=FAILURE_CLASS,
        event_key=what,
        severity=4,
        summary=f"Notification {notification_id} failed to {what}: {reason}{where}"[:4000],
        agent="incman",
        details={
            "notificationId": notification_id,
            "error": reason[:2000],
            **({"eventId": event_id} if event_id else {}),
            **({"actionId": action_id} if action_id is not None else {}),
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
