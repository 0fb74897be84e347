"""Thin tasks: load by id, call incman, decide retry. Names are explicit and public."""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task

from incman.action import give_up, run_action
from incman.config import get_settings
from incman.integrations.errors import TransientError
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


@app.task(name="incman.run_action", bind=True, acks_late=True, reject_on_worker_lost=True,
          max_retries=MAX_RETRIES)
def run_action_task(self: Task, action_id: int) -> str:
    """Do one outbox action (safe to run twice: see incman.action)."""
    try:
        return run_action(action_id)
    except TransientError as exc:
        if self.request.retries >= MAX_RETRIES:
            give_up(action_id, f"gave up after {MAX_RETRIES} retries: {exc}")
            return "dead"
        countdown = backoff(self.request.retries, exc.retry_after)
        log.warning("action %s: %s; retry in %.1fs", action_id, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc


@app.task(name="incman.noop", acks_late=True)
def noop(*_: Any) -> None:
    """Measures the broker and worker's own rate (make bench)."""
