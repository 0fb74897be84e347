"""Real services for integration tests: a fresh PostgreSQL database, a Redis database,
the API and Celery workers as real processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
import yaml

from helpers import API_KEY, Client
from incman.testing.procs import Proc, start_api, start_worker

PG_ADMIN = os.environ.get("INCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("INCMAN_TEST_REDIS", "redis://127.0.0.1:6379")


def _pg(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A new PostgreSQL database for this test session, migrated to head."""
    name = f"incman_test_{uuid.uuid4().hex[:10]}"
    _pg(f"CREATE DATABASE {name}")
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://") + "/" + name
    from incman.migrations import upgrade

    upgrade(url)
    yield url
    _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database of its own, emptied first."""
    db = int(os.environ.get("INCMAN_TEST_REDIS_DB", "9"))
    url = f"{REDIS_BASE}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


TEST_CONFIG: dict[str, Any] = {
    "triggers": [
        {"id": "clear-devices", "when": {"device": {"_m": "^clear-"}}},
        {"id": "keep-devices", "when": {"device": {"_m": "^keep-"}}},
        {"id": "slow-devices", "when": {"device": {"_m": "^slow-"}}},
        {"id": "broken-devices", "when": {"device": {"_m": "^broken-"}}},
    ],
    "notifications": [
        {"id": "debug-clear", "integration": "debug", "triggers": ["clear-devices"],
         "options": {"send_clear": True}},
        {"id": "debug-keep", "integration": "debug", "triggers": ["keep-devices"],
         "options": {"send_clear": False}},
        {"id": "debug-slow", "integration": "debug", "triggers": ["slow-devices"],
         "config": {"answer_delay": 4}},
        {"id": "debug-broken", "integration": "debug", "triggers": ["broken-devices"],
         "config": {"fail": "permanent"}},
    ],
}


@pytest.fixture(scope="session")
def service_env(pg_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, str]:
    """The environment every incman process of the session runs with."""
    folder = tmp_path_factory.mktemp("incman")
    config = folder / "incman.yaml"
    config.write_text(yaml.safe_dump(TEST_CONFIG))
    broker = os.environ.get("INCMAN_TEST_BROKER", redis_url)
    env = {
        **os.environ,
        "INCMAN_DATABASE_URL": pg_database,
        "INCMAN_REDIS_URL": redis_url,
        "INCMAN_BROKER_URL": broker,
        "INCMAN_CONFIG": str(config),
        "INCMAN_API_KEYS": f"tester:admin:{API_KEY},feeder:ingest:ingest-key",
        "INCMAN_DATA_DIR": str(folder),
        "INCMAN_VISIBILITY_TIMEOUT": "10",
    }
    return env


@pytest.fixture(scope="session")
def in_process(service_env: dict[str, str]) -> Iterator[None]:
    """This test process reads the same database and Redis as the services."""
    from incman.catalog import catalog_cache
    from incman.config import reset_settings
    from incman.db import reset_engine
    from incman.redisconn import reset_redis

    saved = dict(os.environ)
    os.environ.update(service_env)
    reset_settings(), reset_engine(), reset_redis(), catalog_cache.reset()
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_settings(), reset_engine(), reset_redis(), catalog_cache.reset()


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def api(service_env: dict[str, str], logs: Path, in_process: None) -> Iterator[str]:
    proc, url = start_api(service_env, logs)
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def worker(service_env: dict[str, str], logs: Path, in_process: None) -> Iterator[Proc]:
    proc = start_worker(service_env, logs, "itsm.debug,ingest,poll,maintenance", concurrency=2)
    yield proc
    proc.stop()


@pytest.fixture
def client(api: str) -> Client:
    return Client(api)
