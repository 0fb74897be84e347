"""Carry out many outbox actions of one integration at once (one task message for many).

They are claimed in one statement; the creates that open a first incident for their dedupid
go through incman.actions.create_many together (a few statements for all of them, one remote
call where the plugin offers it), everything else one at a time through
incman.actions.run.execute, in lanes: the actions of one incident (or event) in order, lanes
side by side on a few threads, so a slow remote's calls overlap instead of queueing. What
must be retried comes back in the outcome for the task to send again."""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import update

from incman.actions.create_many import create_many
from incman.actions.run import FINISHED, Claimed, Outcome, execute, notification_for
from incman.integrations.errors import TransientError
from incman.settings import get_settings
from incman.store.db import is_sqlite, relax_this_commit, session_scope
from incman.store.metrics import observe_queue_latencies
from incman.store.models import Action, utcnow

log = logging.getLogger(__name__)


def claim(action_ids: list[int]) -> list[Claimed]:
    """Start every action not finished yet (one more attempt each), in id order."""
    now = utcnow()
    with session_scope() as session:
        relax_this_commit(session)  # bookkeeping only (see incman.actions.run._start)
        rows = session.execute(
            update(Action)
            .where(Action.id.in_(action_ids), Action.status.not_in(FINISHED))
            .values(status="running", attempts=Action.attempts + 1, updated_at=now)
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
    waited: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.attempts == 1:  # how long the action waited for its first worker
            waited[row.integration].append((now - row.created_at).total_seconds())
    for integration, seconds in waited.items():
        observe_queue_latencies(integration, seconds)
    claimed = [
        Claimed(r.id, r.kind, r.notification_id, r.event_id, r.incident_id, dict(r.payload))
        for r in rows
    ]
    return sorted(claimed, key=lambda a: a.id)


def run_actions(action_ids: list[int]) -> Outcome:
    """Carry out the actions; what became of each (those to retry included)."""
    out = Outcome()
    claimed = claim(action_ids)
    claimed_ids = {a.id for a in claimed}
    for action_id in action_ids:
        if action_id not in claimed_ids:
            out.statuses[action_id] = "finished"  # done before (a message delivered twice)
    creates: dict[str, list[Claimed]] = defaultdict(list)
    rest: list[Claimed] = []
    for action in claimed:
        (creates[action.notification_id] if action.kind == "create" else rest).append(action)
    left: list[Claimed] = []
    for notification_id, actions in creates.items():
        notif = notification_for(notification_id)
        if notif is None or not notif.enabled or len(actions) == 1:
            left += actions  # the one-at-a-time path says why, or has nothing to share
            continue
        left += create_many(actions, notif, out)
    _run_in_lanes(sorted(left + rest, key=lambda a: a.id), out)
    return out


def _lane_key(action: Claimed) -> str:
    return action.incident_id or action.event_id or f"action:{action.id}"


def _run_lane(lane: list[Claimed], out: Outcome) -> None:
    for action in lane:
        try:
            out.statuses[action.id] = execute(action)
        except TransientError as exc:
            out.retry[action.id] = exc


def _run_in_lanes(actions: list[Claimed], out: Outcome) -> None:
    lanes: dict[str, list[Claimed]] = defaultdict(list)
    for action in actions:
        lanes[_lane_key(action)].append(action)
    threads = 1 if is_sqlite() else max(1, get_settings().action_threads)
    if threads == 1 or len(lanes) == 1:
        for lane in lanes.values():
            _run_lane(lane, out)
        return
    with ThreadPoolExecutor(min(threads, len(lanes)), thread_name_prefix="incman-lane") as pool:
        for future in [pool.submit(_run_lane, lane, out) for lane in lanes.values()]:
            future.result()
