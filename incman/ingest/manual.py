"""Incidents made by hand from the event console.

Create one per event or one for all, or associate events with an incident number an operator
typed (looked up at the remote)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import (
    ConfigurationError,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.outbox.rows import add_action
from incman.store.catalog import Catalog, NotificationDef
from incman.store.db import new_session
from incman.store.models import (
    OPEN_INCIDENT_STATES,
    AuditEntry,
    Event,
    EventIncident,
    Incident,
    utcnow,
)
from incman.store.plugins import make_plugin, remote_ref


class ManualError(Exception):
    """Refused: carries the HTTP status and the reason."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field


def may_use(notif: NotificationDef, name: str, role: str, groups: tuple[str, ...]) -> bool:
    """Admins use every notification; others those they (or a group of theirs) subscribe to."""
    if role == "admin":
        return True
    if role not in ("operator", "manager"):
        return False
    return name in notif.subscribers or any(g in notif.subscribers for g in groups)


def usable_notifications(
    catalog: Catalog, name: str, role: str, groups: tuple[str, ...]
) -> list[NotificationDef]:
    """What this caller may use by hand: hidden notifications are left out."""
    return [
        n
        for n in catalog.notifications.values()
        if not n.options.hidden and may_use(n, name, role, groups)
    ]


def _notification(
    catalog: Catalog, notification_id: str, name: str, role: str, groups: tuple[str, ...]
) -> NotificationDef:
    notif = catalog.notifications.get(notification_id)
    if notif is None:
        raise ManualError(404, f"notification {notification_id} not found", "notificationId")
    if notif.options.hidden:
        raise ManualError(
            403, f"notification {notification_id} is hidden from manual use", "notificationId"
        )
    if not may_use(notif, name, role, groups):
        raise ManualError(
            403, f"{name} is not a subscriber of notification {notification_id}", "notificationId"
        )
    return notif


def _events(session: Session, event_ids: list[str]) -> list[Event]:
    if not event_ids or not all(isinstance(e, str) for e in event_ids):
        raise ManualError(422, "eventIds: a non-empty list of event ids is required", "eventIds")
    rows = {e.id: e for e in session.scalars(select(Event).where(Event.id.in_(event_ids)))}
    missing = [e for e in event_ids if e not in rows]
    if missing:
        raise ManualError(404, f"events not found: {', '.join(missing)}", "eventIds")
    return [rows[e] for e in dict.fromkeys(event_ids)]


def _refuse_linked(session: Session, notif: NotificationDef, events: list[Event]) -> None:
    linked = session.scalars(
        select(EventIncident.event_id).where(
            EventIncident.notification_id == notif.id,
            EventIncident.event_id.in_([e.id for e in events]),
        )
    ).all()
    if linked:
        raise ManualError(
            409, f"events already have an incident for {notif.id}: {', '.join(linked)}", "eventIds"
        )


def _claim_manual(
    session: Session, notif: NotificationDef, group: list[Event], name: str, now: datetime
) -> Incident:
    """A PENDING incident for these events, linked to them, its creation queued."""
    origin = group[0]
    inc = Incident(
        id=str(uuid.uuid4()),
        notification_id=notif.id,
        integration=notif.integration,
        dedupid=origin.dedupid,
        correlation_key=uuid.uuid4().hex,
        state="PENDING",
        origin_event_id=origin.id,
        manual=True,
        created_at=now,
        updated_at=now,
    )
    session.add(inc)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ManualError(
            409,
            f"an incident for {origin.dedupid!r} is already open on "
            f"{notif.id}: associate the events with it instead",
            "eventIds",
        ) from exc
    for ev in group:
        session.add(
            EventIncident(
                event_id=ev.id, notification_id=notif.id, incident_id=inc.id, associated_at=now
            )
        )
    add_action(
        session,
        "create_manual",
        notif,
        event_id=origin.id,
        incident_id=inc.id,
        payload={"by": name},
    )
    session.add(
        AuditEntry(
            actor=name,
            action="incident.create",
            target=f"incident:{inc.id}",
            detail={"events": [e.id for e in group], "notificationId": notif.id},
        )
    )
    return inc


def create_manual(
    session: Session,
    catalog: Catalog,
    event_ids: list[str],
    notification_id: str,
    name: str,
    role: str,
    groups: tuple[str, ...] = (),
) -> list[Incident]:
    """Claim the incidents (PENDING) and queue their creation (sent once the caller
    commits): one per event with `one_incident_per_event`, else one for all."""
    notif = _notification(catalog, notification_id, name, role, groups)
    events = _events(session, event_ids)
    _refuse_linked(session, notif, events)
    groups_of_events = [[e] for e in events] if notif.options.one_incident_per_event else [events]
    now = utcnow()
    return [_claim_manual(session, notif, group, name, now) for group in groups_of_events]


def remote_by_number(
    catalog: Catalog,
    notification_id: str,
    number: str,
    name: str,
    role: str,
    groups: tuple[str, ...] = (),
) -> RemoteIncident:
    """The incident an operator typed the number of: the one incman knows, else looked up at
    the remote (remote I/O: call this outside any transaction). ManualError when the caller
    may not use the notification, or when the number is unknown or cannot be looked up."""
    if not isinstance(number, str) or not number.strip():
        raise ManualError(422, "incident: the incident number is required", "incident")
    number = number.strip()
    notif = _notification(catalog, notification_id, name, role, groups)
    with new_session() as session:
        known = session.scalars(
            select(Incident)
            .where(
                Incident.notification_id == notif.id,
                Incident.number == number,
                Incident.remote_id.is_not(None),
            )
            .order_by(Incident.created_at.desc())
        ).first()
        if known is not None:
            return remote_ref(known)
    found = _look_up(notif, number)
    if found is None:
        raise ManualError(
            422, f"incident: {notif.integration} has no incident {number}", "incident"
        )
    return found


def _look_up(notif: NotificationDef, number: str) -> RemoteIncident | None:
    where = f"{notif.integration} (notification {notif.id})"
    try:
        plugin = make_plugin(notif)
    except ConfigurationError as exc:
        raise ManualError(422, f"incident: {where} cannot be used: {exc}", "incident") from exc
    try:
        return plugin.find_by_number(number)
    except NotSupported as exc:
        reason = f"incident: {where} cannot look incidents up by number"
        raise ManualError(422, reason, "incident") from exc
    except TransientError as exc:
        raise ManualError(503, f"{where} did not answer the lookup of {number}") from exc
    except PermanentError as exc:
        status = f" (HTTP {exc.status})" if exc.status else ""
        raise ManualError(502, f"{where} refused the lookup of {number}{status}") from exc
    finally:
        plugin.shutdown()


def _incident_for(
    session: Session, notif: NotificationDef, remote: RemoteIncident, origin: Event
) -> Incident:
    """The local incident of this remote one: the known one (its remote fields filled in
    where they were missing) or a new one, polled like any other."""
    inc = session.scalars(
        select(Incident)
        .where(
            Incident.notification_id == notif.id,
            (Incident.remote_id == remote.remote_id) | (Incident.number == remote.number),
        )
        .order_by(Incident.created_at.desc())
    ).first()
    if inc is None:
        taken = session.scalars(
            select(Incident.id).where(
                Incident.notification_id == notif.id,
                Incident.dedupid == origin.dedupid,
                Incident.state.in_(OPEN_INCIDENT_STATES),
                Incident.detached.is_(False),
            )
        ).first()
        dedupid = origin.dedupid if taken is None else f"manual:{remote.number}"
        inc = Incident(
            id=str(uuid.uuid4()),
            notification_id=notif.id,
            integration=notif.integration,
            dedupid=dedupid,
            correlation_key=uuid.uuid4().hex,
            origin_event_id=origin.id,
            manual=True,
            created_at=utcnow(),
        )
        session.add(inc)
    if not inc.remote_id or inc.state == "PENDING":
        inc.remote_id, inc.number, inc.url = remote.remote_id, remote.number, remote.url
        inc.state, inc.remote_state = remote.state, remote.remote_state
    inc.updated_at = utcnow()
    session.flush()
    return inc


def associate_manual(
    session: Session,
    catalog: Catalog,
    event_ids: list[str],
    notification_id: str,
    remote: RemoteIncident,
    name: str,
    role: str,
    groups: tuple[str, ...] = (),
) -> Incident:
    """Join events to the incident an operator typed the number of (`remote`, from
    `remote_by_number`); the incident creation time on the events is the association time."""
    notif = _notification(catalog, notification_id, name, role, groups)
    events = _events(session, event_ids)
    inc = _incident_for(session, notif, remote, events[0])
    now = utcnow()
    for ev in events:
        link = session.get(EventIncident, (ev.id, notif.id))
        if link is None:
            session.add(
                EventIncident(
                    event_id=ev.id, notification_id=notif.id, incident_id=inc.id, associated_at=now
                )
            )
        else:
            link.incident_id, link.associated_at = inc.id, now
    session.add(
        AuditEntry(
            actor=name,
            action="incident.associate",
            target=f"incident:{inc.id}",
            detail={"events": [e.id for e in events], "number": inc.number},
        )
    )
    return inc
