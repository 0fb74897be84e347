"""What the console's pages read, in rows shaped by the JSON API's views.

Events with filters, sorting and pages; an event with its incidents and actions; incidents;
devices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from incman.api.events import load_event_api
from incman.api.views import event_to_api, incident_to_api
from incman.domain.event import iso
from incman.outbox.dead_letter import action_to_api
from incman.store.db import session_scope
from incman.store.models import (
    OPEN_EVENT_STATUSES,
    Action,
    Event,
    EventIncident,
    Incident,
    Note,
)
from incman.store.queries import linked_incidents

STATUSES = ("New", "Acknowledged", "Suppressed", "Closed", "Cleared", "Aged")
SORTS: dict[str, Any] = {
    "severity": Event.severity,
    "status": Event.status,
    "device": Event.device,
    "component": Event.component,
    "eventClass": Event.event_class,
    "summary": Event.summary,
    "count": Event.count,
    "firstTime": Event.first_time,
    "lastTime": Event.last_time,
}
PAGE_SIZES = (25, 50, 100, 200)
INCIDENT_STATES = ("PENDING", "OPEN", "ASSIGNED", "RESOLVED", "CLOSED")


@dataclass
class EventQuery:
    """The events page's filters, sort and page, read from its query string."""

    statuses: list[str] = field(default_factory=lambda: list(OPEN_EVENT_STATUSES))
    severity: int | None = None  # at least
    device: str = ""
    text: str = ""
    incident: str = ""  # "", "yes", "no"
    sort: str = "lastTime"
    desc: bool = True
    page: int = 1
    size: int = 50

    @classmethod
    def from_params(cls, params: Any) -> EventQuery:
        q = cls()
        chosen = [s for s in params.getlist("status") if s in STATUSES]
        if chosen or params.get("filtered"):
            q.statuses = chosen  # the filter form was sent: nothing ticked means every status
        sev = params.get("severity", "")
        q.severity = int(sev) if sev.isdigit() and int(sev) <= 5 else None
        q.device = params.get("device", "").strip()[:255]
        q.text = params.get("q", "").strip()[:255]
        q.incident = params.get("incident", "") if params.get("incident") in ("yes", "no") else ""
        q.sort = params.get("sort", "") if params.get("sort") in SORTS else "lastTime"
        q.desc = params.get("dir", "desc") != "asc"
        page, size = params.get("page", "1"), params.get("size", "50")
        q.page = max(1, min(int(page), 100_000)) if page.isdigit() else 1
        q.size = int(size) if size.isdigit() and int(size) in PAGE_SIZES else 50
        return q

    def params(self, **change: Any) -> dict[str, Any]:
        """The query string of this view (with some values changed), for links."""
        out: dict[str, Any] = {
            "filtered": "1",
            "status": self.statuses,
            "severity": self.severity,
            "device": self.device,
            "q": self.text,
            "incident": self.incident,
            "sort": self.sort,
            "dir": "desc" if self.desc else "asc",
            "page": self.page,
            "size": self.size,
        }
        out.update(change)
        return out

    def conditions(self) -> list[Any]:
        conds: list[Any] = []
        if self.statuses:
            conds.append(Event.status.in_(self.statuses))
        if self.severity is not None:
            conds.append(Event.severity >= self.severity)
        if self.device:
            conds.append(Event.device == self.device)
        if self.text:
            conds.append(
                or_(
                    *(
                        col.icontains(self.text, autoescape=True)
                        for col in (Event.summary, Event.device, Event.component, Event.event_class)
                    )
                )
            )
        if self.incident:
            linked = exists().where(EventIncident.event_id == Event.id)
            conds.append(linked if self.incident == "yes" else ~linked)
        return conds


def list_events(q: EventQuery) -> dict[str, Any]:
    """One page of events: {"items", "total", "pages"}."""
    conds = q.conditions()
    column: Any = SORTS[q.sort]
    order = [column.desc() if q.desc else column.asc(), Event.id.desc()]
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Event).where(*conds)) or 0
        pages = max(1, -(-total // q.size))
        q.page = min(q.page, pages)
        rows = list(
            session.scalars(
                select(Event)
                .where(*conds)
                .order_by(*order)
                .offset((q.page - 1) * q.size)
                .limit(q.size)
            )
        )
        links = linked_incidents(session, [r.id for r in rows])
        items = [event_to_api(r, links[r.id]) for r in rows]
    return {"items": items, "total": total, "pages": pages}


def _actions(session: Session, conds: list[Any], detail: bool) -> list[dict[str, Any]]:
    rows = session.scalars(select(Action).where(or_(*conds)).order_by(Action.id.desc()).limit(200))
    return [action_to_api(a, detail) for a in rows]


def event_detail(event_id: str, detail: bool = False) -> dict[str, Any] | None:
    """The event (occurrences, notes), its incidents with their remote state, and the
    actions taken for it or its incidents."""
    event = load_event_api(event_id)
    if event is None:
        return None
    with session_scope() as session:
        links = linked_incidents(session, [event_id])[event_id]
        incidents = [
            {**incident_to_api(inc), "associatedAt": iso(link.associated_at)} for link, inc in links
        ]
        conds = [Action.event_id == event_id]
        if links:
            conds.append(Action.incident_id.in_([inc.id for _, inc in links]))
        actions = _actions(session, conds, detail)
    notes = [n for n in event["notes"] if not n["occurrenceId"]]
    annotations = [n for n in event["notes"] if n["occurrenceId"]]
    return {
        "event": event,
        "incidents": incidents,
        "actions": actions,
        "notes": notes,
        "annotations": annotations,
    }


def list_incidents(state: str, notification_id: str, page: int, size: int = 50) -> dict[str, Any]:
    conds: list[Any] = []
    if state in INCIDENT_STATES:
        conds.append(Incident.state == state)
    if notification_id:
        conds.append(Incident.notification_id == notification_id)
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Incident).where(*conds)) or 0
        pages = max(1, -(-total // size))
        page = min(max(page, 1), pages)
        rows = list(
            session.scalars(
                select(Incident)
                .where(*conds)
                .order_by(Incident.created_at.desc(), Incident.id.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
        )
        counts = dict(
            session.execute(
                select(EventIncident.incident_id, func.count())
                .where(EventIncident.incident_id.in_([r.id for r in rows]))
                .group_by(EventIncident.incident_id)
            ).all()
        )
        items = [{**incident_to_api(r), "events": counts.get(r.id, 0)} for r in rows]
    return {"items": items, "total": total, "pages": pages, "page": page}


def incident_detail(ident: str, detail: bool = False) -> dict[str, Any] | None:
    """An incident (by id, else by number: the newest), its events, their notes, its actions."""
    with session_scope() as session:
        inc = (
            session.get(Incident, ident)
            or session.scalars(
                select(Incident)
                .where(Incident.number == ident)
                .order_by(Incident.created_at.desc())
            ).first()
        )
        if inc is None:
            return None
        event_ids = list(
            session.scalars(
                select(EventIncident.event_id).where(EventIncident.incident_id == inc.id)
            )
        )
        events = list(session.scalars(select(Event).where(Event.id.in_(event_ids))))
        links = linked_incidents(session, event_ids)
        notes = session.scalars(
            select(Note).where(Note.event_id.in_(event_ids)).order_by(Note.created_at).limit(500)
        )
        return {
            "incident": incident_to_api(inc, event_ids),
            "events": [event_to_api(e, links[e.id]) for e in events],
            "notes": [
                {"eventId": n.event_id, "author": n.author, "text": n.text, "at": iso(n.created_at)}
                for n in notes
            ],
            "actions": _actions(session, [Action.incident_id == inc.id], detail),
        }


def device_summary(device: str) -> dict[str, Any]:
    """Counts of a device's events: open ones by severity, and all."""
    with session_scope() as session:
        rows = session.execute(
            select(Event.severity, func.count())
            .where(and_(Event.device == device, Event.status.in_(OPEN_EVENT_STATUSES)))
            .group_by(Event.severity)
        ).all()
        total = session.scalar(select(func.count()).where(Event.device == device)) or 0
    return {"open": {int(sev): int(n) for sev, n in rows}, "total": int(total)}
