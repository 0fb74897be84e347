"""Claiming outbox actions: a worker process marks the actions it starts running, as its own.

An action is taken when it is pending, or running in a run that ended or whose process is
gone (incman.store.liveness), or in this very run. One running in another live run is left
alone, so a message naming an action that a batch elsewhere already took does not run it
twice. Besides the actions a message
names, a claim may take others of the integration that wait for their first worker: a busy
queue then drains in batches however its actions were sent. Bookkeeping only, committed
without waiting for the WAL flush (see incman.store.db.relax_this_commit)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from incman.store.db import is_sqlite, relax_this_commit, session_scope
from incman.store.liveness import current_token, dead
from incman.store.metrics import observe_queue_latencies
from incman.store.models import Action, utcnow

FINISHED = ("done", "skipped", "dead", "suppressed")


@dataclass(frozen=True)
class Claimed:
    """An action a worker has started (status running, one more attempt counted)."""

    id: int
    kind: str
    notification_id: str
    event_id: str | None
    incident_id: str | None
    payload: dict[str, Any]
    integration: str = ""


def _locked(query: Any) -> Any:
    """Rows another claim is taking right now are skipped, not waited for (PostgreSQL)."""
    return query if is_sqlite() else query.with_for_update(skip_locked=True)


def _takeable(session: Session, action_ids: list[int], me: str) -> list[int]:
    rows = session.execute(
        _locked(
            select(Action.id, Action.status, Action.claimed_by).where(
                Action.id.in_(action_ids), Action.status.in_(("pending", "running"))
            )
        )
    ).all()
    others = {
        r.claimed_by for r in rows if r.status == "running" and r.claimed_by not in (None, me)
    }
    gone = dead(others)
    return [
        r.id
        for r in rows
        if r.status == "pending" or r.claimed_by in (None, me) or r.claimed_by in gone
    ]


def _waiting(session: Session, integration: str, room: int, taken: list[int]) -> list[int]:
    """Actions of `integration` waiting for their first worker, oldest first."""
    query = (
        select(Action.id)
        .where(
            Action.integration == integration,
            Action.status == "pending",
            Action.attempts == 0,
            Action.id.not_in(taken),
        )
        .order_by(Action.id)
        .limit(room)
    )
    return list(session.scalars(_locked(query)))


def claim(
    action_ids: list[int], integration: str = "", room: int = 0
) -> tuple[list[Claimed], bool]:
    """Start the takeable actions of `action_ids` and, up to `room` in all, waiting ones of
    `integration`; the started actions in id order, and whether more may be waiting."""
    me = current_token()
    now = utcnow()
    with session_scope() as session:
        relax_this_commit(session)
        ids = _takeable(session, action_ids, me) if action_ids else []
        extra = _waiting(session, integration, room - len(ids), ids) if integration else []
        if not ids and not extra:
            return [], False
        rows = session.execute(
            update(Action)
            .where(Action.id.in_(ids + extra))
            .values(status="running", attempts=Action.attempts + 1, updated_at=now, claimed_by=me)
            .returning(
                Action.id,
                Action.kind,
                Action.notification_id,
                Action.integration,
                Action.event_id,
                Action.incident_id,
                Action.payload,
                Action.attempts,
                Action.created_at,
            )
        ).all()
    _observe_waits(rows, now)
    claimed = [
        Claimed(
            r.id,
            r.kind,
            r.notification_id,
            r.event_id,
            r.incident_id,
            dict(r.payload),
            r.integration,
        )
        for r in rows
    ]
    more = bool(integration) and len(ids) + len(extra) >= room > 0
    return sorted(claimed, key=lambda a: a.id), more


def _observe_waits(rows: Any, now: Any) -> None:
    """How long each action waited for its first worker, per integration (/metrics)."""
    waited: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.attempts == 1:
            waited[row.integration].append((now - row.created_at).total_seconds())
    for integration, seconds in waited.items():
        observe_queue_latencies(integration, seconds)


def status_of(action_id: int) -> str:
    """What an action not claimed is: finished (its status), running elsewhere, or missing."""
    with session_scope() as session:
        status = session.scalar(select(Action.status).where(Action.id == action_id))
    if status is None:
        return "missing"
    return status if status in FINISHED else "running elsewhere"
