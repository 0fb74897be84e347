"""Opening incidents: the association rules, the claim of a PENDING incident under the
partial unique index, and the remote create under a Redis lock after a `find` by the
incident's correlation key (exactly-once effect on top of at-least-once delivery)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incman.actions.job import Job, load_event, note_on
from incman.actions.suppression import creation_suppressed
from incman.domain.lifecycle import (
    ASSOCIATE,
    CREATE,
    CREATE_WITH_WARNING,
    REOPEN_AND_ASSOCIATE,
    ack_event_after_create,
    association_note,
    decide_new_event,
)
from incman.domain.mapping import apply_field_mapping
from incman.domain.mapping_context import build_context
from incman.integrations.base import (
    REOPEN,
    STATUS,
    Integration,
    RemoteIncident,
)
from incman.integrations.errors import (
    CannotReopen,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.store.catalog import get_catalog
from incman.store.db import new_session, session_scope
from incman.store.documents import event_document_from_row
from incman.store.links import event_urls
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    OPEN_INCIDENT_STATES,
    Event,
    EventIncident,
    Incident,
    utcnow,
)
from incman.store.plugins import remote_ref
from incman.store.redisconn import get_redis

log = logging.getLogger(__name__)


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
    inc = session.scalars(
        select(Incident).where(
            Incident.notification_id == notif_id,
            Incident.dedupid == dedupid,
            Incident.state.in_(OPEN_INCIDENT_STATES),
        )
    ).first()
    if inc is not None:
        return inc
    linked = (
        select(EventIncident.incident_id)
        .join(Event, Event.id == EventIncident.event_id)
        .where(
            EventIncident.notification_id == notif_id,
            Event.dedupid == dedupid,
            Event.status != "Aged",
        )
    )
    return session.scalars(
        select(Incident)
        .where(Incident.id.in_(linked))
        .order_by(Incident.created_at.desc())
        .limit(1)
    ).first()


def _fresh_state(job: Job, inc: Incident) -> str:
    """The incident's state for the association rules: read from the remote when the
    options ask for it and the integration can; the local state otherwise."""
    options = job.notif.options
    wants_fresh = options.check_closed_before_assign or options.reopen_incident_on_reoccur
    if (
        not wants_fresh
        or inc.state == "PENDING"
        or inc.state not in OPEN_INCIDENT_STATES
        or not inc.remote_id
        or not job.plugin.supports(STATUS)
    ):
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


@dataclass
class Plan:
    """The association decision for one event, made once per create: what suppression
    counts and what the claim carries out."""

    decision: str  # a lifecycle decision: create, associate, reopen, create_warn
    incident: Incident | None = None  # the incident it would join or re-open
    linked_to: str | None = None  # already linked to this incident (a re-delivered create)

    @property
    def creates(self) -> bool:
        return self.linked_to is None and (
            self.decision in (CREATE, CREATE_WITH_WARNING) or self.incident is None
        )


def plan_association(session: Session, job: Job, event: Event) -> Plan:
    """Decide, by the association rules, what the event does with its notification."""
    link = session.get(EventIncident, (event.id, job.notif.id))
    if link is not None:
        return Plan(ASSOCIATE, linked_to=link.incident_id)
    inc = latest_incident(session, job.notif.id, event.dedupid)
    state = _fresh_state(job, inc) if inc is not None else None
    decision = decide_new_event(job.notif.options, state, job.plugin.supports(REOPEN))
    if decision == CREATE_WITH_WARNING:
        log.warning(
            "%s cannot re-open incidents: a new incident instead of re-opening %s "
            "(notification %s)",
            job.plugin.name,
            inc.number if inc else "?",
            job.notif.id,
        )
    return Plan(decision, inc)


def _carry_out(session: Session, job: Job, event: Event, plan: Plan) -> Claim:
    """Link the event per the plan, claiming a new PENDING incident when it creates (the
    partial unique index makes the claim unique; a lost race raises IntegrityError)."""
    if plan.linked_to is not None:
        return Claim(plan.linked_to, ASSOCIATE, already_linked=True)
    decision, inc = plan.decision, plan.incident
    if decision == REOPEN_AND_ASSOCIATE and inc is not None:
        reopened = session.execute(  # type: ignore[attr-defined]
            update(Incident)
            .where(Incident.id == inc.id, Incident.state.in_(("RESOLVED", "CLOSED")))
            .values(state="OPEN", updated_at=utcnow())
        ).rowcount
        if not reopened:  # another worker re-opened it first
            decision = ASSOCIATE
    if plan.creates or inc is None:
        inc = _new_incident(job, event)
        session.add(inc)
        session.flush()  # the incident row first: the link refers to it
    session.add(
        EventIncident(
            event_id=event.id,
            notification_id=job.notif.id,
            incident_id=inc.id,
            associated_at=utcnow(),
        )
    )
    session.commit()
    return Claim(inc.id, decision)


def _claim_incident(job: Job, event: Event) -> Claim | None:
    """Plan, ask suppression when the plan creates, and link the event; None when the
    creation is suppressed. A lost race (another worker claimed first) plans again."""
    for _ in range(10):
        session = new_session()
        try:
            plan = plan_association(session, job, event)
            if creation_suppressed(job, event, plan.creates):
                return None
            return _carry_out(session, job, event, plan)
        except IntegrityError as exc:
            log.debug("claim for %s lost a race: %s", event.dedupid, exc)
            session.rollback()  # another worker claimed it first: read again
        finally:
            session.close()
    raise TransientError(f"could not claim an incident for {event.dedupid!r}")


def build_fields(job: Job, event: Event) -> dict[str, Any]:
    doc = event_document_from_row(event)
    urls = event_urls(event.id, event.device)
    device = get_catalog().devices.get(event.device)
    defaults = job.plugin.default_fields(doc, device, urls)
    if not job.notif.field_mapping:
        return defaults
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
    lock = get_redis().lock(
        f"incman:lock:incident:{incident_id}", timeout=ttl, blocking_timeout=ttl
    )
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
    claim = _claim_incident(job, event)
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
            inc = _new_incident(job, event)
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
