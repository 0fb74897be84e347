"""The association plan of a new event and the claim of a PENDING incident.

The plan follows the seed's rules; it is made once per create and handed to suppression. The
claim is made under the partial unique index."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incman.actions.job import Job
from incman.actions.suppression import creation_suppressed
from incman.domain.lifecycle import (
    ASSOCIATE,
    CREATE,
    CREATE_WITH_WARNING,
    REOPEN_AND_ASSOCIATE,
    decide_new_event,
)
from incman.integrations.base import (
    REOPEN,
    STATUS,
)
from incman.integrations.errors import (
    TransientError,
)
from incman.store.db import new_session
from incman.store.models import (
    OPEN_INCIDENT_STATES,
    Event,
    EventIncident,
    Incident,
    utcnow,
)
from incman.store.plugins import remote_ref

log = logging.getLogger(__name__)


@dataclass
class Claim:
    """The outcome of linking an event to an incident of its notification."""

    incident_id: str
    decision: str  # a lifecycle decision: create, associate, reopen, create_warn
    already_linked: bool = False


def latest_incident(session: Session, notif_id: str, dedupid: str) -> Incident | None:
    """The incident an event with this dedupid would join: the open one for this
    notification+dedupid, else the last one linked to an event with this dedupid. Either way
    only through an event that has not aged out (the seed: "an existing event that has not
    yet aged out"), manual associations included; a claim still PENDING always counts."""
    linked = (
        select(EventIncident.incident_id)
        .join(Event, Event.id == EventIncident.event_id)
        .where(
            EventIncident.notification_id == notif_id,
            Event.dedupid == dedupid,
            Event.status != "Aged",
        )
    )
    inc = session.scalars(
        select(Incident).where(
            Incident.notification_id == notif_id,
            Incident.dedupid == dedupid,
            Incident.state.in_(OPEN_INCIDENT_STATES),
            Incident.detached.is_(False),
            or_(Incident.state == "PENDING", Incident.id.in_(linked)),
        )
    ).first()
    if inc is not None:
        return inc
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


def new_incident(job: Job, event: Event, manual: bool = False) -> Incident:
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
    detach: str | None = None  # an open incident whose events all aged out: set aside

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
    plan = Plan(decision, inc)
    if plan.creates:
        plan.detach = _aged_out_incident(session, job.notif.id, event.dedupid)
    return plan


def _aged_out_incident(session: Session, notif_id: str, dedupid: str) -> str | None:
    """An open incident of this dedupid that latest_incident passed over: every event of it
    aged out. The new incident takes its place (it stays open remotely and is polled)."""
    return session.scalars(
        select(Incident.id).where(
            Incident.notification_id == notif_id,
            Incident.dedupid == dedupid,
            Incident.state.in_(("OPEN", "ASSIGNED")),
            Incident.detached.is_(False),
        )
    ).first()


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
    if plan.detach is not None:
        session.execute(
            update(Incident)
            .where(Incident.id == plan.detach)
            .values(detached=True, updated_at=utcnow())
        )
        log.info("incident %s set aside: its events aged out (%s)", plan.detach, event.dedupid)
    if plan.creates or inc is None:
        inc = new_incident(job, event)
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


def claim_incident(job: Job, event: Event) -> Claim | None:
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
