"""Opening incidents: the remote create, the association of later events, and replacements.

The remote create runs under a Redis lock after a `find` by the incident's correlation key
(exactly-once effect on top of at-least-once delivery); an incident the remote cannot re-open
is replaced. The association plan and claim live in incman.actions.association."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from incman.actions.association import claim_incident, new_incident
from incman.actions.job import Job, load_event, note_on, record_remote_state
from incman.domain.lifecycle import (
    CREATE,
    CREATE_WITH_WARNING,
    REOPEN_AND_ASSOCIATE,
    ack_event_after_create,
    association_note,
)
from incman.domain.mapping import apply_field_mapping
from incman.domain.mapping_context import DmdView, build_context
from incman.integrations.base import (
    Integration,
    RemoteIncident,
)
from incman.integrations.errors import (
    CannotReopen,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.logs import ACTIVITY, bind_log
from incman.store.catalog import get_catalog
from incman.store.db import new_session, session_scope
from incman.store.documents import event_document_from_row
from incman.store.links import event_urls
from incman.store.locks import acquire, incident_lock, release_many
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    OPEN_INCIDENT_STATES,
    Event,
    EventIncident,
    Incident,
    utcnow,
)
from incman.store.plugins import remote_ref

log = logging.getLogger(__name__)
activity = logging.getLogger(ACTIVITY)


def build_fields(job: Job, event: Event) -> dict[str, Any]:
    doc = event_document_from_row(event)
    urls = event_urls(event.id, event.device)
    catalog = get_catalog()
    device = catalog.devices.get(event.device)
    defaults = job.plugin.default_fields(doc, device, urls)
    if not job.notif.field_mapping:
        return defaults
    dmd = DmdView(catalog.devices, catalog.configuration_view())
    context = build_context(doc, device, urls, defaults, dmd)
    return apply_field_mapping(defaults, job.notif.field_mapping, context)


def lock_ttl(plugin: Integration[Any]) -> float:
    """How long a creation lock lasts: past the remote calls a create may make."""
    return plugin.call_budget() * 2 + 10


def ensure_remote(job: Job, incident_id: str, known_pending: bool = False) -> Incident:
    """Make sure the incident exists remotely: find by correlation key, else create.
    `known_pending`: the caller has just claimed it, so there is nothing to read first."""
    bind_log(incidentId=incident_id)
    if not known_pending:
        with new_session() as session:
            inc = session.get(Incident, incident_id)
            if inc is None:
                raise PermanentError(f"incident {incident_id} is gone")
            bind_log(incident=inc.number, correlationKey=inc.correlation_key)
            if inc.state != "PENDING":
                return inc
    ttl = lock_ttl(job.plugin)
    key = incident_lock(incident_id)
    holding = acquire(key, ttl, wait=ttl)
    if holding is None:
        raise TransientError(f"incident {incident_id} is being created by another worker")
    try:
        with session_scope() as session:
            inc = session.get(Incident, incident_id)
            if inc is None:
                raise PermanentError(f"incident {incident_id} is gone")
            bind_log(correlationKey=inc.correlation_key)
            if inc.state != "PENDING":
                return inc
            origin = session.get(Event, inc.origin_event_id) if inc.origin_event_id else None
            if origin is None:
                raise PermanentError(f"incident {incident_id} has no origin event")
            _open_remote(job, inc, origin)
        bind_log(incident=inc.number)
        activity.info("incident %s opened (%s) for event %s", inc.number, job.notif.id, origin.id)
        return inc
    finally:
        if not release_many([key], holding):
            log.warning("lock for incident %s expired before release", incident_id)


def _open_remote(job: Job, inc: Incident, origin: Event) -> None:
    """Find the incident by its correlation key, else create it; record what the remote
    answered on the PENDING row (committed by the caller)."""
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


def find_or_create(job: Job, fields: dict[str, Any], key: str) -> RemoteIncident:
    """The remote incident of this correlation key: found, else created with `fields`."""
    return _find(job, key) or job.plugin.create(fields, key)


def _find(job: Job, key: str) -> RemoteIncident | None:
    try:
        return job.plugin.find(key)
    except NotSupported:
        if not job.plugin.idempotent_create:
            log.warning(
                "%s cannot look incidents up; creating without a duplicate check",
                job.plugin.name,
            )
        return None


def handle_create(job: Job) -> str:
    event = load_event(job.event_id)
    if event is None:
        return "skipped"
    claim = claim_incident(job, event)
    if claim is None:
        return "suppressed"
    inc = ensure_remote(
        job, claim.incident_id, known_pending=claim.decision in (CREATE, CREATE_WITH_WARNING)
    )
    if claim.already_linked or inc.origin_event_id == event.id:
        return "done"
    if claim.decision == REOPEN_AND_ASSOCIATE:
        try:
            job.plugin.reopen(remote_ref(inc), f"Re-opened: the event re-occurred ({event.id})")
        except CannotReopen as exc:
            replace_closed(job, inc, event.id, exc)
            return "done"
        record_remote_state(job, inc, "OPEN")
    note_on(job, inc, association_note(event.id))
    return "done"


def replace_closed(job: Job, old: Incident, event_id: str, reason: CannotReopen) -> Incident:
    """The remote cannot re-open `old`: as for integrations that cannot re-open at all, the
    event (and the other open events of `old`) get a new incident, and a warning is logged."""
    log.warning(
        "%s cannot re-open %s (%s): a new incident for event %s instead (notification %s)",
        job.plugin.name,
        old.number,
        reason,
        event_id,
        job.notif.id,
    )
    return ensure_remote(job, _claim_replacement(job, old.id, event_id))


def _claim_replacement(job: Job, old_id: str, event_id: str) -> str:
    """Mark `old` closed, then move the open events linked to it onto the open incident of
    their dedupid, a new PENDING one if there is none; its id. Idempotent: a retry finds
    the event moved already."""
    with session_scope() as session:
        link = session.get(EventIncident, (event_id, job.notif.id), with_for_update=True)
        event = session.get(Event, event_id)
        if link is None or event is None:
            raise PermanentError(f"event {event_id} is gone or no longer linked")
        if link.incident_id != old_id:
            return link.incident_id
        old = session.get(Incident, old_id, with_for_update=True)
        if old is not None and old.state in OPEN_INCIDENT_STATES:
            old.state, old.updated_at = "CLOSED", utcnow()  # closed for good at the remote
            session.flush()
        inc = session.scalars(
            select(Incident).where(
                Incident.notification_id == job.notif.id,
                Incident.dedupid == event.dedupid,
                Incident.state.in_(OPEN_INCIDENT_STATES),
            )
        ).first()
        if inc is None:
            inc = new_incident(job, event)
            session.add(inc)
            try:
                session.flush()
            except IntegrityError as exc:  # another worker opened one just now: join it
                raise TransientError(
                    f"an incident for {event.dedupid!r} was opened meanwhile"
                ) from exc
        moving = session.scalars(
            select(EventIncident)
            .join(Event, Event.id == EventIncident.event_id)
            .where(
                EventIncident.incident_id == old_id,
                EventIncident.notification_id == job.notif.id,
                Event.status.in_(OPEN_EVENT_STATUSES) | (Event.id == event_id),
            )
        )
        for moved in moving:
            moved.incident_id, moved.associated_at = inc.id, utcnow()
        return inc.id


def handle_create_manual(job: Job) -> str:
    """An incident created by hand from the event console: already claimed, create it."""
    if job.incident_id is None:
        return "skipped"
    ensure_remote(job, job.incident_id)
    return "done"
