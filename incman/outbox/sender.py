"""Send outbox actions to their integration's queue after their transaction commits.

This is the one place incman touches Celery.

Rows added through `incman.outbox.rows` are remembered on their session; a listener sends
them after the commit and forgets them on rollback. A failed send loses nothing: the row stays
pending and the reconciler sends it again. Workers hand their own Celery app in
(`use_app`); other processes (the API, producers, the CLI) get a light producer app built
from the same broker settings, so nothing in incman reaches up into `workers/`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from incman.outbox.queues import RUN_ACTIONS, queue_for
from incman.outbox.wake import wake_needed
from incman.settings import Settings, get_settings

log = logging.getLogger(__name__)

PENDING_KEY = "incman.outbox.pending"
NEW_KEY = "incman.outbox.new"


class Sendable(Protocol):
    """What the sender needs of an outbox row."""

    @property
    def action_id(self) -> int: ...

    @property
    def integration(self) -> str: ...


def broker_options(settings: Settings) -> dict[str, Any]:
    """The Celery settings shared by the workers and every producer of task messages."""
    return {
        "broker_url": settings.effective_broker_url(),
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Redis re-delivers an unacknowledged message only after this; retries stay below it.
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for messages of dead workers every few seconds (kombu's default is
            # every 100 s), so a killed worker's tasks come back soon after the timeout.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        },
        "broker_connection_retry_on_startup": True,
        "task_send_sent_event": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


_app: Any = None
_handed_in = False
_app_lock = threading.Lock()


def use_app(app: Any) -> None:
    """The Celery app this process sends with (the workers' own)."""
    global _app, _handed_in
    _app, _handed_in = app, True


def reset_app() -> None:
    """Forget the app (after the broker settings changed): the next send builds a producer
    app from the settings then in force, even where a workers' app was handed in."""
    global _app, _handed_in
    if not _handed_in and _app is not None:
        _app.close()
    _app, _handed_in = None, False


def celery_app() -> Any:
    """The Celery app to send with: the workers' when handed in, else a producer app."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                from celery import Celery

                app = Celery("incman", set_as_current=False)
                app.conf.update(broker_options(get_settings()))
                _app = app
    return _app


def send_task(
    name: str, args: Sequence[Any] = (), queue: str | None = None, **options: Any
) -> None:
    """Send one task message by name (beat's and the bench's tasks, public producers)."""
    celery_app().send_task(name, args=list(args), queue=queue, **options)


def enqueue(pending: Iterable[Sendable], coalesce: bool = False) -> int:
    """Send the actions, many of one integration per `incman.run_actions` message (at most
    INCMAN_ACTIONS_PER_MESSAGE); returns how many were sent or left to a waiting message.
    `coalesce` (new actions, which a worker's claim picks up by itself): a few actions of an
    integration whose wake-up still waits for a worker send no message of their own."""
    by_integration: dict[str, list[Sendable]] = {}
    for item in pending:
        by_integration.setdefault(item.integration, []).append(item)
    size = max(1, get_settings().actions_per_message)
    sent = 0
    for integration, items in by_integration.items():
        if coalesce and len(items) <= size and not wake_needed(integration):
            sent += len(items)  # the waiting message's worker claims them
            continue
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                _send(queue_for(integration), chunk)
                sent += len(chunk)
            except Exception:  # the broker may be down: the reconciler will resend
                ids = ", ".join(str(i.action_id) for i in chunk)
                log.exception("could not enqueue actions %s; they stay pending", ids)
    return sent


def _send_run_actions(queue: str, items: Sequence[Sendable]) -> None:
    integration = items[0].integration if items else queue.removeprefix("itsm.")
    send_task(RUN_ACTIONS, [[item.action_id for item in items], integration], queue=queue)


def wake(integration: str) -> None:
    """Send a message naming no action: a worker claims what waits for `integration`."""
    try:
        _send(queue_for(integration), [])
    except Exception:
        log.exception("could not wake a worker for %s", integration)


_send: Callable[[str, Sequence[Sendable]], None] = _send_run_actions


def set_transport(send: Callable[[str, Sequence[Sendable]], None] | None) -> None:
    """Replace how a message of actions is sent (unit tests record instead of using a
    broker): `send(queue, items)`."""
    global _send
    _send = send or _send_run_actions


def check_broker(timeout: float = 3.0) -> None:
    """Raise if the broker cannot be reached (readiness checks)."""
    with celery_app().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)


def send_after_commit(session: Session, items: Iterable[Sendable], new: bool = False) -> None:
    """Send these actions once `session` commits (nothing if it rolls back). `new`: actions
    just written, which may share a waiting message (see `enqueue`)."""
    session.info.setdefault(NEW_KEY if new else PENDING_KEY, []).extend(items)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    items = session.info.pop(PENDING_KEY, None)
    if items:
        enqueue(items)
    new = session.info.pop(NEW_KEY, None)
    if new:
        enqueue(new, coalesce=True)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop(NEW_KEY, None)
