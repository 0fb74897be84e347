"""The Celery app: `celery -A workers.app worker -Q itsm.debug` starts one integration's pool."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from beat_schedule import BEAT_SCHEDULE
from incman.config import get_settings
from workers.routes import TASK_ROUTES, queues


def make_app() -> Celery:
    settings = get_settings()
    celery_app = Celery("incman", include=["workers.tasks"])
    celery_app.conf.update(
        broker_url=settings.effective_broker_url(),
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_queues=queues(),
        task_default_queue="maintenance",
        task_routes=TASK_ROUTES,
        task_create_missing_queues=True,
        # Redis re-delivers an unacknowledged message only after this; retries stay below it.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # Sweep for messages of dead workers every few seconds (kombu's default is
            # every 100 s), so a killed worker's tasks come back soon after the timeout.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # Task events cost every task a message; Flower switches them on when it runs.
        worker_send_task_events=False,
        task_send_sent_event=False,
        beat_schedule=BEAT_SCHEDULE,
        timezone="UTC",
        enable_utc=True,
    )
    return celery_app


app = make_app()


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked pool process must not share the parent's database or Redis sockets."""
    from incman.db import relax_commits, reset_engine
    from incman.redisconn import reset_redis

    relax_commits()
    reset_engine()
    reset_redis()
