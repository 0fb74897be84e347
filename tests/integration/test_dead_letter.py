"""Dead letter: creations that failed for good during an outage are listed, and replayed
(over the API and with the CLI's --all) once the outage is over: exactly the missing
incidents appear."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from conftest import Stack
from helpers import Client, unique, wait_for
from sqlalchemy import func, select

from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, EventIncident, Incident

NOTIFICATION = {"id": "debug-dead", "integration": "debug", "triggers": ["dead-devices"]}


@pytest.fixture(scope="module")
def outage(make_stack: Any) -> Stack:
    """A stack whose Debug notification fails permanently until `end_outage` (no clock: the
    outage lasts however long a busy machine takes)."""
    stack = make_stack({"triggers": [{"id": "dead-devices", "when": {"device": {"_m": "^dead-"}}}]})
    made = stack.client.post(
        "/api/v1/notifications", {**NOTIFICATION, "config": {"fail": "permanent"}}
    )
    assert made.status_code == 201, made.text
    return stack


def end_outage(client: Client) -> None:
    """Mend the notification, then wait until the workers use the mended one: a probe event
    gets its incident (replayed while a worker still read the old configuration)."""
    mended = client.put("/api/v1/notifications/debug-dead", NOTIFICATION)
    assert mended.status_code == 200, mended.text
    probe = client.post(
        "/api/v1/events", {"device": unique("dead-probe"), "severity": 5, "summary": "probe"}
    ).json()["eventId"]

    def recovered() -> bool:
        if created([probe]):
            return True
        dead = dead_ids([probe])
        if dead:
            client.post("/api/v1/dead-letter/replay", {"ids": dead})
        return False

    wait_for(recovered, timeout=60, what="the workers to see the mended notification")


def dead_ids(event_ids: list[str]) -> list[int]:
    with session_scope() as session:
        return sorted(
            session.scalars(
                select(Action.id).where(Action.event_id.in_(event_ids), Action.status == "dead")
            )
        )


def created(event_ids: list[str]) -> list[tuple[str, int]]:
    """(event id, debug incidents made for it) of each event that has an incident."""
    with session_scope() as session:
        rows = session.execute(
            select(EventIncident.event_id, Incident.correlation_key)
            .join(Incident, Incident.id == EventIncident.incident_id)
            .where(EventIncident.event_id.in_(event_ids), Incident.state == "OPEN")
        ).all()
        return [
            (
                event_id,
                int(
                    session.scalar(
                        select(func.count())
                        .select_from(DebugIncident)
                        .where(DebugIncident.correlation_key == key)
                    )
                    or 0
                ),
            )
            for event_id, key in rows
        ]


def test_dead_actions_are_listed_and_replayed_after_the_outage(outage: Stack) -> None:
    stack = outage
    client = stack.client
    events = []
    for _ in range(6):
        resp = client.post(
            "/api/v1/events", {"device": unique("dead"), "severity": 5, "summary": "down"}
        )
        assert resp.status_code == 201
        events.append(resp.json()["eventId"])
    ids = wait_for(
        lambda: len(dead_ids(events)) == 6 and dead_ids(events), what="six dead creations"
    )

    listed = client.get("/api/v1/dead-letter", params={"notificationId": "debug-dead"}).json()
    assert listed["total"] == 6
    assert sorted(item["id"] for item in listed["items"]) == ids
    assert all("permanent failure injected" in item["errorDetail"] for item in listed["items"])
    assert all("permanent failure injected" not in item["lastError"] for item in listed["items"])
    assert Client(stack.url, "ingest-key").get("/api/v1/dead-letter").status_code == 403
    bad = client.post("/api/v1/dead-letter/replay", {"ids": ["x"]})
    assert bad.status_code == 422 and "positive integers" in bad.json()["detail"]

    end_outage(client)

    answer = client.post("/api/v1/dead-letter/replay", {"ids": ids[:3]}).json()
    assert answer == {"replayed": 3, "ids": ids[:3], "notDead": [], "missing": []}
    wait_for(lambda: len(created(events)) == 3, what="three replayed incidents")

    cli = subprocess.run(
        [sys.executable, "-m", "incman.cli", "dead-letter", "replay", "--all"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "replaying [" in cli.stderr
    wait_for(lambda: len(created(events)) == 6, what="every missing incident")
    assert all(count == 1 for _, count in created(events))  # exactly once each
    assert dead_ids(events) == []
    again = client.post("/api/v1/dead-letter/replay", {"ids": ids[:1]}).json()
    assert again["replayed"] == 0 and again["notDead"] == ids[:1]
