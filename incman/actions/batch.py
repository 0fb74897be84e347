"""Carry out many outbox actions of one integration at once (one task message for many).

They are claimed together (incman.actions.claims, with others of the integration that wait
for their first worker); the creates that open a first incident for their dedupid
go through incman.actions.create_many together (a few statements for all of them, one remote
call where the plugin offers it), everything else one at a time through
incman.actions.run.execute, in lanes: the actions of one incident (or event) in order, lanes
side by side on a few threads, so a slow remote's calls overlap instead of queueing. What
must be retried comes back in the outcome for the task to send again."""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import redis
from sqlalchemy.exc import InterfaceError, OperationalError

from incman.actions.claims import Claimed, claim
from incman.actions.create_many import call_threads, create_many
from incman.actions.run import Outcome, execute, notification_for
from incman.integrations.errors import TransientError
from incman.integrations.registry import integration_class, known_integrations
from incman.outbox.sender import wake
from incman.outbox.wake import wake_taken
from incman.settings import get_settings
from incman.store import liveness

log = logging.getLogger(__name__)


def run_actions(action_ids: list[int], integration: str = "") -> Outcome:
    """Carry out the actions (see `_run_actions`) in a run of this process: whatever they
    leave behind when it ends (a failure half-way), the next claim may take again."""
    with liveness.run():
        return _run_actions(action_ids, integration)


def _run_actions(action_ids: list[int], integration: str = "") -> Outcome:
    """Carry out the actions named and, with `integration`, others of it that wait for their
    first worker (up to INCMAN_ACTIONS_PER_MESSAGE in all); what became of each (those to
    retry included), and whether more may still wait (`Outcome.more`)."""
    out = Outcome()
    if integration:
        wake_taken(integration)  # from now on a new action sends a message of its own
    room = max(len(action_ids), get_settings().actions_per_message)
    claimed, out.more = claim(action_ids, integration, room)
    if out.more:  # a backlog: another worker takes the next lot while this one runs
        wake(integration)
    claimed_ids = {a.id for a in claimed}
    for action_id in action_ids:
        if action_id not in claimed_ids:
            # Finished before (a message delivered twice), or running in a live process.
            out.statuses[action_id] = "not taken"
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
        try:
            left += create_many(actions, notif, out)
        except UNAVAILABLE as exc:  # the run's claims end with it: the retry takes them
            for action in actions:
                if action.id not in out.statuses and action.id not in out.retry:
                    out.retry[action.id] = _unavailable(exc)
    _run_in_lanes(sorted(left + rest, key=lambda a: a.id), out)
    return out


def _lane_key(action: Claimed) -> str:
    return action.incident_id or action.event_id or f"action:{action.id}"


# incman's own database or Redis failing under a batch: its actions are tried again later.
UNAVAILABLE = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


def _unavailable(exc: Exception) -> TransientError:
    return TransientError(f"incman's storage is unavailable: {exc.__class__.__name__}")


def _run_lane(lane: list[Claimed], out: Outcome) -> None:
    for action in lane:
        try:
            out.statuses[action.id] = execute(action)
        except TransientError as exc:
            out.retry[action.id] = exc
        except UNAVAILABLE as exc:  # even the record of the failure could not be written
            out.retry[action.id] = _unavailable(exc)


def _parallel_calls(actions: list[Claimed]) -> int:
    """The plugin's own cap on calls in flight (0: none; one integration per message)."""
    names = {a.integration for a in actions} & set(known_integrations())
    caps = [integration_class(name).parallel_calls for name in names]
    return min((cap for cap in caps if cap > 0), default=0)


def _run_in_lanes(actions: list[Claimed], out: Outcome) -> None:
    lanes: dict[str, list[Claimed]] = defaultdict(list)
    for action in actions:
        lanes[_lane_key(action)].append(action)
    threads = call_threads(_parallel_calls(actions), len(lanes))
    if threads == 1 or len(lanes) <= 1:
        for lane in lanes.values():
            _run_lane(lane, out)
        return
    with ThreadPoolExecutor(min(threads, len(lanes)), thread_name_prefix="incman-lane") as pool:
        # Each lane runs in a copy of this context: its locks and claims are the run's.
        futures = [
            pool.submit(contextvars.copy_context().run, _run_lane, lane, out)
            for lane in lanes.values()
        ]
        for future in futures:
            future.result()
