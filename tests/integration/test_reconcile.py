"""Redis restarted without persistence mid-run: the task messages are gone, the outbox is not;
the reconciler sends them again and exactly the missing incidents appear."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from conftest import Stack
from helpers import Client, unique, wait_for
from sqlalchemy import func, select

from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, EventIncident, Incident
from incman.testing.redisdb import OWNER_KEY

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "reco-devices", "when": {"device": {"_m": "^reco-"}}}],
    "notifications": [{"id": "debug-reco", "integration": "debug", "triggers": ["reco-devices"]}],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Stack:
    return make_stack(CONFIG, extra_env={"INCMAN_RECONCILE_AFTER": "1"})


def send(client: Client, device: str) -> str:
    resp = client.post("/api/v1/events", {"device": device, "severity": 4, "summary": "down"})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eventId"])


def linked(event_ids: list[str]) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(EventIncident)
                .join(Incident, Incident.id == EventIncident.incident_id)
                .where(EventIncident.event_id.in_(event_ids), Incident.state == "OPEN")
            )
            or 0
        )


def remote_records(event_ids: list[str]) -> list[tuple[str, int]]:
    """(correlation key, debug incidents with it) of each incident of these events."""
    with session_scope() as session:
        keys = list(
            session.scalars(
                select(Incident.correlation_key)
                .join(EventIncident, EventIncident.incident_id == Incident.id)
                .where(EventIncident.event_id.in_(event_ids))
            )
        )
        return [
            (
                key,
                int(
                    session.scalar(
                        select(func.count())
                        .select_from(DebugIncident)
                        .where(DebugIncident.correlation_key == key)
                    )
                    or 0
                ),
            )
            for key in keys
        ]


def test_lost_messages_are_sent_again_by_the_reconciler(stack: Stack) -> None:
    client = stack.client
    done = [send(client, unique("reco")) for _ in range(3)]
    wait_for(lambda: linked(done) == 3, what="the first incidents")

    stack.workers[0].stop()  # messages now wait in the broker...
    lost = [send(client, unique("reco")) for _ in range(10)]
    with session_scope() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Action)
                .where(Action.event_id.in_(lost), Action.status == "pending")
            )
            == 10
        )
    broker = redis.Redis.from_url(stack.env["INCMAN_REDIS_URL"])
    owner = broker.get(OWNER_KEY)
    broker.flushdb()  # ...and Redis loses them
    broker.set(OWNER_KEY, owner or b"")  # the session keeps its claim on the database

    stack.add_worker(name="after-restart")
    time.sleep(2)  # past INCMAN_RECONCILE_AFTER; nothing is left to deliver them
    assert linked(lost) == 0

    from incman.outbox.sender import send_task

    send_task("incman.reconcile", queue="maintenance")  # what beat sends every 15 s
    wait_for(lambda: linked(lost) == 10, what="the missing incidents")
    records = remote_records(done + lost)
    assert len(records) == 13
    assert all(count == 1 for _, count in records), records  # no duplicate ticket
    with session_scope() as session:
        statuses = set(
            session.scalars(select(Action.status).where(Action.event_id.in_(done + lost)))
        )
    assert statuses == {"done"}
