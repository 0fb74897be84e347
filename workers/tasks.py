"""Thin tasks: load by id, call incman, decide retry. Names are explicit and public."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from celery import Task

from incman.actions.batch import UNAVAILABLE, run_actions
from incman.actions.run import defer, give_up, run_action
from incman.integrations.errors import TransientError, public_reason
from incman.logs import log_context
from incman.settings import get_settings
from incman.store import metrics
from incman.store.flood import Deferred
from workers.app import app

log = logging.getLogger(__name__)

MAX_RETRIES = 10


def backoff(retries: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, honouring Retry-After, below the visibility
    timeout so a retried message is never re-delivered twice."""
    ceiling = max(5.0, get_settings().visibility_timeout * 0.8)
    if retry_after is not None:
        return min(ceiling, retry_after + random.uniform(0, 1))
    return min(ceiling, random.uniform(0, 2 ** min(retries, 10)) + 1)


@app.task(
    name="incman.run_action",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def run_action_task(self: Task, action_id: int) -> str:
    """Do one outbox action (safe to run twice: see incman.actions.run)."""
    with log_context(actionId=action_id):  # every line about the action carries its fields
        return _run_action(self, action_id)


def _run_action(self: Task, action_id: int) -> str:
    try:
        return run_action(action_id)
    except Deferred as exc:
        # Not a failure: the remote is rate-limited, paused or its breaker is open. Send the
        # task again later without using up one of its retries; the wait itself is bounded.
        if defer(action_id, str(exc)):
            return "dead"
        countdown = backoff(0, exc.retry_after)
        self.signature_from_request(countdown=countdown, retries=self.request.retries).apply_async()
        log.info("action %s deferred %.1fs: %s", action_id, countdown, exc)
        return "deferred"
    except TransientError as exc:
        if self.request.retries >= MAX_RETRIES:
            retries = f"gave up after {MAX_RETRIES} retries"
            give_up(action_id, f"{retries}: {exc}", summary=f"{retries}: {public_reason(exc)}")
            return "dead"
        countdown = backoff(self.request.retries, exc.retry_after)
        log.warning("action %s: %s; retry in %.1fs", action_id, exc, countdown)
        # The queue is the integration's own, `itsm.<integration>` (incman.outbox.sender).
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        metrics.action_retried(queue.removeprefix("itsm."))
        raise self.retry(exc=exc, countdown=countdown) from exc


@app.task(
    name="incman.run_actions",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def run_actions_task(self: Task, action_ids: list[int], integration: str = "") -> dict[str, int]:
    """Do many outbox actions of one integration, and others of it waiting for a worker (safe
    to run twice: incman.actions.batch); those to retry are sent again together."""
    try:
        outcome = run_actions(action_ids, integration)
    except UNAVAILABLE as exc:  # nothing claimed, or the claims ended with the run: again
        countdown = backoff(self.request.retries, None)
        log.warning("incman.run_actions: %s; retry in %.1fs", exc.__class__.__name__, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    _send_again(self, outcome.retry)
    return dict(Counter(outcome.statuses.values()))


def _send_again(task: Task, retry: dict[int, TransientError]) -> None:
    """Deferred actions go again without using up a retry (their wait is bounded); failed
    ones with one more retry counted, or to the dead letter past MAX_RETRIES."""
    deferred = {i: e for i, e in retry.items() if isinstance(e, Deferred)}
    failed = {i: e for i, e in retry.items() if i not in deferred}
    waiting = [i for i, error in deferred.items() if not defer(i, str(error))]
    if waiting:
        countdown = backoff(0, _longest_wait(deferred.values()))
        _again(task, waiting, countdown, task.request.retries)
        log.info("actions %s deferred %.1fs", waiting, countdown)
    if failed and task.request.retries >= MAX_RETRIES:
        retries = f"gave up after {MAX_RETRIES} retries"
        for action_id, error in failed.items():
            give_up(action_id, f"{retries}: {error}", summary=f"{retries}: {public_reason(error)}")
    elif failed:
        countdown = backoff(task.request.retries, _longest_wait(failed.values()))
        log.warning("actions %s failed; retry in %.1fs", list(failed), countdown)
        _again(task, list(failed), countdown, task.request.retries + 1)
        queue = (task.request.delivery_info or {}).get("routing_key") or ""
        metrics.action_retried(queue.removeprefix("itsm."), len(failed))


def _longest_wait(errors: Iterable[TransientError]) -> float | None:
    waits = [e.retry_after for e in errors if e.retry_after is not None]
    return max(waits) if waits else None


def _again(task: Task, action_ids: list[int], countdown: float, retries: int) -> None:
    """Send these actions again on the queue this message came from."""
    task.signature_from_request(
        args=[action_ids], countdown=countdown, retries=retries
    ).apply_async()


@app.task(name="incman.noop", acks_late=True)
def noop(*_: Any) -> None:
    """Measures the broker and worker's own rate (make bench)."""


@app.task(
    name="incman.ingest_events",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def ingest_events_task(self: Task, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public: store events sent through the broker; ONE argument, a list of event dicts in
    the API's camelCase shape. Returns the per-item results; invalid items are logged."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from incman.domain.event import EventError
    from incman.ingest.producer import send_events

    try:
        results = send_events(events, source="broker")
    except EventError as exc:
        log.error("incman.ingest_events: %s; message dropped", exc)
        return [{"ok": False, "error": str(exc), "field": exc.field}]
    except (OperationalError, InterfaceError) as exc:  # database unreachable: nothing stored
        countdown = backoff(self.request.retries, None)
        log.warning("incman.ingest_events: %s; retry in %.1fs", exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    for item in results:
        if not item["ok"]:
            log.warning("incman.ingest_events: item %s refused: %s", item["index"], item["error"])
    return results


@app.task(name="incman.poll_due")
def poll_due_task() -> int:
    """Beat's tick: enqueue one poll per notification now due (safe with two beats)."""
    from incman.store.catalog import get_catalog
    from incman.store.redisconn import get_redis
    from incman.sync.schedule import due_polls

    due = due_polls(get_redis(), get_catalog(), get_settings())
    for notification_id, cycletime in due:
        try:
            # A poll still queued after its cycle is stale: the next one replaces it.
            poll_notification_task.apply_async(args=[notification_id], expires=cycletime)
        except Exception:
            log.exception("could not enqueue the poll of %s; the next cycle will", notification_id)
    return len(due)


@app.task(name="incman.poll_notification")
def poll_notification_task(notification_id: str) -> dict[str, Any]:
    """Poll one notification's open incidents, never two polls of it at once."""
    from incman.integrations.errors import IntegrationError
    from incman.store.catalog import get_catalog
    from incman.store.redisconn import get_redis
    from incman.sync.poll import poll_notification
    from incman.sync.schedule import cycletime_of, lock_ttl, run_exclusive

    notif = get_catalog().notifications.get(notification_id)
    ttl = lock_ttl(cycletime_of(notif, get_settings()))
    try:
        return run_exclusive(get_redis(), notification_id, ttl, poll_notification)
    except IntegrationError as exc:  # the next cycle is the retry
        log.warning("poll of %s failed: %s", notification_id, exc)
        return {"notificationId": notification_id, "error": str(exc)}


@app.task(name="incman.reconcile")
def reconcile_task() -> int:
    """Enqueue again the outbox actions whose message was lost."""
    from incman.outbox.reconcile import reconcile

    return reconcile()


@app.task(name="incman.age_events")
def age_events_task() -> int:
    """Age old low-severity open events, in batches."""
    from incman.store.aging import age_events

    return age_events().rows


@app.task(name="incman.wake_waiting_requests")
def wake_waiting_requests_task() -> int:
    """ITSM requests whose waiting_until has come go back from waiting_for to assigned."""
    from incman.ingest.itsm_requests import wake_waiting_requests

    return wake_waiting_requests()


@app.task(name="incman.purge_expired")
def purge_expired_task() -> int:
    """Delete ended events past retention and their local records, in batches."""
    from incman.store.aging import purge_expired

    return purge_expired().rows
