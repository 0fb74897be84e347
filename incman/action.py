"""Carry out one outbox action: the worker's whole job, without Celery. Creation lives in
incman.creation; the handlers here follow the event's changes onto its incidents."""

from __future__ import annotations

import logging

import redis
from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError

from incman.catalog import catalog_cache, get_catalog
from incman.creation import ensure_remote, handle_create, handle_create_manual
from incman.db import new_session, session_scope
from incman.domain.mapping import MappingError
from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    NOTE,
    REOPEN,
)
from incman.integrations.errors import PermanentError, TransientError
from incman.job import Job, load_event, make_plugin, note_on, remote_ref
from incman.metrics import observe_queue_latency
from incman.models import (
    OPEN_EVENT_STATUSES,
    OPEN_INCIDENT_STATES,
    Action,
    Event,
    EventIncident,
    Incident,
    Note,
    utcnow,
)
from incman.selfmon import report_failure

log = logging.getLogger(__name__)

FINISHED = ("done", "skipped", "dead")


def _finish(action_id: int, status: str, error: str | None = None) -> None:
    with session_scope() as session:
        action = session.get(Action, action_id)
        if action is not None:
            action.status = status
            action.last_error = error
            action.updated_at = utcnow()


def run_action(action_id: int) -> str:
    """Do the action; returns its final status. Raises TransientError to be retried."""
    with session_scope() as session:
        action = session.get(Action, action_id)
        if action is None:
            return "missing"
        if action.status in FINISHED:
            return action.status
        if action.attempts == 0:  # how long the action waited for its first worker
            observe_queue_latency(action.integration,
                                  (utcnow() - action.created_at).total_seconds())
        action.attempts += 1
        action.status = "running"
        action.updated_at = utcnow()
        kind, notification_id = action.kind, action.notification_id
        event_id, incident_id, payload = action.event_id, action.incident_id, dict(action.payload)
    notif = get_catalog().notifications.get(notification_id)
    if notif is None:  # perhaps created over the API a moment ago: read the catalog again
        catalog_cache.invalidate()
        notif = get_catalog().notifications.get(notification_id)
    if notif is None or not notif.enabled:
        log.info("action %s skipped: notification %s is gone or disabled", action_id,
                 notification_id)
        _finish(action_id, "skipped", "notification missing or disabled")
        return "skipped"
    try:
        plugin = make_plugin(notif)
        job = Job(action_id, kind, notif, plugin, event_id, incident_id, payload)
        handler = HANDLERS.get(kind)
        if handler is None:
            raise PermanentError(f"unknown action kind {kind!r}")
        try:
            outcome = handler(job)
        finally:
            plugin.shutdown()
    except TransientError as exc:
        _finish(action_id, "pending", str(exc))
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        _finish(action_id, "pending", f"redis: {exc}")
        raise TransientError(f"redis unavailable: {exc}") from exc
    except (OperationalError, InterfaceError) as exc:
        _finish(action_id, "pending", f"database: {exc.__class__.__name__}")
        raise TransientError(f"database unavailable: {exc.__class__.__name__}") from exc
    except (PermanentError, MappingError) as exc:
        give_up(action_id, str(exc), notification_id, kind, event_id)
        return "dead"
    except Exception as exc:
        log.exception("action %s failed unexpectedly", action_id)
        give_up(action_id, f"internal error: {exc!r}", notification_id, kind, event_id)
        return "dead"
    _finish(action_id, outcome)
    return outcome


def give_up(action_id: int, error: str, notification_id: str | None = None,
            kind: str | None = None, event_id: str | None = None) -> None:
    """Dead-letter the action and raise a failure event."""
    if notification_id is None:
        with session_scope() as session:
            action = session.get(Action, action_id)
            if action is None:
                return
            notification_id, kind, event_id = action.notification_id, action.kind, action.event_id
    log.error("action %s (%s for %s) failed: %s", action_id, kind, notification_id, error)
    _finish(action_id, "dead", error)
    report_failure(notification_id or "", kind or "act", error, event_id)


# -- creation ------------------------------------------------------------------------------

def handle_reoccur(job: Job) -> str:
    event = load_event(job.event_id)
    if event is None:
        return "skipped"
    with new_session() as session:
        link = session.get(EventIncident, (event.id, job.notif.id))
    if link is None:
        return handle_create(job)
    inc = ensure_remote(job, link.incident_id)
    if inc.state in OPEN_INCIDENT_STATES:
        note_on(job, inc, f"Event {event.id} occurred again (count {event.count}): {event.summary}")
    return "done"


def _open_linked_events(incident_id: str) -> int:
    with new_session() as session:
        return int(session.scalar(
            select(func.count())
            .select_from(EventIncident)
            .join(Event, Event.id == EventIncident.event_id)
            .where(EventIncident.incident_id == incident_id,
                   Event.status.in_(OPEN_EVENT_STATUSES))
        ) or 0)


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
    log.info("%s cannot %s incidents: skipped %s on %s (notification %s)", job.plugin.name,
             capability, job.kind, inc.number, job.notif.id)
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
    return "done"


def handle_reopen(job: Job) -> str:
    """Event re-opened → incident re-opened."""
    inc = _linked_incident(job)
    if inc is None or inc.state in OPEN_INCIDENT_STATES:
        return "skipped"
    if not job.plugin.supports(REOPEN):
        return _unsupported(job, REOPEN, inc)
    by = job.payload.get("by", "")
    job.plugin.reopen(remote_ref(inc), f"Event {job.event_id} re-opened by {by}")
    _set_state(inc.id, "OPEN")
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


HANDLERS = {
    "create_manual": handle_create_manual,
    "assign": handle_assign,
    "close": handle_close,
    "reopen": handle_reopen,
    "note": handle_note,
    "create": handle_create,
    "reoccur": handle_reoccur,
    "clear": handle_clear,
}
