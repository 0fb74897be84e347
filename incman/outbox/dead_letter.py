"""Dead letter: outbox actions that failed permanently or ran out of retries (status `dead`).

They are listed, replayed or discarded. A replay puts the action back to `pending` with its
attempts reset, audits who did it, and enqueues it after the commit; a discard closes it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from incman.domain.event import iso
from incman.outbox.rows import Pending
from incman.outbox.sender import send_after_commit
from incman.store.db import is_sqlite, session_scope
from incman.store.models import Action, AuditEntry, utcnow

DEAD = "dead"
BATCH = 500


def action_to_api(action: Action, detail: bool = False) -> dict[str, Any]:
    """`lastError`: the failure without the remote's text (or nothing said, for rows older
    than that distinction); `errorDetail`, with `detail` (managers and admins): the whole
    text, the remote's answer included."""
    summary = action.error_summary
    if summary is None and action.last_error is not None:
        summary = "failed (the details are shown to managers)"
    out = {
        "id": action.id,
        "kind": action.kind,
        "notificationId": action.notification_id,
        "integration": action.integration,
        "eventId": action.event_id,
        "incidentId": action.incident_id,
        "status": action.status,
        "attempts": action.attempts,
        "lastError": summary,
        "createdAt": iso(action.created_at),
        "updatedAt": iso(action.updated_at),
    }
    if detail:
        out["errorDetail"] = action.last_error
    return out


def list_dead(
    limit: int = 100,
    cursor: int | None = None,
    notification_id: str | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    """Dead actions, newest first: {"items", "total", "nextCursor"}; `detail`: with the
    remote's text (action_to_api)."""
    conds = [Action.status == DEAD]
    if notification_id:
        conds.append(Action.notification_id == notification_id)
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Action).where(*conds)) or 0
        query = select(Action).where(*conds)
        if cursor is not None:
            query = query.where(Action.id < cursor)
        rows = list(session.scalars(query.order_by(Action.id.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        items = [action_to_api(row, detail) for row in rows]
    return {
        "items": items,
        "total": total,
        "nextCursor": str(rows[-1].id) if more and rows else None,
    }


@dataclass
class Replayed:
    """What a replay did with the ids it was given."""

    replayed: list[int] = field(default_factory=list)
    not_dead: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    def add(self, other: Replayed) -> None:
        self.replayed += other.replayed
        self.not_dead += other.not_dead
        self.missing += other.missing

    def to_api(self) -> dict[str, Any]:
        return {
            "replayed": len(self.replayed),
            "ids": self.replayed,
            "notDead": self.not_dead,
            "missing": self.missing,
        }


def replay(ids: Iterable[int], actor: str) -> Replayed:
    """Put these dead actions back in the queue (others are reported, left alone)."""
    wanted = sorted(set(ids))
    out = Replayed()
    pending: list[Pending] = []
    query = select(Action).where(Action.id.in_(wanted))
    if not is_sqlite():
        query = query.with_for_update()
    with session_scope() as session:
        found = {row.id: row for row in session.scalars(query)}
        now = utcnow()
        for action_id in wanted:
            action = found.get(action_id)
            if action is None:
                out.missing.append(action_id)
                continue
            if action.status != DEAD:
                out.not_dead.append(action_id)
                continue
            session.add(
                AuditEntry(
                    actor=actor,
                    action="replay",
                    target=f"action:{action_id}",
                    detail={"attempts": action.attempts, "lastError": action.last_error},
                )
            )
            action.status = "pending"
            action.attempts = 0
            action.last_error = action.error_summary = None
            action.updated_at = now
            action.enqueued_at = now  # its bounded wait (INCMAN_ACTION_MAX_WAIT) starts again
            out.replayed.append(action_id)
            pending.append(Pending(action.id, action.integration))
        send_after_commit(session, pending)
    return out


def discard(ids: Iterable[int], actor: str) -> Replayed:
    """Give up on these dead actions for good: they become `skipped` (a finished status no
    worker runs again), their error kept in the reason, and the discard is audited."""
    wanted = sorted(set(ids))
    out = Replayed()
    query = select(Action).where(Action.id.in_(wanted))
    if not is_sqlite():
        query = query.with_for_update()
    with session_scope() as session:
        found = {row.id: row for row in session.scalars(query)}
        for action_id in wanted:
            action = found.get(action_id)
            if action is None or action.status != DEAD:
                (out.missing if action is None else out.not_dead).append(action_id)
                continue
            session.add(
                AuditEntry(
                    actor=actor,
                    action="discard",
                    target=f"action:{action_id}",
                    detail={"attempts": action.attempts, "lastError": action.last_error},
                )
            )
            action.status = "skipped"
            action.last_error = f"discarded by {actor} (was: {action.last_error or 'no error'})"
            action.error_summary = f"discarded by {actor} (was: {action.error_summary or '-'})"
            action.updated_at = utcnow()
            out.replayed.append(action_id)
    return out


def count_dead() -> int:
    with session_scope() as session:
        return int(
            session.scalar(select(func.count()).select_from(Action).where(Action.status == DEAD))
            or 0
        )


def _dead_ids_after(after: int, limit: int) -> list[int]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Action.id)
                .where(Action.status == DEAD, Action.id > after)
                .order_by(Action.id)
                .limit(limit)
            )
        )


def replay_all(
    actor: str, batch: int = BATCH, progress: Callable[[int, int], None] | None = None
) -> Replayed:
    """Replay every dead action, in batches; `progress(done, total)` after each batch."""
    total = count_dead()
    out = Replayed()
    after = 0
    while ids := _dead_ids_after(after, batch):
        out.add(replay(ids, actor))
        after = ids[-1]
        if progress is not None:
            progress(len(out.replayed), max(total, len(out.replayed)))
    return out
