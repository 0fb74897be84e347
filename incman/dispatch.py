"""Enqueue outbox actions on their integration's queue, after the transaction committed.

A failed enqueue loses nothing: the row stays pending and the reconciler sends it again."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from incman.ingest import Pending
from incman.integrations.registry import queue_for

log = logging.getLogger(__name__)

RUN_ACTION = "incman.run_action"


def enqueue(pending: Iterable[Pending]) -> int:
    """Send one task per action; returns how many were sent."""
    from workers.app import app

    sent = 0
    for item in pending:
        try:
            app.send_task(RUN_ACTION, args=[item.action_id], queue=queue_for(item.integration))
            sent += 1
        except Exception:  # the broker may be down: the reconciler will resend
            log.exception("could not enqueue action %s; it stays pending", item.action_id)
    return sent
