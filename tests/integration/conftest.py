"""Real services for integration tests: a fresh PostgreSQL database, a Redis database,
the API and Celery workers as real processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from helpers import API_KEY, Client
from sqlalchemy import create_engine, delete

from incman.store.models import Notification, Trigger
from incman.testing.pg import fresh_database
from incman.testing.procs import Proc, start_api, start_beat, start_worker
from incman.testing.redisdb import private_redis_db
from workers.routes import all_queue_names

PG_ADMIN = os.environ.get("INCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("INCMAN_TEST_REDIS", "redis://127.0.0.1:6379")
# The simulators (and the real RT and Redmine of `make test-rt`) listen on loopback, which the
# egress policy refuses by default.
LOOPBACK = "127.0.0.0/8,::1"


@pytest.fixture(scope="session", autouse=True)
def _remotes_on_loopback() -> Iterator[None]:
    """Plugins built in this test process reach the loopback remotes too, whatever ran first."""
    from incman.settings import reset_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCMAN_EGRESS_ALLOW", LOOPBACK)
        reset_settings()
        yield
    reset_settings()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A new PostgreSQL database for this test session, migrated to head."""
    with fresh_database(PG_ADMIN) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database of this session's own (INCMAN_TEST_REDIS_DB to name one), claimed
    so that no other session or bench run shares it."""
    wanted = os.environ.get("INCMAN_TEST_REDIS_DB")
    with private_redis_db(REDIS_BASE, int(wanted) if wanted else None) as url:
        yield url


@pytest.fixture(scope="session")
def base_env(
    pg_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of every incman process in this session, less INCMAN_CONFIG."""
    folder = tmp_path_factory.mktemp("incman")
    broker = os.environ.get("INCMAN_TEST_BROKER", redis_url)
    return {
        **os.environ,
        "INCMAN_DATABASE_URL": pg_database,
        "INCMAN_REDIS_URL": redis_url,
        "INCMAN_BROKER_URL": broker,
        "INCMAN_API_KEYS": f"tester:admin:{API_KEY},feeder:ingest:ingest-key",
        "INCMAN_DATA_DIR": str(folder),
        "INCMAN_VISIBILITY_TIMEOUT": "10",
        "INCMAN_SECRETS_KEY": Fernet.generate_key().decode(),
        "INCMAN_EGRESS_ALLOW": LOOPBACK,
    }


def _use_in_process(env: dict[str, str]) -> None:
    """This test process reads the same database, Redis and configuration as the services."""
    from incman.outbox.sender import reset_app
    from incman.settings import reset_settings
    from incman.store.catalog import catalog_cache
    from incman.store.db import reset_engine
    from incman.store.redisconn import reset_redis

    os.environ.update(env)
    reset_settings(), reset_engine(), reset_redis(), catalog_cache.reset(), reset_app()


ALL_QUEUES = ",".join(all_queue_names())


@dataclass
class Stack:
    """A running incman: the API and workers on one configuration."""

    url: str
    env: dict[str, str]
    api: Proc
    workers: list[Proc] = field(default_factory=list)
    logs: Path = Path(".")
    beat: Proc | None = None

    @property
    def client(self) -> Client:
        return Client(self.url)

    def add_worker(self, queues: str = ALL_QUEUES, concurrency: int = 2, name: str = "w") -> Proc:
        proc = start_worker(self.env, self.logs, queues, concurrency=concurrency, name=name)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        if self.beat is not None:
            self.beat.stop()
        for proc in self.workers:
            proc.stop()
        self.api.stop()


@pytest.fixture(scope="module")
def make_stack(
    base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Start an API (and workers) on a configuration; everything stops at module end.

    Stacks of one module share the database and broker, so start one per module."""
    stacks: list[Stack] = []
    saved = dict(os.environ)

    def start(
        config: dict[str, Any],
        workers: int = 1,
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
        beat: bool = False,
    ) -> Stack:
        """`beat`: run Celery beat too (the reconciler, polls): a stack whose tests kill
        workers needs it, since only the reconciler brings back a message a kill lost."""
        folder = tmp_path_factory.mktemp("stack")
        path = folder / "incman.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**base_env, "INCMAN_CONFIG": str(path), **(extra_env or {})}
        _use_in_process(env)
        api, url = start_api(env, folder)
        stack = Stack(url=url, env=env, api=api, logs=folder)
        stacks.append(stack)
        for n in range(workers):
            stack.add_worker(queues, concurrency, name=f"w{n}")
        if beat:
            stack.beat = start_beat(env, folder)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
    if stacks:
        _forget_api_objects(stacks[0].env)
    os.environ.clear()
    os.environ.update(saved)
    _use_in_process({})


def _forget_api_objects(env: dict[str, str]) -> None:
    """Triggers and notifications a module created over the API are its own: the next
    module of the session starts without them."""
    engine = create_engine(env["INCMAN_DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(delete(Notification))
            conn.execute(delete(Trigger))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def services_here(base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """This test process on the session's database and Redis, without starting a stack."""
    saved = dict(os.environ)
    _use_in_process(base_env)
    yield base_env
    os.environ.clear()
    os.environ.update(saved)
    _use_in_process({})
