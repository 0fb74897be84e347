"""Outbox rows: an action written in the caller's transaction, sent once it commits.

`add_actions` remembers each row on the session; `incman.outbox.sender` sends them after the
commit (and forgets them on rollback), so no caller enqueues by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from incman.outbox import sender
from incman.store.bulk import insert_returning_ids
from incman.store.catalog import NotificationDef
from incman.store.models import Action, utcnow


@dataclass(frozen=True)
class Pending:
    """An outbox row to enqueue after commit."""

    action_id: int
    integration: str


def action_row(
    kind: str,
    notif: NotificationDef,
    event_id: str | None,
    incident_id: str | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The values of one pending action (for `add_actions`)."""
    now = now or utcnow()
    return {
        "kind": kind,
        "notification_id": notif.id,
        "integration": notif.integration,
        "event_id": event_id,
        "incident_id": incident_id,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def add_actions(session: Session, rows: list[dict[str, Any]]) -> list[Pending]:
    """Insert pending actions; they are sent once the session commits."""
    if not rows:
        return []
    ids = insert_returning_ids(session, Action, rows)
    pending = [Pending(i, r["integration"]) for i, r in zip(ids, rows, strict=True)]
    sender.send_after_commit(session, pending, new=True)
    return pending


def add_action(
    session: Session,
    kind: str,
    notif: NotificationDef,
    *,
    event_id: str | None,
    incident_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Pending:
    """Write one outbox row; it is sent once the session commits."""
    return add_actions(session, [action_row(kind, notif, event_id, incident_id, payload)])[0]


def resend_after_commit(session: Session, actions: list[Action]) -> list[Pending]:
    """Send existing actions again once the session commits (replay, reconcile)."""
    pending = [Pending(a.id, a.integration) for a in actions]
    sender.send_after_commit(session, pending)
    return pending
