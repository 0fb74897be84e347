"""Reads shared by several stages: the incidents linked to events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from incman.store.models import EventIncident, Incident

Links = dict[str, list[tuple[EventIncident, Incident]]]


def linked_incidents(session: Session, event_ids: list[str]) -> Links:
    """Links and incidents of many events at once, oldest association first."""
    out: Links = {eid: [] for eid in event_ids}
    if not event_ids:
        return out
    rows = session.execute(
        select(EventIncident, Incident)
        .join(Incident, Incident.id == EventIncident.incident_id)
        .where(EventIncident.event_id.in_(event_ids))
        .order_by(EventIncident.associated_at)
    ).all()
    for link, incident in rows:
        out[link.event_id].append((link, incident))
    return out
