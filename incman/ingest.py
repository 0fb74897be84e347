"""Accept events: store (folding repeats), match triggers, write the outbox — one transaction.

The caller commits, answers, and only then enqueues the returned actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from incman.catalog import Catalog, NotificationDef
from incman.domain.event import EventIn, is_self_monitoring
from incman.domain.lifecycle import incident_action_for
from incman.models import (
    OPEN_EVENT_STATUSES,
    Action,
    Event,
    EventIncident,
    Incident,
    Occurrence,
    utcnow,
)

_OPEN_SQL = text("status IN ('New', 'Acknowledged', 'Suppressed')")


@dataclass
class Accepted:
    """What ingest did with one event."""

    event_id: str
    dedupid: str
    count: int
    status: str
    created: bool
    cleared: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "eventId": self.event_id,
            "dedupid": self.dedupid,
            "count": self.count,
            "status": self.status,
            "created": self.created,
        }
        if self.cleared:
            out["cleared"] = self.cleared
        return out


@dataclass(frozen=True)
class Pending:
    """An outbox row to enqueue after commit."""

    action_id: int
    integration: str


@dataclass
class IngestBatch:
    accepted: list[Accepted] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)


def event_document(ev: EventIn, event_id: str, count: int, status: str,
                   catalog: Catalog) -> dict[str, Any]:
    """The event as trigger conditions see it (API field names, plus `dev`)."""
    return {
        "eventId": event_id,
        "dedupid": ev.dedupid,
        "device": ev.device,
        "component": ev.component,
        "eventClass": ev.event_class,
        "eventKey": ev.event_key,
        "eventClassKey": ev.event_class_key,
        "severity": ev.severity,
        "summary": ev.summary,
        "message": ev.message,
        "status": status,
        "count": count,
        "agent": ev.agent,
        "source": ev.source,
        "details": ev.details,
        "dev": catalog.devices.get(ev.device, {}),
    }


def _insert_for(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database {name!r}: use PostgreSQL or SQLite")


def _upsert_event(session: Session, ev: EventIn, now: datetime) -> tuple[str, int, str]:
    """Insert the event or fold it into the open one with the same dedupid."""
    insert = _insert_for(session)
    table = Event.__table__
    stmt = insert(table).values(
        id=str(uuid.uuid4()),
        dedupid=ev.dedupid,
        device=ev.device,
        component=ev.component,
        event_class=ev.event_class,
        event_key=ev.event_key,
        event_class_key=ev.event_class_key,
        severity=ev.severity,
        summary=ev.summary,
        message=ev.message,
        status="New",
        count=1,
        first_time=now,
        last_time=now,
        agent=ev.agent,
        source=ev.source,
        details=ev.details,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.dedupid],
        index_where=_OPEN_SQL,
        set_={
            "count": table.c.count + 1,
            "last_time": now,
            "summary": stmt.excluded.summary,
            "message": stmt.excluded.message,
            "details": stmt.excluded.details,
            "updated_at": now,
        },
    ).returning(table.c.id, table.c.count, table.c.status)
    row = session.execute(stmt).one()
    return row[0], row[1], row[2]


def add_action(session: Session, kind: str, notif: NotificationDef, *, event_id: str | None,
               incident_id: str | None = None, payload: dict[str, Any] | None = None) -> Pending:
    """Write one outbox row (flushed, so it has an id)."""
    action = Action(
        kind=kind,
        notification_id=notif.id,
        integration=notif.integration,
        event_id=event_id,
        incident_id=incident_id,
        payload=payload or {},
        status="pending",
        attempts=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(action)
    session.flush()
    return Pending(action.id, notif.integration)


def _accept_clear(session: Session, ev: EventIn, catalog: Catalog, now: datetime,
                  batch: IngestBatch) -> Accepted:
    """A clear sets the matching open events to Cleared; Send Clear updates incidents."""
    matched = list(session.scalars(
        select(Event.id).where(
            Event.device == ev.device,
            Event.component == ev.component,
            Event.event_class == ev.event_class,
            Event.event_key == ev.event_key,
            Event.status.in_(OPEN_EVENT_STATUSES),
        ).with_for_update()
    ))
    if matched:
        session.execute(
            update(Event)
            .where(Event.id.in_(matched))
            .values(status="Cleared", clear_time=now, last_time=now, updated_at=now)
        )
        links = session.execute(
            select(EventIncident.incident_id, EventIncident.notification_id, EventIncident.event_id)
            .where(EventIncident.event_id.in_(matched))
        ).all()
        seen: set[str] = set()
        for incident_id, notification_id, event_id in links:
            notif = catalog.notifications.get(notification_id)
            if notif is None or not notif.enabled or incident_id in seen:
                continue
            if incident_action_for("clear", notif.options, linked=True) is None:
                continue
            seen.add(incident_id)
            batch.pending.append(
                add_action(session, "clear", notif, event_id=event_id, incident_id=incident_id)
            )
        first = matched[0]
        return Accepted(first, ev.dedupid, 1, "Cleared", False, cleared=matched)
    # An unmatched clear is stored as Cleared.
    event_id = str(uuid.uuid4())
    session.add(Event(
        id=event_id, dedupid=ev.dedupid, device=ev.device, component=ev.component,
        event_class=ev.event_class, event_key=ev.event_key, event_class_key=ev.event_class_key,
        severity=0, summary=ev.summary, message=ev.message, status="Cleared", count=1,
        first_time=now, last_time=now, agent=ev.agent, source=ev.source, details=ev.details,
        clear_time=now, updated_at=now,
    ))
    session.add(Occurrence(id=f"{event_id}:1", event_id=event_id, seq=1, received_at=now,
                           severity=0, summary=ev.summary))
    return Accepted(event_id, ev.dedupid, 1, "Cleared", True)


def accept_one(session: Session, ev: EventIn, catalog: Catalog, batch: IngestBatch) -> Accepted:
    """Store one validated event and queue what its notifications must do."""
    now = utcnow()
    if ev.is_clear:
        result = _accept_clear(session, ev, catalog, now, batch)
        batch.accepted.append(result)
        return result
    event_id, count, status = _upsert_event(session, ev, now)
    session.add(Occurrence(id=f"{event_id}:{count}", event_id=event_id, seq=count,
                           received_at=now, severity=ev.severity, summary=ev.summary))
    created = count == 1
    result = Accepted(event_id, ev.dedupid, count, status, created)
    batch.accepted.append(result)
    if is_self_monitoring(ev.event_class):
        return result
    doc = event_document(ev, event_id, count, status, catalog)
    for notif in catalog.matching_notifications(doc):
        kind = "create" if created else incident_action_for("reoccur", notif.options,
                                                             linked=False)
        if kind is None:
            continue
        batch.pending.append(add_action(session, kind, notif, event_id=event_id))
    return result


def accept(session: Session, events: list[EventIn], catalog: Catalog) -> IngestBatch:
    """Accept validated events in the caller's transaction (commit, then enqueue)."""
    batch = IngestBatch()
    for ev in events:
        accept_one(session, ev, catalog, batch)
    return batch


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
