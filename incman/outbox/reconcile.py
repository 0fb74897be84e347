"""The reconciler: outbox actions whose task message was lost are enqueued again.

A message is lost when a broker restarts without persistence or a publish fails after the
commit; idempotent actions make a message sent twice harmless. Stale means untouched for
INCMAN_RECONCILE_AFTER seconds (an action never started) or for the longer of that and
INCMAN_VISIBILITY_TIMEOUT (a started one, whose retry may be waiting in the broker). Rows are
claimed in batches (SKIP LOCKED on PostgreSQL, so two reconcilers never take the same row) and
their `updated_at` bumped before they are sent.

A `running` action whose worker process is gone (its liveness key expired:
incman.store.liveness) is sent again as soon as that shows, whatever the visibility timeout.
(the staleness rules in full: docs/operations.md)"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from incman.outbox.rows import Pending
from incman.outbox.sender import send_after_commit
from incman.settings import get_settings
from incman.store import liveness
from incman.store.db import is_sqlite, session_scope
from incman.store.models import Action, utcnow

BATCH = 500
MAX_BATCHES = 20  # per run: at most 10,000 actions, the next run takes the rest


def _claim_stale(
    now: datetime, fresh_cutoff: datetime, started_cutoff: datetime, limit: int
) -> list[Pending]:
    stale = or_(
        and_(Action.status == "pending", Action.attempts == 0, Action.updated_at < fresh_cutoff),
        and_(
            Action.status.in_(("pending", "running")),
            Action.attempts > 0,
            Action.updated_at < started_cutoff,
        ),
    )
    query = select(Action.id, Action.integration).where(stale).order_by(Action.updated_at)
    query = query.limit(limit)
    if not is_sqlite():
        query = query.with_for_update(skip_locked=True)
    with session_scope() as session:
        rows = session.execute(query).all()
        if rows:
            session.execute(
                update(Action).where(Action.id.in_([r.id for r in rows])).values(updated_at=now)
            )
        pending = [Pending(row.id, row.integration) for row in rows]
        send_after_commit(session, pending)
    return pending


def _claimed_by_the_dead(now: datetime, limit: int) -> list[Pending]:
    """Running actions whose worker process is gone; sent again."""
    query = (
        select(Action.id, Action.integration, Action.claimed_by)
        .where(
            Action.status == "running",
            Action.claimed_by.is_not(None),
            Action.updated_at < now - timedelta(seconds=liveness.TTL),
        )
        .order_by(Action.updated_at)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.with_for_update(skip_locked=True)
    with session_scope() as session:
        rows = session.execute(query).all()
        gone = liveness.dead({r.claimed_by for r in rows})
        pending = [Pending(r.id, r.integration) for r in rows if r.claimed_by in gone]
        if pending:
            ids = [p.action_id for p in pending]
            session.execute(update(Action).where(Action.id.in_(ids)).values(updated_at=now))
        send_after_commit(session, pending)
    return pending


def reconcile(after: int | None = None, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> int:
    """Enqueue stale actions again; returns how many were claimed and sent."""
    settings = get_settings()
    after = settings.reconcile_after if after is None else after
    now = utcnow()
    fresh_cutoff = now - timedelta(seconds=after)
    started_cutoff = now - timedelta(seconds=max(after, settings.visibility_timeout))
    total = len(_claimed_by_the_dead(now, batch))
    for _ in range(max_batches):
        pending = _claim_stale(now, fresh_cutoff, started_cutoff, batch)
        total += len(pending)
        if len(pending) < batch:
            break
    return total
