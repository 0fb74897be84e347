"""The core path with RabbitMQ as the broker: HTTP → PostgreSQL → RabbitMQ → worker → Debug.

RabbitMQ must be running (CI starts it): if it is not, these tests fail, they do not skip."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import Client, unique, wait_for
from kombu import Connection
from sqlalchemy import select

from incman.settings import Settings
from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, Incident
from workers.routes import all_queue_names

RABBITMQ_URL = os.environ.get("INCMAN_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
# RabbitMQ closes the channel of a consumer holding an unacknowledged message this long.
DEFAULT_CONSUMER_TIMEOUT = 1800.0

CONFIG: dict[str, Any] = {
    "triggers": [
        {"id": "rabbit-devices", "when": {"device": {"_m": "^rabbit-"}}},
        {"id": "flaky-devices", "when": {"device": {"_m": "^flaky-"}}},
    ],
    "notifications": [
        {
            "id": "debug-rabbit",
            "integration": "debug",
            "triggers": ["rabbit-devices"],
            "options": {"send_clear": True},
        },
        {
            "id": "debug-flaky",
            "integration": "debug",
            "triggers": ["flaky-devices"],
            "config": {"fail": "transient"},
        },
    ],
}


def purge_queues(url: str) -> None:
    """Empty incman's queues on the broker (the vhost may hold messages of earlier runs)."""
    with Connection(url, connect_timeout=5) as conn:
        try:
            conn.ensure_connection(max_retries=1)
        except Exception as exc:
            pytest.fail(
                f"RabbitMQ is not reachable at {url} ({exc}); start it with "
                "`rabbitmq-server -detached`"
            )
        for name in all_queue_names():
            channel = conn.channel()
            try:
                channel.queue_purge(name)
            except conn.channel_errors:  # never declared: nothing to purge
                pass
            finally:
                try:
                    channel.close()
                except conn.channel_errors:
                    pass


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="module")
def broker_url() -> Any:
    """A virtual host of this test module's own on the local RabbitMQ (made and deleted with
    rabbitmqctl), so nothing else on the broker shares its queues; where rabbitmqctl cannot
    be used (a remote INCMAN_TEST_RABBITMQ), the given vhost with incman's queues purged."""
    parts = urlsplit(RABBITMQ_URL)
    own = f"incman-test-{unique('vhost')}"
    if parts.hostname in ("127.0.0.1", "localhost") and _rabbitmqctl("add_vhost", own):
        _rabbitmqctl("set_permissions", "-p", own, parts.username or "guest", ".*", ".*", ".*")
        yield f"{parts.scheme}://{parts.netloc}/{own}"
        _rabbitmqctl("delete_vhost", own)
        return
    purge_queues(RABBITMQ_URL)
    yield RABBITMQ_URL


@pytest.fixture(scope="module")
def stack(make_stack: Any, broker_url: str) -> Any:
    purge_queues(broker_url)
    return make_stack(CONFIG, extra_env={"INCMAN_BROKER_URL": broker_url})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def incidents_for(dedupid: str) -> list[Incident]:
    with session_scope() as session:
        return list(session.scalars(select(Incident).where(Incident.dedupid == dedupid)))


def debug_incident(number: str) -> DebugIncident | None:
    with session_scope() as session:
        return session.scalars(select(DebugIncident).where(DebugIncident.number == number)).first()


def incident_of(client: Client, event_id: str) -> str:
    def ready() -> str | None:
        return client.get(f"/api/v1/events/{event_id}").json().get("incident")

    return str(wait_for(ready, what=f"an incident on event {event_id}"))


def test_the_stack_uses_rabbitmq(stack: Any, client: Client) -> None:
    assert stack.env["INCMAN_BROKER_URL"].startswith("amqp://")
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["broker"] == "ok"
    vhost = urlsplit(stack.env["INCMAN_BROKER_URL"]).path  # the worker names it, no password
    assert f"amqp://guest:**@127.0.0.1:5672{vhost}" in stack.workers[0].output()


def test_event_opens_one_incident_repeats_fold_and_a_clear_closes_it(client: Client) -> None:
    device = unique("rabbit")
    body = {
        "device": device,
        "component": "disk",
        "eventClass": "/Perf/Disk",
        "eventKey": "usage",
        "severity": 5,
        "summary": "Disk full",
    }
    first = client.post("/api/v1/events", body)
    assert first.status_code == 201, first.text
    event_id = first.json()["eventId"]
    number = incident_of(client, event_id)
    assert number.startswith("DBG")

    for _ in range(50):
        again = client.post("/api/v1/events", body)
        assert again.status_code == 200
        assert again.json()["eventId"] == event_id
    ev = client.get(f"/api/v1/events/{event_id}").json()
    assert ev["count"] == 51
    assert len(ev["occurrences"]) == 51
    assert len(incidents_for(ev["dedupid"])) == 1

    cleared = client.post("/api/v1/events", {**body, "severity": "clear", "summary": "Disk ok"})
    assert cleared.status_code in (200, 201), cleared.text
    assert cleared.json()["cleared"] == [event_id]
    wait_for(
        lambda: (row := debug_incident(number)) is not None and row.state == "closed",
        what="the remote close",
    )
    assert [i.state for i in incidents_for(ev["dedupid"])] == ["CLOSED"]


def consumer_timeout() -> float:
    """The broker's consumer_timeout in seconds, read with rabbitmqctl where it can be (on
    the broker's host); otherwise RabbitMQ's default."""
    try:
        out = subprocess.run(
            ["rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout)."],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_CONSUMER_TIMEOUT
    found = re.search(r"\{ok,\s*(\d+)\}", out)
    if found:
        return int(found.group(1)) / 1000
    return float("inf") if out.strip() == "undefined" else DEFAULT_CONSUMER_TIMEOUT


def test_retry_countdowns_stay_below_the_consumer_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """With acks_late a worker holds a retried message unacknowledged until its countdown
    ends; the longest countdown (default settings, a huge Retry-After) is well below it."""
    import workers.tasks as tasks

    monkeypatch.setattr(tasks, "get_settings", lambda: Settings())
    longest = tasks.backoff(tasks.MAX_RETRIES, retry_after=10**9)
    assert longest == Settings().visibility_timeout * 0.8
    assert longest < consumer_timeout() / 2


def test_a_transient_failure_is_retried_through_rabbitmq(stack: Any, client: Client) -> None:
    created = client.post(
        "/api/v1/events", {"device": unique("flaky"), "severity": 5, "summary": "Disk full"}
    )
    assert created.status_code == 201
    event_id = created.json()["eventId"]

    def attempts() -> int:
        with session_scope() as session:
            action = session.scalars(select(Action).where(Action.event_id == event_id)).first()
            return action.attempts if action is not None else 0

    # Each retry is a message with a countdown, held by the worker until it is due.
    wait_for(lambda: attempts() >= 3, timeout=30, what="two retries of the action")
    # The worker's channel survived: new work still flows.
    later = client.post(
        "/api/v1/events",
        {"device": unique("rabbit"), "severity": 4, "summary": "after the retries"},
    )
    incident_of(client, later.json()["eventId"])
    for worker in stack.workers:
        assert "PRECONDITION_FAILED" not in worker.output()
