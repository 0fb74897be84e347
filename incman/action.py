"""Carry out one outbox action: the worker's whole job, without Celery.

Exactly-once effect on top of at-least-once delivery: an incident row is claimed (PENDING)
under the partial unique index before any remote call, its correlation key is fixed there,
and the remote create happens under a Redis lock after a `find` by that key."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from incman.catalog import NotificationDef, catalog_cache, get_catalog
from incman.db import new_session, session_scope
from incman.domain.lifecycle import (
    ASSOCIATE,
    CREATE,
    CREATE_WITH_WARNING,
    REOPEN_AND_ASSOCIATE,
    ack_event_after_create,
    association_note,
    decide_new_event,
)
from incman.domain.mapping import MappingError, apply_field_mapping, build_context
from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    NOTE,
    REOPEN,
    STATUS,
    Integration,
    RemoteIncident,
)
from incman.integrations.errors import NotSupported, PermanentError, TransientError
from incman.integrations.registry import integration_class
from incman.links import event_urls
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
from incman.redisconn import get_redis
from incman.selfmon import report_failure
from incman.suppression import creation_suppressed
from incman.views import event_document_from_row

log = logging.getLogger(__name__)

FINISHED = ("done", "skipped", "dead")


@dataclass
class Job:
    action_id: int
    kind: str
    notif: NotificationDef
    plugin: Integration
    event_id: str | None
    incident_id: str | None
    payload: dict[str, Any]


def make_plugin(notif: NotificationDef) -> Integration:
    return integration_class(notif.integration)(notif.resolved_config(), notif.id)


def remote_ref(inc: Incident) -> RemoteIncident:
    return RemoteIncident(
        remote_id=inc.remote_id or "",
        number=inc.number or "",
        url=inc.url or "",
        state=inc.state,
        remote_state=inc.remote_state or "",
    )


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

@dataclass
class Claim:
    """The outcome of linking an event to an incident of its notification."""

    incident_id: str
    decision: str  # a lifecycle decision: create, associate, reopen, create_warn
    already_linked: bool = False


def latest_incident(session: Session, notif_id: str, dedupid: str) -> Incident | None:
    """The incident an event with this dedupid would join: the open one for this
    notification+dedupid, else the last one linked to an event with this dedupid that has
    not aged out (manual associations included)."""
    inc = session.scalars(select(Incident).where(
        Incident.notification_id == notif_id, Incident.dedupid == dedupid,
        Incident.state.in_(OPEN_INCIDENT_STATES))).first()
    if inc is not None:
        return inc
    linked = (select(EventIncident.incident_id)
              .join(Event, Event.id == EventIncident.event_id)
              .where(EventIncident.notification_id == notif_id, Event.dedupid == dedupid,
                     Event.status != "Aged"))
    return session.scalars(select(Incident).where(Incident.id.in_(linked))
                           .order_by(Incident.created_at.desc()).limit(1)).first()


def _fresh_state(job: Job, inc: Incident) -> str:
    """The incident's state for the association rules: read from the remote when the
    options ask for it and the integration can; the local state otherwise."""
    options = job.notif.options
    wants_fresh = options.check_closed_before_assign or options.reopen_incident_on_reoccur
    if (not wants_fresh or inc.state == "PENDING" or inc.state not in OPEN_INCIDENT_STATES
            or not inc.remote_id or not job.plugin.supports(STATUS)):
        return inc.state
    fresh = job.plugin.get_status([remote_ref(inc)]).get(inc.remote_id)
    if fresh is not None and fresh.state != inc.state:
        inc.state = fresh.state
        inc.remote_state = fresh.remote_state
        inc.updated_at = utcnow()
    return inc.state


def _new_incident(job: Job, event: Event, manual: bool = False) -> Incident:
    now = utcnow()
    return Incident(
        id=str(uuid.uuid4()),
        notification_id=job.notif.id,
        integration=job.notif.integration,
        dedupid=event.dedupid,
        correlation_key=uuid.uuid4().hex,
        state="PENDING",
        origin_event_id=event.id,
        manual=manual,
        created_at=now,
        updated_at=now,
    )


def _claim_incident(job: Job, event: Event) -> Claim:
    """Link the event to an incident per the association rules, claiming a new PENDING
    incident when one must be created (the partial unique index makes the claim unique)."""
    notif = job.notif
    for _ in range(10):
        session = new_session()
        try:
            link = session.get(EventIncident, (event.id, notif.id))
            if link is not None:
                return Claim(link.incident_id, ASSOCIATE, already_linked=True)
            inc = latest_incident(session, notif.id, event.dedupid)
            state = _fresh_state(job, inc) if inc is not None else None
            decision = decide_new_event(notif.options, state, job.plugin.supports(REOPEN))
            if decision == CREATE_WITH_WARNING:
                log.warning("%s cannot re-open incidents: a new incident instead of re-opening "
                            "%s (notification %s)", job.plugin.name,
                            inc.number if inc else "?", notif.id)
            if decision == REOPEN_AND_ASSOCIATE and inc is not None:
                reopened = session.execute(  # type: ignore[attr-defined]
                    update(Incident)
                    .where(Incident.id == inc.id, Incident.state.in_(("RESOLVED", "CLOSED")))
                    .values(state="OPEN", updated_at=utcnow())
                ).rowcount
                if not reopened:  # another worker re-opened it first
                    decision = ASSOCIATE
            if decision in (CREATE, CREATE_WITH_WARNING) or inc is None:
                inc = _new_incident(job, event)
                session.add(inc)
                session.flush()  # the incident row first: the link refers to it
            session.add(EventIncident(event_id=event.id, notification_id=notif.id,
                                      incident_id=inc.id, associated_at=utcnow()))
            session.commit()
            return Claim(inc.id, decision)
        except IntegrityError as exc:
            log.debug("claim for %s lost a race: %s", event.dedupid, exc)
            session.rollback()  # another worker claimed it first: read again
        finally:
            session.close()
    raise TransientError(f"could not claim an incident for {event.dedupid!r}")


def build_fields(job: Job, event: Event) -> dict[str, Any]:
    doc = event_document_from_row(event)
    urls = event_urls(event.id, event.device)
    defaults = job.plugin.default_fields(doc, urls)
    if not job.notif.field_mapping:
        return defaults
    device = get_catalog().devices.get(event.device)
    context = build_context(doc, device, urls, defaults)
    return apply_field_mapping(defaults, job.notif.field_mapping, context)


def _lock_ttl(plugin: Integration) -> float:
    return plugin.call_budget() * 2 + 10


def ensure_remote(job: Job, incident_id: str, known_pending: bool = False) -> Incident:
    """Make sure the incident exists remotely: find by correlation key, else create.
    `known_pending`: the caller has just claimed it, so there is nothing to read first."""
    if not known_pending:
        with new_session() as session:
            inc = session.get(Incident, incident_id)
            if inc is None:
                raise PermanentError(f"incident {incident_id} is gone")
            if inc.state != "PENDING":
                return inc
    ttl = _lock_ttl(job.plugin)
    lock = get_redis().lock(f"incman:lock:incident:{incident_id}", timeout=ttl,
                            blocking_timeout=ttl)
    if not lock.acquire():
        raise TransientError(f"incident {incident_id} is being created by another worker")
    try:
        with session_scope() as session:
            inc = session.get(Incident, incident_id)
            if inc is None:
                raise PermanentError(f"incident {incident_id} is gone")
            if inc.state != "PENDING":
                return inc
            origin = session.get(Event, inc.origin_event_id) if inc.origin_event_id else None
            if origin is None:
                raise PermanentError(f"incident {incident_id} has no origin event")
            ref = _find(job, inc.correlation_key)
            if ref is None:
                ref = job.plugin.create(build_fields(job, origin), inc.correlation_key)
            inc.remote_id = ref.remote_id
            inc.number = ref.number
            inc.url = ref.url
            inc.state = ref.state if ref.state in ("OPEN", "ASSIGNED") else "OPEN"
            inc.remote_state = ref.remote_state
            inc.updated_at = utcnow()
            if ack_event_after_create(job.notif.options) and origin.status == "New":
                origin.status = "Acknowledged"
                origin.acknowledged_by = "incman"
                origin.acknowledgement_time = utcnow()
            return inc
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            log.warning("lock for incident %s expired before release", incident_id)


def _find(job: Job, key: str) -> RemoteIncident | None:
    try:
        return job.plugin.find(key)
    except NotSupported:
        log.warning("%s cannot look incidents up; creating without a duplicate check",
                    job.plugin.name)
        return None


def _note(job: Job, inc: Incident, text: str) -> None:
    if not job.plugin.supports(NOTE):
        log.info("%s has no notes: skipped note on %s (%s)", job.plugin.name, inc.number, text)
        return
    job.plugin.add_note(remote_ref(inc), text)


def _load_event(event_id: str | None) -> Event | None:
    if event_id is None:
        return None
    with new_session() as session:
        return session.get(Event, event_id)


def handle_create(job: Job) -> str:
    event = _load_event(job.event_id)
    if event is None:
        return "skipped"
    if creation_suppressed(job, event):
        return "suppressed"
    claim = _claim_incident(job, event)
    inc = ensure_remote(job, claim.incident_id,
                        known_pending=claim.decision in (CREATE, CREATE_WITH_WARNING))
    if claim.already_linked or inc.origin_event_id == event.id:
        return "done"
    if claim.decision == REOPEN_AND_ASSOCIATE:
        job.plugin.reopen(remote_ref(inc), f"Re-opened: the event re-occurred ({event.id})")
    _note(job, inc, association_note(event.id))
    return "done"


def handle_reoccur(job: Job) -> str:
    event = _load_event(job.event_id)
    if event is None:
        return "skipped"
    with new_session() as session:
        link = session.get(EventIncident, (event.id, job.notif.id))
    if link is None:
        return handle_create(job)
    inc = ensure_remote(job, link.incident_id)
    if inc.state in OPEN_INCIDENT_STATES:
        _note(job, inc, f"Event {event.id} occurred again (count {event.count}): {event.summary}")
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
    event = _load_event(job.event_id)
    summary = event.summary if event is not None else ""
    if _open_linked_events(inc.id) > 0:
        _note(job, inc, f"Event {job.event_id} cleared: {summary}")
        return "done"
    if not job.plugin.supports(CLOSE):
        log.info("%s cannot close incidents: clear of %s only noted", job.plugin.name, inc.number)
        _note(job, inc, f"Event {job.event_id} cleared: {summary}")
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


def handle_create_manual(job: Job) -> str:
    """An incident created by hand from the event console: already claimed, create it."""
    if job.incident_id is None:
        return "skipped"
    ensure_remote(job, job.incident_id)
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
