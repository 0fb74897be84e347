"""The incident poller (the seed's zenincidentpoll).

It reads remote states in batches and lets what people did there (resolve, assign) flow back
onto the events."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from incman.domain.lifecycle import event_change_for_remote
from incman.integrations.base import STATUS
from incman.integrations.errors import NotSupported
from incman.store.catalog import NotificationDef, get_catalog
from incman.store.db import new_session, session_scope
from incman.store.models import OPEN_EVENT_STATUSES, Event, EventIncident, Incident, utcnow
from incman.store.plugins import make_plugin, remote_ref

log = logging.getLogger(__name__)

BATCH = 100
POLLED_STATES = ("OPEN", "ASSIGNED", "RESOLVED")


def _incidents_to_poll(notification_id: str, after_id: str, limit: int) -> list[Incident]:
    with new_session() as session:
        return list(
            session.scalars(
                select(Incident)
                .where(
                    Incident.notification_id == notification_id,
                    Incident.state.in_(POLLED_STATES),
                    Incident.remote_id.is_not(None),
                    Incident.id > after_id,
                )
                .order_by(Incident.id)
                .limit(limit)
            )
        )


def apply_remote_state(
    notif: NotificationDef, incident_id: str, new_state: str, remote_state: str, assignee: str = ""
) -> str | None:
    """Store the remote state and apply the lifecycle to the linked events."""
    with session_scope() as session:
        inc = session.get(Incident, incident_id, with_for_update=True)
        if inc is None:
            return None
        old_state = inc.state
        inc.polled_at = utcnow()
        if old_state == new_state and inc.remote_state == remote_state:
            return None
        inc.state = new_state
        inc.remote_state = remote_state
        inc.updated_at = utcnow()
        change = event_change_for_remote(old_state, new_state, notif.options)
        if change is None:
            return None
        events = session.scalars(
            select(Event)
            .join(EventIncident, EventIncident.event_id == Event.id)
            .where(EventIncident.incident_id == incident_id, Event.status.in_(OPEN_EVENT_STATUSES))
            .with_for_update()
        )
        now = utcnow()
        for ev in events:
            # Changes made here come from the remote: they queue no action back to it.
            if change == "close":
                ev.status = "Closed"
            elif change == "acknowledge" and ev.status == "New":
                ev.status = "Acknowledged"
                ev.acknowledged_by = assignee or notif.integration
                ev.acknowledgement_time = now
            ev.updated_at = now
        return change


def poll_notification(notification_id: str) -> dict[str, Any]:
    """Poll every incident this notification owns, with its own settings, in batches."""
    notif = get_catalog().notifications.get(notification_id)
    result: dict[str, Any] = {
        "notificationId": notification_id,
        "polled": 0,
        "requests": 0,
        "changed": 0,
    }
    if notif is None:
        # A deleted notification leaves its incidents alone: nothing to poll them with.
        result["skipped"] = "notification not found"
        return result
    plugin = make_plugin(notif)
    if not plugin.supports(STATUS):
        result["skipped"] = f"{plugin.name} has no status reads"
        return result
    after = ""
    try:
        while True:
            batch = _incidents_to_poll(notif.id, after, BATCH)
            if not batch:
                break
            after = batch[-1].id
            try:
                fresh = plugin.get_status([remote_ref(inc) for inc in batch])
            except NotSupported:
                result["skipped"] = f"{plugin.name} has no status reads"
                break
            result["requests"] += 1
            result["polled"] += len(batch)
            for inc in batch:
                ref = fresh.get(inc.remote_id or "")
                if ref is None:
                    continue
                if (
                    apply_remote_state(notif, inc.id, ref.state, ref.remote_state, ref.assignee)
                    is not None
                    or ref.state != inc.state
                ):
                    result["changed"] += 1
    finally:
        plugin.shutdown()
    log.info("polled %s: %s", notification_id, result)
    return result
