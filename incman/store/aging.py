"""Event aging and retention, run from beat in batches of short transactions.

Aging (the monitoring platform's): open events below INCMAN_AGING_SEVERITY whose last
occurrence is older than INCMAN_AGING_AFTER seconds become `Aged` (0 turns aging off). Their
incidents are left alone: aging says the event went quiet, not that the problem was solved.
Retention: closed, cleared and aged events whose last change is older than
INCMAN_RETENTION_DAYS are deleted with their occurrences, notes, links and finished outbox
rows, and so are their incidents' local records once no event is linked and the incident is
no longer open (0 keeps everything)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.orm import Session

from incman.settings import get_settings
from incman.store.db import is_sqlite, relax_this_commit, session_scope
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    OPEN_INCIDENT_STATES,
    Action,
    Event,
    EventIncident,
    Incident,
    Note,
    Occurrence,
    utcnow,
)

BATCH = 1000
ENDED_STATUSES = ("Closed", "Cleared", "Aged")
FINISHED_ACTIONS = ("done", "skipped", "suppressed")


@dataclass
class BatchRun:
    """Rows changed and the number of batches (transactions) it took."""

    rows: int = 0
    batches: int = 0


def _take(query: Select[Any]) -> Select[Any]:
    """Rows a batch takes: locked, and skipped when another run holds them (PostgreSQL)."""
    return query if is_sqlite() else query.with_for_update(skip_locked=True)


def age_events(
    now: datetime | None = None,
    after_secs: int | None = None,
    below_severity: int | None = None,
    batch: int = BATCH,
) -> BatchRun:
    """Set old low-severity open events to Aged, `batch` rows per transaction."""
    settings = get_settings()
    after_secs = settings.aging_after if after_secs is None else after_secs
    below = settings.aging_severity if below_severity is None else below_severity
    run = BatchRun()
    if after_secs <= 0:
        return run
    now = now or utcnow()
    cutoff = now - timedelta(seconds=after_secs)
    wanted = (
        Event.status.in_(OPEN_EVENT_STATUSES),
        Event.severity < below,
        Event.last_time < cutoff,
    )
    while True:
        with session_scope() as session:
            relax_this_commit(session)  # lost in a crash: the next run ages the same rows
            ids = list(session.scalars(_take(select(Event.id).where(*wanted).limit(batch))))
            if ids:
                session.execute(
                    update(Event).where(Event.id.in_(ids)).values(status="Aged", updated_at=now)
                )
        if not ids:
            return run
        run.rows += len(ids)
        run.batches += 1
        if len(ids) < batch:
            return run


def _purge_batch(session: Session, ids: list[str]) -> None:
    incident_ids = set(
        session.scalars(select(EventIncident.incident_id).where(EventIncident.event_id.in_(ids)))
    )
    session.execute(delete(Occurrence).where(Occurrence.event_id.in_(ids)))
    session.execute(delete(Note).where(Note.event_id.in_(ids)))
    session.execute(delete(EventIncident).where(EventIncident.event_id.in_(ids)))
    session.execute(
        delete(Action).where(Action.event_id.in_(ids), Action.status.in_(FINISHED_ACTIONS))
    )
    session.execute(delete(Event).where(Event.id.in_(ids)))
    if not incident_ids:
        return
    orphans = list(
        session.scalars(
            select(Incident.id).where(
                Incident.id.in_(incident_ids),
                Incident.state.not_in(OPEN_INCIDENT_STATES),
                ~exists().where(EventIncident.incident_id == Incident.id),
            )
        )
    )
    if orphans:
        session.execute(
            delete(Action).where(
                Action.incident_id.in_(orphans), Action.status.in_(FINISHED_ACTIONS)
            )
        )
        session.execute(delete(Incident).where(Incident.id.in_(orphans)))


def purge_expired(
    now: datetime | None = None, retention_days: int | None = None, batch: int = BATCH
) -> BatchRun:
    """Delete ended events past retention, with their local records, `batch` per transaction."""
    days = get_settings().retention_days if retention_days is None else retention_days
    run = BatchRun()
    if days <= 0:
        return run
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    wanted = (Event.status.in_(ENDED_STATUSES), Event.updated_at < cutoff)
    while True:
        with session_scope() as session:
            relax_this_commit(session)  # lost in a crash: the next run deletes them again
            ids = list(session.scalars(_take(select(Event.id).where(*wanted).limit(batch))))
            if ids:
                _purge_batch(session, ids)
        if not ids:
            return run
        run.rows += len(ids)
        run.batches += 1
        if len(ids) < batch:
            return run
