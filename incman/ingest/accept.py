"""Accept events: store (folding repeats), match triggers, write the outbox — one transaction.

The caller commits, then answers; the outbox rows are sent once the commit is durable
(incman.outbox.sender)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select, text, update
from sqlalchemy.orm import Session

from incman.domain.event import EventIn, event_document, is_self_monitoring
from incman.domain.lifecycle import incident_action_for, incident_update_for
from incman.logs import ACTIVITY
from incman.outbox.rows import Pending, action_row, add_action, add_actions
from incman.store.bulk import insert_rows, upsert_events
from incman.store.catalog import Catalog
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    Event,
    EventIncident,
    Incident,
    Occurrence,
    utcnow,
)

_OPEN_SQL = text("status IN ('New', 'Acknowledged', 'Suppressed')")
activity = logging.getLogger(ACTIVITY)
ACCEPTED_KEY = "incman.ingest.accepted"
LINES_PER_BATCH = 20  # a larger batch is told in one line


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


@dataclass
class IngestBatch:
    accepted: list[Accepted] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)


def _event_row(ev: EventIn, arrivals: int, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "dedupid": ev.dedupid,
        "device": ev.device,
        "component": ev.component,
        "event_class": ev.event_class,
        "event_key": ev.event_key,
        "event_class_key": ev.event_class_key,
        "severity": ev.severity,
        "summary": ev.summary,
        "message": ev.message,
        "status": "New",
        "count": arrivals,
        "first_time": now,
        "last_time": now,
        "agent": ev.agent,
        "source": ev.source,
        "details": ev.details,
        "updated_at": now,
    }


def _occurrence_row(event_id: str, count: int, ev: EventIn, now: datetime) -> dict[str, Any]:
    return {
        "id": f"{event_id}:{count}",
        "event_id": event_id,
        "seq": count,
        "received_at": now,
        "severity": ev.severity,
        "summary": ev.summary,
    }


def _queue_clears(
    session: Session, catalog: Catalog, matched: list[str], batch: IngestBatch
) -> None:
    """Send Clear: one `clear` action per incident linked to the cleared events (a manual
    incident only where its notification also has an enabled trigger)."""
    links = session.execute(
        select(
            EventIncident.incident_id,
            EventIncident.notification_id,
            EventIncident.event_id,
            Incident.manual,
        )
        .join(Incident, Incident.id == EventIncident.incident_id)
        .where(EventIncident.event_id.in_(matched))
    ).all()
    seen: set[str] = set()
    for incident_id, notification_id, event_id, manual in links:
        notif = catalog.notifications.get(notification_id)
        if notif is None or not notif.enabled or incident_id in seen:
            continue
        kind = incident_action_for(
            "clear",
            notif.options,
            linked=True,
            manual=manual,
            has_enabled_trigger=catalog.has_enabled_trigger(notif),
        )
        if kind is None:
            continue
        seen.add(incident_id)
        batch.pending.append(
            add_action(session, "clear", notif, event_id=event_id, incident_id=incident_id)
        )
        if incident_update_for("clear", notif.options) is not None:
            batch.pending.append(
                add_action(
                    session,
                    "update",
                    notif,
                    event_id=event_id,
                    incident_id=incident_id,
                    payload={"change": "clear"},
                )
            )


def _accept_clear(
    session: Session, ev: EventIn, catalog: Catalog, now: datetime, batch: IngestBatch
) -> Accepted:
    """A clear sets the matching open events to Cleared; Send Clear updates incidents. An
    unmatched clear is stored as Cleared."""
    matched = list(
        session.scalars(
            select(Event.id)
            .where(
                Event.device == ev.device,
                Event.component == ev.component,
                Event.event_class == ev.event_class,
                Event.event_key == ev.event_key,
                Event.status.in_(OPEN_EVENT_STATUSES),
            )
            .with_for_update()
        )
    )
    if matched:
        session.execute(
            update(Event)
            .where(Event.id.in_(matched))
            .values(status="Cleared", clear_time=now, last_time=now, updated_at=now)
        )
        _queue_clears(session, catalog, matched, batch)
        return Accepted(matched[0], ev.dedupid, 1, "Cleared", False, cleared=matched)
    row = {**_event_row(ev, 1, now), "severity": 0, "status": "Cleared", "clear_time": now}
    session.execute(insert(Event), [row])
    session.execute(insert(Occurrence), [_occurrence_row(row["id"], 1, ev, now)])
    return Accepted(row["id"], ev.dedupid, 1, "Cleared", True)


def _actions_for(
    ev: EventIn, doc: dict[str, Any], created: bool, catalog: Catalog, now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows one arrival queues: a create for a new event, per the options for a
    repeat; incman's own events never trigger anything."""
    if is_self_monitoring(ev.event_class):
        return []
    rows = []
    for notif in catalog.matching_notifications(doc, catalog.devices.get(ev.device)):
        kind = "create" if created else incident_action_for("reoccur", notif.options, linked=False)
        if kind is not None:
            rows.append(action_row(kind, notif, doc["eventId"], now=now))
        if not created and incident_update_for("reoccur", notif.options) is not None:
            payload = {"change": "reoccur"}
            rows.append(action_row("update", notif, doc["eventId"], payload=payload, now=now))
    return rows


def _accept_run(
    session: Session, events: list[EventIn], catalog: Catalog, batch: IngestBatch
) -> None:
    """Store a run of events (no clears) with one statement per table; repeats of one
    dedupid inside the run fold into one row, each arrival keeping its own occurrence."""
    if not events:
        return
    now = utcnow()
    groups: dict[str, list[int]] = {}
    for index, ev in enumerate(events):
        groups.setdefault(ev.dedupid, []).append(index)
    params = [_event_row(events[idx[-1]], len(idx), now) for idx in groups.values()]
    stored = upsert_events(session, params)
    results: list[Accepted | None] = [None] * len(events)
    occurrences: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for dedupid, idx in groups.items():
        event_id, total, status, first_time = stored[dedupid]
        for offset, index in enumerate(idx):
            ev = events[index]
            count = total - len(idx) + offset + 1
            results[index] = Accepted(event_id, dedupid, count, status, count == 1)
            occurrences.append(_occurrence_row(event_id, count, ev, now))
            doc = event_document(
                ev,
                event_id=event_id,
                status=status,
                count=count,
                first_time=first_time,
                last_time=now,
            )
            actions += _actions_for(ev, doc, count == 1, catalog, now)
    insert_rows(session, Occurrence, occurrences)
    batch.pending.extend(add_actions(session, actions))
    batch.accepted.extend(r for r in results if r is not None)


def accept(session: Session, events: list[EventIn], catalog: Catalog) -> IngestBatch:
    """Accept validated events in the caller's transaction (their actions are sent once it
    commits); the results come in the order of the events."""
    batch = IngestBatch()
    run: list[EventIn] = []
    for ev in events:
        if ev.is_clear:
            _accept_run(session, run, catalog, batch)
            run = []
            batch.accepted.append(_accept_clear(session, ev, catalog, utcnow(), batch))
        else:
            run.append(ev)
    _accept_run(session, run, catalog, batch)
    if activity.isEnabledFor(logging.INFO):
        session.info.setdefault(ACCEPTED_KEY, []).extend(batch.accepted)
    return batch


@event.listens_for(Session, "after_commit")
def _told_after_commit(session: Session) -> None:
    """One activity line per event accepted, once it is durable."""
    accepted: list[Accepted] | None = session.info.pop(ACCEPTED_KEY, None)
    if not accepted:
        return
    if len(accepted) > LINES_PER_BATCH:
        new = sum(1 for a in accepted if a.created)
        activity.info("%d events accepted (%d new)", len(accepted), new)
        return
    for item in accepted:
        verb = "accepted" if item.created else f"folded (count {item.count})"
        activity.info("event %s %s: %s, %s", item.event_id, verb, item.dedupid, item.status)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(ACCEPTED_KEY, None)
