"""The one event document (incman.domain.event) built from a stored event row."""

from __future__ import annotations

from typing import Any

from incman.domain.event import EventIn, event_document
from incman.store.models import Event


def event_document_from_row(ev: Event) -> dict[str, Any]:
    """The event as triggers, field mapping and the API see it."""
    values = EventIn(
        device=ev.device,
        severity=ev.severity,
        summary=ev.summary,
        component=ev.component,
        event_class=ev.event_class,
        event_key=ev.event_key,
        event_class_key=ev.event_class_key,
        message=ev.message,
        agent=ev.agent,
        source=ev.source,
        details=ev.details or {},
        dedupid=ev.dedupid,
    )
    return event_document(
        values,
        event_id=ev.id,
        status=ev.status,
        count=ev.count,
        first_time=ev.first_time,
        last_time=ev.last_time,
    )
