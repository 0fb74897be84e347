"""What the console does to events and incidents, through the same functions as the JSON API.

Each is answered with what happened to every event and its incidents (or why not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from incman.api import incidents as incidents_api
from incman.api.auth import Principal
from incman.api.body import ApiError
from incman.ingest import event_ops, manual
from incman.store.catalog import Catalog, get_catalog
from incman.store.db import session_scope
from incman.store.models import OPEN_EVENT_STATUSES, Action, Event
from incman.store.queries import linked_incidents

OPS = {
    "acknowledge": (event_ops.acknowledge, "acknowledged"),
    "close": (event_ops.close, "closed"),
    "reopen": (event_ops.reopen, "re-opened"),
}
OPTION_OF = {
    "acknowledge": "assign_incident_on_event_ack",
    "close": "close_incident_on_event_close",
    "reopen": "reopen_incident_on_event_reopen",
    "note": "add_event_notes",
}
MAX_EVENTS = 500


@dataclass
class Outcome:
    """Lines for the page: what was done, and what was refused."""

    done: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        if not self.refused:
            return "ok"
        return "warn" if self.done else "error"

    def lines(self) -> list[str]:
        return self.done + self.refused


def _why_not(catalog: Catalog, notification_id: str, manual_incident: bool, change: str) -> str:
    notif = catalog.notifications.get(notification_id)
    if notif is None:
        return "its notification no longer exists"
    if not notif.enabled:
        return "its notification is disabled"
    if manual_incident and not (notif.options.send_clear and catalog.has_enabled_trigger(notif)):
        return (
            "an incident made by hand follows its events only when the notification has "
            "send_clear and an enabled trigger"
        )
    return f"the notification's option {OPTION_OF[change]} is off"


def follow_lines(
    session: Session, catalog: Catalog, event: Event, change: str, action_ids: list[int]
) -> list[str]:
    """For each incident linked to the event: the action queued for it, or why none."""
    queued = {
        a.incident_id: a.kind
        for a in session.scalars(select(Action).where(Action.id.in_(action_ids)))
    }
    out = []
    for link, inc in linked_incidents(session, [event.id])[event.id]:
        label = f"{inc.number or 'its pending incident'} ({link.notification_id})"
        if inc.id in queued:
            out.append(f"{label} follows ({queued[inc.id]} sent to the remote system)")
        else:
            reason = _why_not(catalog, link.notification_id, inc.manual, change)
            out.append(f"{label} does not follow: {reason}")
    return out


def _reason(exc: manual.ManualError | ApiError) -> str:
    """The refusal's reason without the name of the request field it starts with."""
    field = exc.field or ""
    return (
        exc.reason[len(field) + 2 :]
        if field and exc.reason.startswith(f"{field}: ")
        else exc.reason
    )


def _label(event: Event) -> str:
    return f"{event.device}: {event.summary[:80]}"


def _one_event(event_id: str, op: str, user: str) -> tuple[bool, str]:
    func, word = OPS[op]
    with session_scope() as session:
        event = session.get(Event, event_id, with_for_update=True)
        if event is None:
            return False, f"event {event_id}: not found"
        was_open = event.status in OPEN_EVENT_STATUSES
        if (op == "close" and event.status == "Closed") or (op == "reopen" and was_open):
            return False, f"{_label(event)}: already {'closed' if op == 'close' else 'open'}"
        catalog = get_catalog()
        try:
            pending = func(session, catalog, event, user)
        except event_ops.EventStateError as exc:
            return False, f"{_label(event)}: not {word}: {exc}"
        session.flush()
        follows = follow_lines(session, catalog, event, op, [p.action_id for p in pending])
        text = f"{_label(event)}: {word}"
        return True, "; ".join([text, *follows])


def _too_many(event_ids: list[str], out: Outcome) -> list[str]:
    if len(event_ids) > MAX_EVENTS:
        out.refused.append(
            f"{len(event_ids) - MAX_EVENTS} events left alone: at most {MAX_EVENTS} at a time"
        )
    return event_ids[:MAX_EVENTS]


def act_on_events(event_ids: list[str], op: str, who: Principal) -> Outcome:
    """Acknowledge, close or re-open each event (each in its own transaction)."""
    out = Outcome()
    for event_id in _too_many(event_ids, out):
        ok, line = _one_event(event_id, op, who.name)
        (out.done if ok else out.refused).append(line)
    return out


def add_notes(event_ids: list[str], text: str, who: Principal) -> Outcome:
    out = Outcome()
    for event_id in _too_many(event_ids, out):
        with session_scope() as session:
            event = session.get(Event, event_id)
            if event is None:
                out.refused.append(f"event {event_id}: not found")
                continue
            catalog = get_catalog()
            # add_note answers the note, not its actions: they are the rows written after it.
            before = session.scalar(select(func.max(Action.id))) or 0
            event_ops.add_note(session, catalog, event, who.name, text)
            session.flush()
            ids = session.scalars(
                select(Action.id).where(Action.id > before, Action.event_id == event.id)
            ).all()
            follows = follow_lines(session, catalog, event, "note", list(ids))
            out.done.append("; ".join([f"{_label(event)}: note added", *follows]))
    return out


def create_incidents(event_ids: list[str], notification_id: str, who: Principal) -> Outcome:
    """Create Incident: the API's own function (one per event, or one for all)."""
    out = Outcome()
    doc = {"eventIds": event_ids, "notificationId": notification_id}
    try:
        ids = incidents_api._create_manual(doc, who)
    except manual.ManualError as exc:
        out.refused.append(f"No incident created on {notification_id}: {_reason(exc)}")
        return out
    for inc in incidents_api._wait_created(ids):
        count = len(inc["eventIds"])
        events = f"{count} event{'s' if count != 1 else ''}"
        if inc["state"] == "PENDING":
            out.done.append(
                f"Incident requested on {notification_id} for {events}: the remote system has "
                "not answered yet; its number appears here when it does"
            )
        else:
            out.done.append(f"Created {inc['number']} on {notification_id} for {events}")
    return out


def associate(event_ids: list[str], notification_id: str, number: str, who: Principal) -> Outcome:
    """Associate existing incident: the API's own function, which looks the number up."""
    out = Outcome()
    doc: dict[str, Any] = {
        "eventIds": event_ids,
        "notificationId": notification_id,
        "incident": number.strip(),
    }
    try:
        inc = incidents_api._associate(doc, who)
    except (manual.ManualError, ApiError) as exc:
        out.refused.append(f"Not associated with {number} on {notification_id}: {_reason(exc)}")
        return out
    count = len(inc.get("eventIds") or event_ids)
    out.done.append(
        f"{count} event{'s' if count != 1 else ''} associated with {inc['number']} "
        f"on {notification_id}"
    )
    return out
