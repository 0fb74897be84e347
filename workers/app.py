"""The Celery app: `celery -A workers.app worker -Q itsm.debug` starts one integration's pool."""

from __future__ import annotations

from celery import Celery
from celery.signals import beat_init, setup_logging, worker_init, worker_process_init

from beat_schedule import BEAT_SCHEDULE
from incman.outbox import sender
from incman.settings import get_settings
from workers.routes import TASK_ROUTES, queues


def make_app() -> Celery:
    celery_app = Celery("incman", include=["workers.tasks"])
    celery_app.conf.update(
        sender.broker_options(get_settings()),
        task_queues=queues(),
        task_default_queue="maintenance",
        task_routes=TASK_ROUTES,
        task_create_missing_queues=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # Task events cost every task a message; Flower switches them on when it runs.
        worker_send_task_events=False,
        beat_schedule=BEAT_SCHEDULE,
    )
    return celery_app


app = make_app()
sender.use_app(app)  # the outbox sends follow-up actions with the workers' own app


@setup_logging.connect
def _logging(loglevel: int | str | None = None, **_: object) -> None:
    """incman's log lines (text or JSON, with the action's context) at the `-l` level."""
    from incman.logs import setup_logging as configure

    settings = get_settings()
    configure(settings.log_format, loglevel or settings.log_level)


@worker_init.connect
@beat_init.connect
def _check_configuration(**_: object) -> None:
    """A worker or beat refuses to start on a configuration file with problems, naming every
    one (as `incman config check` does), instead of running without the notifications it
    could not read."""
    import sys

    from incman.store.catalog import CatalogError, load_file_catalog

    try:
        load_file_catalog(get_settings().config_path)
    except CatalogError as exc:
        print(f"incman: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None  # not an Exception: Celery's signal dispatch lets it out


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    """A forked pool process must not share the parent's database or Redis sockets."""
    from incman.store.db import reset_engine
    from incman.store.redisconn import reset_redis

    reset_engine()
    reset_redis()


@worker_init.connect
def _check_secrets(**_: object) -> None:
    """Refuse to start when stored secrets exist that no key in force opens: the worker would
    otherwise skip those notifications' actions."""
    from incman.store.db import reset_engine
    from incman.store.secrets import secrets_problem

    problem = secrets_problem()
    reset_engine()  # no connection of this parent process is inherited by the pool
    if problem:
        raise SystemExit(f"incman worker: {problem}")
