"""What operators and APIs do to events, and the incident actions each one queues.

Acknowledge, close, re-open and note; the actions queued follow the notification's options."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from incman.domain.lifecycle import incident_action_for
from incman.outbox.rows import Pending, add_action
from incman.store.catalog import Catalog, NotificationDef
from incman.store.models import OPEN_EVENT_STATUSES, AuditEntry, Event, Note, utcnow
from incman.store.queries import linked_incidents


class EventStateError(ValueError):
    """The event is not in a state that allows the operation."""


def _queue_for_links(
    session: Session, catalog: Catalog, event: Event, change: str, payload: dict | None = None
) -> list[Pending]:
    """Queue, for each incident linked to the event, what the change means for it."""
    out = []
    for link, inc in linked_incidents(session, [event.id])[event.id]:
        notif: NotificationDef | None = catalog.notifications.get(link.notification_id)
        if notif is None or not notif.enabled:
            continue
        kind = incident_action_for(
            change,
            notif.options,
            linked=True,
            manual=inc.manual,
            has_enabled_trigger=catalog.has_enabled_trigger(notif),
        )
        if kind is not None:
            out.append(
                add_action(
                    session, kind, notif, event_id=event.id, incident_id=inc.id, payload=payload
                )
            )
    return out


def _audit(session: Session, actor: str, action: str, event: Event, **detail: object) -> None:
    session.add(
        AuditEntry(actor=actor, action=action, target=f"event:{event.id}", detail=dict(detail))
    )


def acknowledge(session: Session, catalog: Catalog, event: Event, user: str) -> list[Pending]:
    if event.status not in OPEN_EVENT_STATUSES:
        raise EventStateError(f"event is {event.status}; only open events can be acknowledged")
    now = utcnow()
    event.status = "Acknowledged"
    event.acknowledged_by = user
    event.acknowledgement_time = now
    event.updated_at = now
    _audit(session, user, "acknowledge", event)
    pending = _queue_for_links(session, catalog, event, "acknowledge", {"assignee": user})
    return pending


def close(session: Session, catalog: Catalog, event: Event, user: str) -> list[Pending]:
    if event.status == "Closed":
        return []
    now = utcnow()
    event.status = "Closed"
    event.updated_at = now
    _audit(session, user, "close", event)
    pending = _queue_for_links(session, catalog, event, "close", {"by": user})
    return pending


def reopen(session: Session, catalog: Catalog, event: Event, user: str) -> list[Pending]:
    if event.status in OPEN_EVENT_STATUSES:
        return []
    newer = session.scalars(
        select(Event.id).where(
            Event.dedupid == event.dedupid,
            Event.status.in_(OPEN_EVENT_STATUSES),
            Event.id != event.id,
        )
    ).first()
    if newer is not None:
        # One open event per dedupid: its repeats already fold into the newer one.
        raise EventStateError(
            f"event {newer} with the same dedupid is open; re-open is "
            "refused so repeats keep folding into one event"
        )
    now = utcnow()
    event.status = "New"
    event.acknowledged_by = None
    event.acknowledgement_time = None
    event.clear_time = None
    event.updated_at = now
    _audit(session, user, "reopen", event)
    pending = _queue_for_links(session, catalog, event, "reopen", {"by": user})
    return pending


def add_note(
    session: Session,
    catalog: Catalog,
    event: Event,
    user: str,
    text: str,
    occurrence_id: str | None = None,
) -> Note:
    """The note on the event; copied to linked incidents (per their options) after commit,
    unless it is empty (an annotation created without text says nothing to an incident)."""
    now = utcnow()
    note = Note(
        id=str(uuid.uuid4()),
        event_id=event.id,
        occurrence_id=occurrence_id,
        author=user,
        text=text,
        created_at=now,
        updated_at=now,
    )
    session.add(note)
    session.flush()
    if text.strip():
        _queue_for_links(session, catalog, event, "note", {"noteId": note.id, "author": user})
    return note
