"""Durability against a crash of PostgreSQL itself: a private cluster (its own port, started
here) is killed with `pg_ctl -m immediate` in the middle of a burst of events sent through the
broker, started again, and every event the workers acknowledged is still there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import redis
import requests
from celery import Celery
from helpers import unique, wait_for

from incman.testing.pg import fresh_database
from incman.testing.pgcluster import PgCluster, postgres_bin, private_cluster
from incman.testing.redisdb import private_redis_db

REDIS_BASE = os.environ.get("INCMAN_TEST_REDIS", "redis://127.0.0.1:6379")
pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server programs")

EVENTS, PER_MESSAGE = 1500, 5
# The WAL writer sleeps long, so a commit that does not wait for its flush stays in memory
# (at most its last partial WAL page) until the crash: what a relaxed commit can lose.
ALERT = {"status": "firing", "labels": {"alertname": "DatabaseDown"}}
CLUSTER_SETTINGS = {"wal_writer_delay": "10000ms", "autovacuum": "off"}
# The bursts match no trigger (their events alone are counted); `crashcreate-` events open
# Debug incidents, whose records live in the same database that crashes.
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "creates", "when": {"device": {"_m": "^crashcreate-"}}}],
    # Each remote create commits its records, then takes 1 s to answer: the crash lands there.
    "notifications": [
        {
            "id": "crash-debug",
            "integration": "debug",
            "triggers": ["creates"],
            "config": {"answer_delay": 1},
        }
    ],
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with private_cluster(CLUSTER_SETTINGS) as pg:
        yield pg


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """A Redis database of this module's own: its queues are empty when the burst starts."""
    with private_redis_db(REDIS_BASE) as url:
        yield url


def stored(cluster: PgCluster, dbname: str, prefix: str) -> int:
    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/{dbname}")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events WHERE device LIKE %s", (prefix + "%",))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def drained(url: str) -> bool:
    """No ingest message waits in the broker or is held (unacknowledged) by a worker."""
    client = redis.Redis.from_url(url)
    try:
        return client.llen("ingest") == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


@pytest.fixture(scope="module")
def database(cluster: PgCluster) -> Iterator[str]:
    with fresh_database(cluster.admin_url) as url:
        yield url


@pytest.fixture(scope="module")
def stack(database: str, broker: str, make_stack: Any) -> Any:
    """The API and a worker on the private cluster and broker (stopped before both go)."""
    env = {"INCMAN_DATABASE_URL": database, "INCMAN_REDIS_URL": broker, "INCMAN_BROKER_URL": broker}
    return make_stack(
        CONFIG,
        workers=1,
        queues="ingest,itsm.debug,maintenance",
        concurrency=2,
        extra_env=env,
        beat=True,  # the reconciler: what a crash leaves pending is sent again
    )


def test_crash_of_postgres_mid_burst_loses_no_acknowledged_event(
    stack: Any, cluster: PgCluster, database: str, broker: str
) -> None:
    dbname = database.rsplit("/", 1)[1]
    prefix = unique("burst")
    producer = Celery("producer", broker=broker)
    try:
        for start in range(0, EVENTS, PER_MESSAGE):
            batch = [
                {"device": f"{prefix}-{n:05d}", "severity": 4, "summary": "burst"}
                for n in range(start, start + PER_MESSAGE)
            ]
            producer.send_task("incman.ingest_events", queue="ingest", args=[batch])
    finally:
        producer.close()
    wait_for(
        lambda: stored(cluster, dbname, prefix) >= EVENTS // 3,
        timeout=180,
        interval=0.05,
        what="a third of the burst stored",
    )
    cluster.crash()
    cluster.start()
    wait_for(lambda: drained(broker), timeout=300, interval=0.5, what="every message handled")
    lost = EVENTS - stored(cluster, dbname, prefix)
    log = "".join(w.output()[-3000:] for w in stack.workers)
    assert lost == 0, f"{lost} of {EVENTS} acknowledged events lost\n{log}"
    assert "message dropped" not in log


def test_the_api_answers_503_with_retry_after_while_postgres_is_down(
    stack: Any, cluster: PgCluster
) -> None:
    client = stack.client
    event = {"device": unique("down"), "severity": 4, "summary": "database down"}
    # Connections the crash above broke are replaced first (one 503 each at most).
    wait_for(lambda: client.post("/api/v1/events", event).status_code == 201, what="a store")
    cluster.stop()
    try:
        answers = [
            client.get("/api/v1/events"),
            client.post("/api/v1/events", event),
            client.get("/api/v1/incidents"),
            client.post("/api/v1/alertmanager", {"alerts": [ALERT]}),
            client.get("/api/v1/triggers"),
        ]
    finally:
        cluster.start()
    for resp in answers:
        assert resp.status_code == 503, (resp.request.url, resp.status_code, resp.text)
        assert resp.headers["Retry-After"] == "5"
    # Back: the pool's broken connections are replaced, each failing at most one request.
    wait_for(lambda: client.post("/api/v1/events", event).status_code == 200, what="recovery")


def _query(cluster: PgCluster, dbname: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/{dbname}")
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _incidents(cluster: PgCluster, dbname: str, prefix: str) -> int:
    return int(
        _query(
            cluster,
            dbname,
            "SELECT count(*) FROM event_incidents l JOIN events e ON e.id = l.event_id "
            "JOIN incidents i ON i.id = l.incident_id WHERE e.device LIKE %s AND i.state = 'OPEN'",
            prefix + "%",
        )[0][0]
    )


def _remote(cluster: PgCluster, dbname: str, prefix: str) -> int:
    return int(
        _query(
            cluster,
            dbname,
            "SELECT count(*) FROM debug_incidents WHERE fields->>'device' LIKE %s",
            prefix + "%",
        )[0][0]
    )


def _post_all(client: Any, prefix: str, count: int, per_request: int) -> list[str]:
    """Send the events in batches; the ids of those the API acknowledged (a 503 while the
    database is down acknowledges nothing)."""
    accepted: list[str] = []
    for start in range(0, count, per_request):
        body = [
            {"device": f"{prefix}-{n:04d}", "severity": 4, "summary": "create"}
            for n in range(start, start + per_request)
        ]
        try:
            answer = client.post("/api/v1/events", body)
        except requests.RequestException:
            continue
        if answer.status_code == 200:
            accepted += [r["eventId"] for r in answer.json()["results"] if r["ok"]]
    return accepted


def test_a_crash_mid_creates_leaves_one_ticket_per_incident(
    stack: Any, cluster: PgCluster, database: str
) -> None:
    """The claim of an incident commits durably before its remote create: a crash between
    them can never make a second ticket when the create runs again."""
    dbname = database.rsplit("/", 1)[1]
    prefix = unique("crashcreate")
    client = stack.client
    wait_for(lambda: client.get("/api/v1/events?limit=1").status_code == 200, what="the API")
    first = _post_all(client, prefix + "-a", 200, 20)
    wait_for(
        lambda: _remote(cluster, dbname, prefix) > _incidents(cluster, dbname, prefix),
        timeout=120,
        interval=0.05,
        what="remote records made and not yet answered",
    )
    cluster.crash()
    cluster.start()
    accepted = first + _post_all(client, prefix + "-b", 100, 20)
    wait_for(
        lambda: _incidents(cluster, dbname, prefix) >= len(accepted),
        timeout=240,
        interval=0.5,
        what="an incident for every acknowledged event",
    )
    tickets = _query(
        cluster,
        dbname,
        "SELECT i.correlation_key, count(d.id) FROM incidents i "
        "LEFT JOIN debug_incidents d ON d.correlation_key = i.correlation_key "
        "WHERE i.dedupid LIKE %s GROUP BY i.correlation_key",
        prefix + "%",
    )
    assert len(tickets) >= len(accepted)  # (a dropped answer may have stored one more)
    assert all(count == 1 for _, count in tickets), [t for t in tickets if t[1] != 1]
    assert _remote(cluster, dbname, prefix) == len(tickets)  # and no ticket of no incident
