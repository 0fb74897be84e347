"""Follow an event's changes onto its incidents.

Re-occurrence, clear, assign, close, re-open and notes, each per the notification's options and
the plugin's capabilities."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from incman.actions.create import build_fields, ensure_remote, handle_create, replace_closed
from incman.actions.job import Job, load_event, note_on, record_remote_state
from incman.integrations.base import ASSIGN, CLOSE, NOTE, REOPEN, UPDATE
from incman.integrations.errors import CannotReopen
from incman.store.db import new_session, session_scope
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    OPEN_INCIDENT_STATES,
    Event,
    EventIncident,
    Incident,
    Note,
    utcnow,
)
from incman.store.plugins import remote_ref

log = logging.getLogger(__name__)


def handle_reoccur(job: Job) -> str:
    event = load_event(job.event_id)
    if event is None:
        return "skipped"
    with new_session() as session:
        link = session.get(EventIncident, (event.id, job.notif.id))
    if link is None:
        # Before the event's own create has linked it (they race on busy workers): create
        # or join first, then the re-occurrence still gets its note.
        outcome = handle_create(job)
        with new_session() as session:
            link = session.get(EventIncident, (event.id, job.notif.id))
        if outcome != "done" or link is None:
            return outcome
    inc = ensure_remote(job, link.incident_id)
    if inc.state in OPEN_INCIDENT_STATES:
        note_on(job, inc, f"Event {event.id} occurred again (count {event.count}): {event.summary}")
    return "done"


def _open_linked_events(incident_id: str) -> int:
    with new_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(EventIncident)
                .join(Event, Event.id == EventIncident.event_id)
                .where(
                    EventIncident.incident_id == incident_id, Event.status.in_(OPEN_EVENT_STATUSES)
                )
            )
            or 0
        )


def handle_clear(job: Job) -> str:
    """Send Clear: close the incident once none of its events is still open."""
    if job.incident_id is None:
        return "skipped"
    inc = ensure_remote(job, job.incident_id)
    if inc.state not in OPEN_INCIDENT_STATES:
        return "done"
    event = load_event(job.event_id)
    summary = event.summary if event is not None else ""
    if _open_linked_events(inc.id) > 0:
        note_on(job, inc, f"Event {job.event_id} cleared: {summary}")
        return "done"
    if not job.plugin.supports(CLOSE):
        log.info("%s cannot close incidents: clear of %s only noted", job.plugin.name, inc.number)
        note_on(job, inc, f"Event {job.event_id} cleared: {summary}")
        return "done"
    job.plugin.close(remote_ref(inc), f"Event cleared: {summary}")
    with session_scope() as session:
        row = session.get(Incident, inc.id)
        if row is not None:
            row.state = "CLOSED"
            row.updated_at = utcnow()
    record_remote_state(job, inc, "CLOSED")
    return "done"


def _linked_incident(job: Job) -> Incident | None:
    if job.incident_id is None:
        return None
    inc = ensure_remote(job, job.incident_id)
    return inc


def _set_state(incident_id: str, state: str) -> None:
    with session_scope() as session:
        row = session.get(Incident, incident_id)
        if row is not None:
            row.state = state
            row.updated_at = utcnow()


def _unsupported(job: Job, capability: str, inc: Incident) -> str:
    log.info(
        "%s cannot %s incidents: skipped %s on %s (notification %s)",
        job.plugin.name,
        capability,
        job.kind,
        inc.number,
        job.notif.id,
    )
    return "skipped"


def handle_assign(job: Job) -> str:
    """Event acknowledged → incident assigned again."""
    inc = _linked_incident(job)
    if inc is None or inc.state not in OPEN_INCIDENT_STATES:
        return "skipped"
    if not job.plugin.supports(ASSIGN):
        return _unsupported(job, ASSIGN, inc)
    job.plugin.assign(remote_ref(inc), str(job.payload.get("assignee", "")))
    _set_state(inc.id, "ASSIGNED")
    record_remote_state(job, inc, "ASSIGNED")
    return "done"


def handle_close(job: Job) -> str:
    """Event closed → incident closed."""
    inc = _linked_incident(job)
    if inc is None or inc.state not in OPEN_INCIDENT_STATES:
        return "skipped"
    if not job.plugin.supports(CLOSE):
        return _unsupported(job, CLOSE, inc)
    job.plugin.close(remote_ref(inc), f"Event {job.event_id} closed by {job.payload.get('by', '')}")
    _set_state(inc.id, "CLOSED")
    record_remote_state(job, inc, "CLOSED")
    return "done"


def handle_reopen(job: Job) -> str:
    """Event re-opened → incident re-opened."""
    inc = _linked_incident(job)
    if inc is None or inc.state in OPEN_INCIDENT_STATES:
        return "skipped"
    if not job.plugin.supports(REOPEN):
        if job.event_id is None:
            return _unsupported(job, REOPEN, inc)
        # as for a re-occurrence: an integration that cannot re-open gets a new incident
        replace_closed(job, inc, job.event_id, CannotReopen(f"{job.plugin.name} cannot re-open"))
        return "done"
    by = job.payload.get("by", "")
    try:
        job.plugin.reopen(remote_ref(inc), f"Event {job.event_id} re-opened by {by}")
    except CannotReopen as exc:
        if job.event_id is None:
            raise
        replace_closed(job, inc, job.event_id, exc)
        return "done"
    _set_state(inc.id, "OPEN")
    record_remote_state(job, inc, "OPEN")
    return "done"


def handle_note(job: Job) -> str:
    """Note on the event → note on the incident."""
    inc = _linked_incident(job)
    if inc is None:
        return "skipped"
    if not job.plugin.supports(NOTE):
        return _unsupported(job, NOTE, inc)
    with new_session() as session:
        note = session.get(Note, str(job.payload.get("noteId", "")))
        if note is None:
            return "skipped"
        text = f"{note.author}: {note.text}" if note.author else note.text
    job.plugin.add_note(remote_ref(inc), text)
    return "done"


def handle_update(job: Job) -> str:
    """The event changed (it re-occurred, or cleared with Send Clear): the incident's fields
    rendered again from it, with the defaults and the field mapping a create uses, and sent
    with the integration's `update` (Slack posts its `update_template`). Skipped when the
    incident is not open, or when the clear closes it (its close message says so)."""
    event = load_event(job.event_id)
    if event is None:
        return "skipped"
    incident_id = job.incident_id
    if incident_id is None:  # a repeat: whatever the event is linked to by now
        with new_session() as session:
            link = session.get(EventIncident, (event.id, job.notif.id))
        if link is None:
            return "skipped"  # no incident yet: its create renders the fields itself
        incident_id = link.incident_id
    inc = ensure_remote(job, incident_id)
    if inc.state not in OPEN_INCIDENT_STATES:
        return "skipped"
    closing = job.plugin.supports(CLOSE) and _open_linked_events(inc.id) == 0
    if job.payload.get("change") == "clear" and closing:
        return "skipped"
    if not job.plugin.supports(UPDATE) or not job.plugin.updates_on_change:
        return _unsupported(job, UPDATE, inc)
    job.plugin.update(remote_ref(inc), build_fields(job, event))
    return "done"
