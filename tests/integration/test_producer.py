"""Producers: the public task `incman.ingest_events` through the broker alone, and
`incman.producer` from Python; both store the event and route it to a Debug incident."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from helpers import Client, unique, wait_for

from incman.domain.event import EventError

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "produced", "when": {"device": {"_m": "^prod-"}}}],
    "notifications": [{"id": "debug-produced", "integration": "debug", "triggers": ["produced"]}],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    return make_stack(CONFIG)


def events_of(client: Client, device: str) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/events", params={"device": device})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def incident_of(client: Client, event_id: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev.get("incident") else None

    return wait_for(ready, what=f"an incident on event {event_id}")


def test_broker_only_producer_task_stores_and_routes(stack: Any) -> None:
    good, bad = unique("prod-broker"), unique("prod-bad")
    # A producer that has only Celery and the broker URL, not incman.
    producer = Celery("producer", broker=stack.env["INCMAN_BROKER_URL"])
    try:
        producer.send_task(
            "incman.ingest_events",
            queue="ingest",
            args=[
                [
                    {
                        "device": good,
                        "component": "disk",
                        "eventClass": "/Perf/Disk",
                        "severity": "Critical",
                        "summary": "Disk full",
                        "rack": "R7",
                    },
                    {"device": bad, "severity": "Loud", "summary": "refused"},
                ]
            ],
        )
    finally:
        producer.close()

    stored = wait_for(lambda: events_of(stack.client, good), what="the event from the broker")
    assert len(stored) == 1
    assert stored[0]["severity"] == 5
    assert stored[0]["details"] == {"rack": "R7"}
    assert events_of(stack.client, bad) == []  # same message, same transaction: refused
    ev = incident_of(stack.client, stored[0]["eventId"])
    assert ev["notificationId"] == "debug-produced"
    assert ev["incident"].startswith("DBG")


def test_send_events_from_python_stores_routes_and_reports_each_item(stack: Any) -> None:
    from incman.producer import send_event, send_events
    from workers.app import app

    assert app.conf.broker_url == stack.env["INCMAN_BROKER_URL"], (
        "workers.app was imported with another broker before this module's stack started"
    )
    device = unique("prod-py")
    results = send_events(
        [
            {"device": device, "severity": 4, "summary": "CPU hot", "eventKey": "cpu"},
            {"severity": 4, "summary": "no device"},
            {"device": device, "severity": 4, "summary": "CPU hot", "eventKey": "cpu"},
        ]
    )
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["ok"] and results[0]["created"] is True
    assert results[1] == {
        "index": 1,
        "ok": False,
        "error": "device: is required",
        "field": "device",
    }
    assert results[2]["ok"] and results[2]["created"] is False
    assert results[2]["count"] == 2 and results[2]["eventId"] == results[0]["eventId"]
    ev = incident_of(stack.client, results[0]["eventId"])
    assert ev["notificationId"] == "debug-produced"

    one = send_event(
        device=unique("prod-one"),
        severity="Error",
        summary="Link down",
        event_class="/Net/Link",
        interface="eth0",
    )
    assert one["created"] is True and one["dedupid"].endswith("|/Net/Link||4")
    stored = stack.client.get(f"/api/v1/events/{one['eventId']}").json()
    assert stored["eventClass"] == "/Net/Link"
    assert stored["details"] == {"interface": "eth0"}
    incident_of(stack.client, one["eventId"])

    with pytest.raises(EventError) as exc:
        send_event(device="prod-x", summary="no severity")
    assert exc.value.field == "severity"
