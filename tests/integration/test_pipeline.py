"""The core path for real: HTTP → PostgreSQL → trigger → Celery worker → Debug incident."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import Client, unique, wait_for
from sqlalchemy import func, select

from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, Incident

CONFIG: dict[str, Any] = {
    "triggers": [
        {"id": "clear-devices", "when": {"device": {"_m": "^clear-"}}},
        {"id": "keep-devices", "when": {"device": {"_m": "^keep-"}}},
        # ...and incman's own failure events too: what the loop guard is for
        {
            "id": "broken-devices",
            "when": {
                "_or": [
                    {"device": {"_m": "^broken-"}},
                    {"eventClass": {"_eq": "/App/Incman/Failure"}},
                ]
            },
        },
    ],
    "notifications": [
        {
            "id": "debug-clear",
            "integration": "debug",
            "triggers": ["clear-devices"],
            "options": {"send_clear": True},
        },
        {
            "id": "debug-keep",
            "integration": "debug",
            "triggers": ["keep-devices"],
            "options": {"send_clear": False},
        },
        {
            "id": "debug-broken",
            "integration": "debug",
            "triggers": ["broken-devices"],
            "options": {"initial_occurrence_only": False},
            "config": {"fail": "permanent"},
        },
    ],
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    return make_stack(CONFIG).client


def debug_incidents(number: str | None = None, key: str | None = None) -> list[DebugIncident]:
    with session_scope() as session:
        query = select(DebugIncident)
        if number:
            query = query.where(DebugIncident.number == number)
        if key:
            query = query.where(DebugIncident.correlation_key == key)
        return list(session.scalars(query))


def incidents_for(dedupid: str) -> list[Incident]:
    with session_scope() as session:
        return list(session.scalars(select(Incident).where(Incident.dedupid == dedupid)))


def event_with_incident(client: Client, event_id: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev.get("incident") else None

    return wait_for(ready, what=f"an incident on event {event_id}")


def test_event_opens_one_debug_incident_and_repeats_fold(client: Client) -> None:
    device = unique("keep")
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
    assert first.json()["created"] is True
    event_id = first.json()["eventId"]
    assert first.json()["dedupid"] == f"{device}|disk|/Perf/Disk|usage|5"

    ev = event_with_incident(client, event_id)
    assert ev["notificationId"] == "debug-keep"
    assert ev["incident"].startswith("DBG")
    assert ev["incidentUrl"].endswith(f"/debug/incidents/{ev['incident']}")
    assert ev["incidentCreatedAt"]
    assert client.get("/debug/incidents/" + ev["incident"]).status_code == 200

    for _ in range(50):
        again = client.post("/api/v1/events", body)
        assert again.status_code == 200
        assert again.json()["created"] is False
        assert again.json()["eventId"] == event_id
    ev = client.get(f"/api/v1/events/{event_id}").json()
    assert ev["count"] == 51
    assert len(ev["occurrences"]) == 51
    assert {o["occurrenceId"] for o in ev["occurrences"]} == {
        f"{event_id}:{n}" for n in range(1, 52)
    }
    assert len(incidents_for(ev["dedupid"])) == 1
    assert len(debug_incidents(ev["incident"])) == 1


def _clear(client: Client, device: str) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf/Disk",
            "eventKey": "usage",
            "severity": "clear",
            "summary": "Disk ok",
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def test_clear_closes_the_incident_with_send_clear(client: Client) -> None:
    device = unique("clear")
    created = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf/Disk",
            "eventKey": "usage",
            "severity": "Critical",
            "summary": "Disk full",
        },
    )
    event_id = created.json()["eventId"]
    number = event_with_incident(client, event_id)["incident"]
    cleared = _clear(client, device)
    assert cleared["status"] == "Cleared"
    assert cleared["cleared"] == [event_id]
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Cleared"
    wait_for(lambda: debug_incidents(number)[0].state == "closed", what="the remote close")
    # The incident's own row follows once the worker records what the remote did.
    dedupid = created.json()["dedupid"]
    wait_for(lambda: incidents_for(dedupid)[0].state == "CLOSED", what="the incident closed")


def test_clear_leaves_the_incident_open_without_send_clear(client: Client) -> None:
    device = unique("keep")
    created = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf/Disk",
            "eventKey": "usage",
            "severity": 4,
            "summary": "Disk full",
        },
    )
    event_id = created.json()["eventId"]
    number = event_with_incident(client, event_id)["incident"]
    _clear(client, device)
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Cleared"
    # A later event behind the clear is handled, so the clear's turn has passed.
    later = client.post(
        "/api/v1/events", {"device": unique("keep"), "severity": 4, "summary": "marker"}
    ).json()["eventId"]
    event_with_incident(client, later)
    assert debug_incidents(number)[0].state == "open"
    assert incidents_for(created.json()["dedupid"])[0].state == "OPEN"


def test_unmatched_clear_is_stored_as_cleared(client: Client) -> None:
    cleared = _clear(client, unique("nothing"))
    assert cleared["created"] is True
    assert client.get(f"/api/v1/events/{cleared['eventId']}").json()["status"] == "Cleared"


def test_a_permanent_failure_raises_a_failure_event(client: Client) -> None:
    """Seed 000: "Any issues detected during the run of the notification will result in an
    event"; 3.1.0: "Prevent an event loop when processing errors if 'Send only on initial
    occurrence' not selected". debug-broken's trigger matches its own failure events and it
    acts on every occurrence: only the loop guard keeps the failure event from acting."""
    device = unique("broken")
    created = client.post("/api/v1/events", {"device": device, "severity": 4, "summary": "x"})
    assert created.status_code == 201

    def failure_event() -> list[dict[str, Any]]:
        items = client.get(
            "/api/v1/events", params={"device": "incman", "component": "debug-broken"}
        ).json()
        return items["items"]

    failures = wait_for(failure_event, what="a /App/Incman/Failure event")
    assert failures[0]["eventClass"] == "/App/Incman/Failure"
    assert "debug-broken" in failures[0]["summary"]
    # Viewers read events: the remote's words stay in the dead letter, for managers.
    assert (
        "failed to create: the remote system's answer could not be used" in (failures[0]["summary"])
    )
    assert "permanent failure injected" not in str(failures[0])
    named = int(re.findall(r"action (\d+) in the dead letter", failures[0]["summary"])[0])
    dead = client.get("/api/v1/dead-letter", params={"notificationId": "debug-broken"}).json()
    record = next(item for item in dead["items"] if item["id"] == named)
    assert "permanent failure injected" in record["errorDetail"]
    assert failures[0]["details"]["actionId"] == named
    # It never triggers a notification itself: no action was written with it (they are
    # written in the same transaction as the event, so none can come later).
    assert failures[0]["incident"] is None
    with session_scope() as session:
        acting = session.scalars(
            select(Action.kind).where(Action.event_id == failures[0]["eventId"])
        ).all()
    assert acting == []
    again = client.post(
        "/api/v1/events", {"device": unique("broken"), "severity": 4, "summary": "y"}
    )
    assert again.status_code == 201
    wait_for(
        lambda: client.get(f"/api/v1/events/{failures[0]['eventId']}").json()["count"] == 2,
        what="the second failure folded into the failure event",
    )
    with session_scope() as session:
        acting = session.scalars(
            select(Action.kind).where(Action.event_id == failures[0]["eventId"])
        ).all()
    assert acting == []  # a repeat of it does not act either
    with session_scope() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Incident)
                .where(Incident.notification_id == "debug-broken", Incident.state != "PENDING")
            )
            == 0
        )


def test_a_batch_folds_repeats_and_keeps_order_with_clears(client: Client) -> None:
    device, other = unique("keep"), unique("keep")
    ev = {"device": device, "component": "c", "eventClass": "/B", "severity": 4, "summary": "batch"}
    batch = [
        ev,
        {**ev, "summary": "again"},
        {"device": other, "severity": 3, "summary": "o"},
        {**ev, "summary": "third"},
        {**ev, "severity": 0, "summary": "fine"},
        {**ev, "summary": "after the clear"},
        {"device": device},
    ]
    resp = client.post("/api/v1/events", batch)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["ok"] for r in results] == [True] * 6 + [False]
    assert [r["count"] for r in results[:4]] == [1, 2, 1, 3]
    assert [r["created"] for r in results[:4]] == [True, False, True, False]
    assert results[0]["eventId"] == results[1]["eventId"] == results[3]["eventId"]
    assert results[4]["status"] == "Cleared"
    assert results[4]["cleared"] == [results[0]["eventId"]]
    assert results[5]["created"] is True and results[5]["eventId"] != results[0]["eventId"]
    assert results[6]["field"] == "severity"
    first = client.get(f"/api/v1/events/{results[0]['eventId']}").json()
    assert first["count"] == 3 and first["status"] == "Cleared"
    assert first["summary"] == "third"
    assert sorted(o["seq"] for o in first["occurrences"]) == [1, 2, 3]


def _stored(client: Client, device: str) -> int:
    return int(client.get("/api/v1/events", params={"device": device}).json()["total"])


def test_bad_input_gets_a_reason_and_stores_nothing(client: Client) -> None:
    device = unique("keep")
    url = client.base + "/api/v1/events"
    cases = [
        (b'{"device": "' + device.encode() + b'", "severity": 4,', 400, None),  # malformed
        ({"severity": 4, "summary": "no device"}, 422, "device"),
        ({"device": device, "summary": "no severity"}, 422, "severity"),
        ({"device": device, "severity": 4}, 422, "summary"),
        ({"device": device, "severity": "catastrophic", "summary": "s"}, 422, "severity"),
        ({"device": device, "severity": 9, "summary": "s"}, 422, "severity"),
        ({"device": device, "severity": 4, "summary": "x" * (1 << 20)}, 413, None),
    ]
    for body, status, field in cases:
        if isinstance(body, bytes):
            resp = client.session.post(
                url, data=body, timeout=30, headers={"Content-Type": "application/json"}
            )
        else:
            resp = client.post("/api/v1/events", body)
        assert resp.status_code == status, (body if len(str(body)) < 200 else status, resp.text)
        answer = resp.json()
        assert answer["detail"], answer
        if field:
            assert answer["field"] == field
    assert _stored(client, device) == 0


def test_keys_are_required_and_roles_enforced(client: Client) -> None:
    import requests

    device = unique("keep")
    body = {"device": device, "severity": 4, "summary": "s"}
    url = client.base + "/api/v1/events"
    assert requests.post(url, json=body, timeout=30).status_code == 401
    wrong = requests.post(url, json=body, timeout=30, headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["detail"]
    # The ingest key may send but not act on events.
    sent = requests.post(url, json=body, timeout=30, headers={"zenoss-api-key": "ingest-key"})
    assert sent.status_code == 201
    ack = requests.post(
        f"{url}/{sent.json()['eventId']}/acknowledge", timeout=30, params={"api_key": "ingest-key"}
    )
    assert ack.status_code == 403
    assert _stored(client, device) == 1
