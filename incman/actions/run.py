"""Carry out one outbox action: the worker's whole job, without Celery.

Creation lives in incman.actions.create, the event's later changes in
incman.actions.followups."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from sqlalchemy.exc import InterfaceError, OperationalError

from incman.actions import followups
from incman.actions.claims import FINISHED, Claimed, claim, status_of
from incman.actions.create import handle_create, handle_create_manual
from incman.actions.job import Job
from incman.domain.mapping import MappingError
from incman.ingest.selfmon import report_failure
from incman.integrations.errors import PermanentError, TransientError, public_reason
from incman.logs import bind_log
from incman.settings import get_settings
from incman.store import liveness, metrics
from incman.store.catalog import NotificationDef, catalog_cache, get_catalog
from incman.store.db import session_scope
from incman.store.models import (
    Action,
    utcnow,
)
from incman.store.plugins import make_plugin

log = logging.getLogger(__name__)

SUMMARY_UNKNOWN = "failed (the details are shown to managers)"
NO_NOTIFICATION = "notification missing or disabled"


def finish(
    action_id: int, status: str, error: str | None = None, summary: str | None = None
) -> None:
    """`error`: the whole text (the remote's answer too, trimmed); `summary`: the words
    without it, for failure events and roles below manager."""
    with session_scope() as session:
        action = session.get(Action, action_id)
        if action is not None:
            action.status = status
            action.last_error = error
            action.error_summary = summary if error is None or summary else SUMMARY_UNKNOWN
            action.updated_at = utcnow()


@dataclass
class Outcome:
    """What became of many actions: final statuses, and the actions to send again."""

    statuses: dict[int, str] = field(default_factory=dict)
    retry: dict[int, TransientError] = field(default_factory=dict)
    more: bool = False  # the claim was full: more actions of the integration may wait


def notification_for(notification_id: str) -> NotificationDef | None:
    """The notification, read again once if it is not known (perhaps created over the API
    a moment ago)."""
    notif = get_catalog().notifications.get(notification_id)
    if notif is None:
        catalog_cache.invalidate()
        notif = get_catalog().notifications.get(notification_id)
    return notif


def run_action(action_id: int) -> str:
    """Do the action; returns its final status. Raises TransientError to be retried. The
    action's fields join the caller's log context (its retry lines carry them too)."""
    with liveness.run():
        claimed, _ = claim([action_id])
        if not claimed:
            return status_of(action_id)
        return execute(claimed[0])


def execute(action: Claimed) -> str:
    """Carry out a started action; its final status (TransientError: to be retried)."""
    bind_log(
        actionId=action.id,
        action=action.kind,
        notificationId=action.notification_id,
        eventId=action.event_id,
        incidentId=action.incident_id,
    )
    notif = notification_for(action.notification_id)
    if notif is None or not notif.enabled:
        log.info(
            "action %s skipped: notification %s is gone or disabled",
            action.id,
            action.notification_id,
        )
        finish(action.id, "skipped", NO_NOTIFICATION, NO_NOTIFICATION)
        return "skipped"
    try:
        outcome = _handle(action, notif)
    except TransientError as exc:
        finish(action.id, "pending", str(exc), public_reason(exc))
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        finish(action.id, "pending", f"redis: {exc}", "incman's Redis is unavailable")
        raise TransientError(f"redis unavailable: {exc}") from exc
    except (OperationalError, InterfaceError) as exc:
        summary = f"database: {exc.__class__.__name__}"
        finish(action.id, "pending", summary, summary)
        raise TransientError(f"database unavailable: {exc.__class__.__name__}") from exc
    except Exception as exc:  # noqa: BLE001 (fail logs it and dead-letters the action)
        fail(action, exc)
        return "dead"
    finish(action.id, outcome)
    return outcome


def _handle(action: Claimed, notif: NotificationDef) -> str:
    plugin = make_plugin(notif)
    job = Job(
        action.id,
        action.kind,
        notif,
        plugin,
        action.event_id,
        action.incident_id,
        action.payload,
    )
    handler = HANDLERS.get(action.kind)
    if handler is None:
        raise PermanentError(f"unknown action kind {action.kind!r}")
    try:
        return handler(job)
    finally:
        plugin.shutdown()


def fail(action: Claimed, exc: Exception) -> None:
    """Dead-letter the action for a failure that retrying cannot mend."""
    if not isinstance(exc, PermanentError | MappingError):
        log.exception("action %s failed unexpectedly", action.id, exc_info=exc)
    error, summary = _failure_texts(exc)
    give_up(action.id, error, action.notification_id, action.kind, action.event_id, summary)


def _failure_texts(exc: Exception) -> tuple[str, str]:
    """The failure's whole text (the remote's answer included) and its words without it."""
    if isinstance(exc, MappingError):  # the notification's own field mapping: no remote text
        return str(exc), f"field mapping: {exc}"
    if isinstance(exc, PermanentError):
        return str(exc), public_reason(exc)
    return f"internal error: {exc!r}", "internal error"


def give_up(
    action_id: int,
    error: str,
    notification_id: str | None = None,
    kind: str | None = None,
    event_id: str | None = None,
    summary: str | None = None,
) -> None:
    """Dead-letter the action and raise a failure event. The event, readable by viewers,
    says only `summary` (no text from the remote); `error` stays in the action's record."""
    if notification_id is None:
        with session_scope() as session:
            action = session.get(Action, action_id)
            if action is None:
                return
            notification_id, kind, event_id = action.notification_id, action.kind, action.event_id
    log.error("action %s (%s for %s) failed: %s", action_id, kind, notification_id, error)
    finish(action_id, "dead", error, summary)
    report_failure(
        notification_id or "", kind or "act", summary or SUMMARY_UNKNOWN, event_id, action_id
    )


def defer(action_id: int, reason: str) -> bool:
    """Count a deferral (the remote's breaker, pause or rate limit held the call back);
    deferrals use up no retry, so instead the wait is bounded: past INCMAN_ACTION_MAX_WAIT
    since the action was queued (created, or replayed) it is dead-lettered with the reason.
    True when it was."""
    with session_scope() as session:
        action = session.get(Action, action_id)
        if action is None or action.status in FINISHED:
            return action is not None
        integration = action.integration
        waited = (utcnow() - (action.enqueued_at or action.created_at)).total_seconds()
    metrics.action_deferred(integration)
    limit = get_settings().action_max_wait
    if waited <= limit:
        return False
    # `reason` is the flood guard's own words (rate limit, pause, breaker): no remote text.
    text = f"deferred for {waited:.0f}s, over INCMAN_ACTION_MAX_WAIT ({limit}s): {reason}"
    give_up(action_id, text, summary=text)
    return True


HANDLERS: dict[str, Callable[[Job], str]] = {
    "create_manual": handle_create_manual,
    "assign": followups.handle_assign,
    "close": followups.handle_close,
    "reopen": followups.handle_reopen,
    "note": followups.handle_note,
    "create": handle_create,
    "reoccur": followups.handle_reoccur,
    "clear": followups.handle_clear,
    "update": followups.handle_update,
}
