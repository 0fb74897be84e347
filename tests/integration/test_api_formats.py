"""The other ingest formats for real: seed 003 event management, seed 004 ITSM Events API,
Alertmanager webhooks, PagerDuty Events v2 and seed 002 incident objects, through a running
API and worker into Debug incidents."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import API_KEY, Client, unique, wait_for
from sqlalchemy import select, update

from incman.store.db import session_scope
from incman.store.itsm_models import ItsmRequest
from incman.store.models import Action, DebugIncident, utcnow

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "warning-or-worse", "when": {"severity": {"_gte": 3}}}],
    "notifications": [
        {
            "id": "debug-formats",
            "integration": "debug",
            "triggers": ["warning-or-worse"],
            "options": {"send_clear": True},
        }
    ],
    "devices": [{"id": "db07", "service_instance": "Database Service"}],
    "entity_incidents": {"severity_map": {1: "critical", 2: "warning", 3: "clear"}},
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    return make_stack(CONFIG).client


def event(client: Client, event_id: str) -> dict[str, Any]:
    resp = client.get(f"/api/v1/events/{event_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def incident_of(client: Client, event_id: str) -> str:
    return str(
        wait_for(
            lambda: event(client, event_id)["incident"], what=f"an incident on event {event_id}"
        )
    )


def debug_incident(number: str) -> DebugIncident:
    with session_scope() as session:
        row = session.scalars(select(DebugIncident).where(DebugIncident.number == number)).one()
        session.expunge(row)
        return row


def send_event(client: Client, device: str, severity: int = 4) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/events", {"device": device, "severity": severity, "summary": f"{device} is down"}
    )
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


# -- seed 003: event management ------------------------------------------------------------


def seed_post(client: Client, path: str, body: dict[str, Any]) -> requests.Response:
    """As the seed's curl examples: the key in the zenoss-api-key header."""
    return requests.post(
        client.base + path,
        json=body,
        timeout=30,
        headers={"zenoss-api-key": API_KEY, "content-type": "application/json"},
    )


def test_annotate_seed_example_creates_and_replaces_annotations(client: Client) -> None:
    first = send_event(client, unique("em-a"))
    second_id = send_event(client, dev := unique("em-b"))["eventId"]
    send_event(client, dev)  # a second occurrence: <eventId>:2
    number = incident_of(client, first["eventId"])
    earlier = seed_post(
        client,
        "/v1/event-management/annotate",
        {
            "annotations": [
                {
                    "eventId": second_id,
                    "occurrenceId": f"{second_id}:1",
                    "annotation": "first words",
                }
            ]
        },
    )
    annotation_id = earlier.json()["annotationResponses"][0]["annotationId"]

    resp = seed_post(
        client,
        "/v1/event-management/annotate",
        {
            "annotations": [
                {
                    "eventId": first["eventId"],
                    "occurrenceId": f"{first['eventId']}:1",
                    "annotation": "my sample annotation",
                },
                {
                    "eventId": second_id,
                    "occurrenceId": f"{second_id}:2",
                    "annotationId": annotation_id,
                    "annotation": "my sample annotation update",
                },
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    created, replaced = resp.json()["annotationResponses"]
    assert created["success"] is True and created["annotationId"]
    assert (created["eventId"], created["occurrenceId"]) == (
        first["eventId"],
        f"{first['eventId']}:1",
    )
    assert replaced == {"eventId": second_id, "occurrenceId": f"{second_id}:2", "success": True}
    notes = event(client, second_id)["notes"]
    assert [(n["id"], n["text"]) for n in notes] == [(annotation_id, "my sample annotation update")]
    assert [n["id"] for n in event(client, first["eventId"])["notes"]] == [created["annotationId"]]
    # Annotations are event notes: they reach the incident.
    wait_for(
        lambda: any(
            n["text"].endswith("my sample annotation") for n in debug_incident(number).notes
        ),
        what="the note on the incident",
    )


def test_annotate_partial_success(client: Client) -> None:
    ev = send_event(client, unique("em-p"))["eventId"]
    resp = seed_post(
        client,
        "/v1/event-management/annotate",
        {
            "annotations": [
                {"eventId": ev, "occurrenceId": f"{ev}:1", "annotation": "fine"},
                {"eventId": ev, "occurrenceId": f"{ev}:9", "annotation": "no such occurrence"},
                {
                    "eventId": ev,
                    "occurrenceId": f"{ev}:1",
                    "annotationId": "nope",
                    "annotation": "x",
                },
                {"eventId": "missing", "occurrenceId": "missing:1", "annotation": "x"},
                {"eventId": ev, "occurrenceId": f"{ev}:1", "annotation": 7},
            ]
        },
    )
    assert resp.status_code == 200
    answers = resp.json()["annotationResponses"]
    assert [a["success"] for a in answers] == [True, False, False, False, False]
    assert "no occurrence" in answers[1]["error"]
    assert "annotationId" in answers[2]["error"]
    assert "annotation" in answers[4]["error"]
    assert [n["text"] for n in event(client, ev)["notes"]] == ["fine"]


def test_annotate_without_annotation_text(client: Client) -> None:
    """Seed 003: `annotation (string, optional)` — an item needs only eventId and
    occurrenceId. Without it a new annotation is created empty (its id comes back to be
    filled later) and an update with annotationId empties the annotation."""
    ev = send_event(client, unique("em-o"))["eventId"]
    number = incident_of(client, ev)
    resp = seed_post(
        client,
        "/v1/event-management/annotate",
        {"annotations": [{"eventId": ev, "occurrenceId": f"{ev}:1"}]},
    )
    assert resp.status_code == 200, resp.text
    [answer] = resp.json()["annotationResponses"]
    assert answer["success"] is True and answer["annotationId"]
    assert [(n["id"], n["text"]) for n in event(client, ev)["notes"]] == [
        (answer["annotationId"], "")
    ]
    with session_scope() as session:  # an empty note says nothing to the incident
        kinds = list(session.scalars(select(Action.kind).where(Action.event_id == ev)))
    assert kinds == ["create"]

    filled = seed_post(
        client,
        "/v1/event-management/annotate",
        {
            "annotations": [
                {
                    "eventId": ev,
                    "occurrenceId": f"{ev}:1",
                    "annotationId": answer["annotationId"],
                    "annotation": "filled in",
                }
            ]
        },
    )
    assert filled.json()["annotationResponses"][0]["success"] is True
    emptied = seed_post(
        client,
        "/v1/event-management/annotate",
        {
            "annotations": [
                {
                    "eventId": ev,
                    "occurrenceId": f"{ev}:1",
                    "annotationId": answer["annotationId"],
                    "annotation": None,
                }
            ]
        },
    )
    assert emptied.json()["annotationResponses"][0]["success"] is True
    assert [n["text"] for n in event(client, ev)["notes"]] == [""]
    assert debug_incident(number).notes == []


def test_status_seed_example_and_every_status(client: Client) -> None:
    one = send_event(client, unique("em-s"))["eventId"]
    two = send_event(client, unique("em-t"))["eventId"]
    number = incident_of(client, one)
    resp = seed_post(
        client,
        "/v1/event-management/status",
        {
            "statuses": [
                {"eventId": one, "occurrenceId": f"{one}:1", "acknowledged": True},
                {
                    "eventId": two,
                    "occurrenceId": f"{two}:1",
                    "statusWrapper": {"status": "EM_STATUS_SUPPRESSED"},
                },
                {"eventId": two, "occurrenceId": f"{two}:1"},
            ]
        },
    )
    assert resp.status_code == 200, resp.text
    answers = resp.json()["statusResponses"]
    assert answers[:2] == [
        {"eventId": one, "occurrenceId": f"{one}:1", "success": True},
        {"eventId": two, "occurrenceId": f"{two}:1", "success": True},
    ]
    assert answers[2]["success"] is False and "acknowledged or statusWrapper" in answers[2]["error"]
    assert event(client, one)["status"] == "Acknowledged"
    assert event(client, one)["acknowledgedBy"] == "tester"
    assert event(client, two)["status"] == "Suppressed"

    def status(ev: str, name: str) -> dict[str, Any]:
        body = {
            "statuses": [
                {"eventId": ev, "occurrenceId": f"{ev}:1", "statusWrapper": {"status": name}}
            ]
        }
        return seed_post(client, "/v1/event-management/status", body).json()["statusResponses"][0]

    assert status(one, "STATUS_CLOSED")["success"]
    assert event(client, one)["status"] == "Closed"
    wait_for(lambda: debug_incident(number).state == "closed", what="the incident closed")
    refused = status(one, "STATUS_OPEN")
    assert refused["success"] is False and "only open events" in refused["error"]
    assert status(one, "STATUS_DEFAULT")["success"]
    assert event(client, one)["status"] == "New"
    assert status(two, "STATUS_DEFAULT")["success"]
    assert event(client, two)["status"] == "New"


def test_event_management_needs_the_operator_role(client: Client) -> None:
    resp = requests.post(
        client.base + "/v1/event-management/status",
        headers={"zenoss-api-key": "ingest-key"},
        json={"statuses": [{"eventId": "x", "occurrenceId": "x:1", "acknowledged": True}]},
        timeout=30,
    )
    assert resp.status_code == 403
    assert seed_post(client, "/v1/event-management/status", {"statuses": []}).status_code == 422
    bad_key = requests.post(
        client.base + "/v1/event-management/annotate",
        headers={"zenoss-api-key": "wrong"},
        json={},
        timeout=30,
    )
    assert bad_key.status_code == 401


# -- seed 004: ITSM Events API -------------------------------------------------------------


def itsm(
    client: Client, query: str, path: str = "/events", key: str = API_KEY
) -> requests.Response:
    return requests.post(
        f"{client.base}{path}?{query}", timeout=30, headers={"Authorization": f"Bearer {key}"}
    )


def test_itsm_seed_example_creates_then_matches_without_a_ci(client: Client) -> None:
    tool = unique("MyMonitoringTool")
    query = f"subject=Server%20Down&source={tool}&sourceID=882395&note=Not%20reachable"
    created = itsm(client, query)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["subject"] == "Server Down" and record["sourceID"] == "882395"
    assert (record["category"], record["status"], record["impact"]) == ("other", "assigned", None)
    assert record["requested_for"] == record["requested_by"] == {"name": "tester", "id": None}
    ev = event(client, record["eventId"])
    # no CI, no service instance: no device (the tool is the event's source)
    assert (ev["device"], ev["source"], ev["summary"], ev["eventClass"]) == (
        "",
        tool,
        "Server Down",
        "/ITSM/Request",
    )
    assert [n["text"] for n in ev["notes"]] == ["Not reachable"]
    incident_of(client, record["eventId"])  # requests flow to notifications like any event

    again = itsm(client, query.replace("sourceID", "source_id"), path="/v1/events")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == record["id"]
    assert len(event(client, record["eventId"])["notes"]) == 1  # same note: no change

    other_note = itsm(client, query.replace("Not%20reachable", "Still%20down"))
    assert other_note.status_code == 201  # without a CI the note is part of the match
    other_key = itsm(client, query, key="ingest-key")
    assert other_key.status_code == 201  # and so is the account (the caller's key)
    assert len({record["id"], other_note.json()["id"], other_key.json()["id"]}) == 3


def test_itsm_with_a_ci_adds_new_notes_and_takes_only_listed_changes(client: Client) -> None:
    tool = unique("MyMonitoringTool")
    base = (
        f"subject=Server%20Down&source={tool}&sourceID=12345&ci_source=MyDiscoveryTool"
        "&ci_sourceID=56789"
    )
    created = itsm(client, base + "&note=first")
    assert created.status_code == 201
    rid, event_id = created.json()["id"], created.json()["eventId"]
    assert event(client, event_id)["device"] == "MyDiscoveryTool:56789"

    updated = itsm(
        client,
        base.replace("Server%20Down", "Other")
        + "&note=second&impact=low&status=in_progress&team=Unix%20Servers",
    )
    assert updated.status_code == 200, updated.text
    out = updated.json()
    assert out["id"] == rid
    assert (out["subject"], out["impact"]) == ("Server Down", None)  # not listed: ignored
    assert (out["status"], out["team"]) == ("in_progress", {"name": "Unix Servers", "id": None})
    assert out["member"] == {"name": "tester", "id": None}
    assert set(updated.headers["X-Incman-Ignored"].split(",")) == {"impact", "subject"}
    assert [n["text"] for n in event(client, event_id)["notes"]] == ["first", "second"]
    assert itsm(client, base + "&note=first").status_code == 200
    assert len(event(client, event_id)["notes"]) == 2  # a note seen before is not added

    done = itsm(client, base + "&status=completed&completion_reason=solved")
    assert done.status_code == 200 and done.json()["completed_at"]
    assert event(client, event_id)["status"] == "Closed"
    assert itsm(client, base).status_code == 201  # a completed request is not open


def test_itsm_the_24_hour_boundary(client: Client) -> None:
    query = f"subject=Disk&source={unique('Mon')}&ci=db07"
    first = itsm(client, query).json()
    assert first["service_instance"] == {"name": "Database Service", "id": None}
    assert first["category"] == "incident" and first["impact"] == "top"

    def age(seconds: float) -> None:
        with session_scope() as session:
            session.execute(
                update(ItsmRequest)
                .where(ItsmRequest.id == first["id"])
                .values(created_at=utcnow() - timedelta(seconds=seconds))
            )

    age(24 * 3600 - 60)
    assert itsm(client, query).json()["id"] == first["id"]
    age(24 * 3600 + 60)
    later = itsm(client, query)
    assert later.status_code == 201 and later.json()["id"] != first["id"]


def test_itsm_parameters_in_a_json_body(client: Client) -> None:
    body = {
        "subject": "Printer jam",
        "source": unique("Mon"),
        "service_instance": "Print",
        "impact": "low",
    }
    created = client.post("/v1/events", body)
    assert created.status_code == 201, created.text
    assert (created.json()["category"], created.json()["impact"]) == ("incident", "low")
    assert event(client, created.json()["eventId"])["device"] == "Print"
    assert client.post("/v1/events", body).json()["id"] == created.json()["id"]
    assert client.post("/events", [body]).status_code == 422


def test_itsm_bad_parameters_are_422(client: Client) -> None:
    for query, field in (
        ("source=x", "subject"),
        ("subject=s&colour=red", "colour"),
        ("subject=s&status=closed", "status"),
        ("subject=s&sourceID=1&source_id=2", "source_id"),
    ):
        resp = itsm(client, query)
        assert resp.status_code == 422, query
        assert resp.json()["field"] == field


# -- Alertmanager --------------------------------------------------------------------------


def alertmanager(client: Client, name: str) -> list[dict[str, Any]]:
    body = json.loads((SAMPLES / f"{name}.json").read_text())
    resp = client.post("/api/v1/alertmanager", body)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert all(r["ok"] for r in results), results
    return results


def test_alertmanager_firing_partial_resolve_resolved(client: Client) -> None:
    db01, db02 = alertmanager(client, "firing")
    assert db01["created"] and db02["created"]
    number = incident_of(client, db01["eventId"])
    ev = event(client, db01["eventId"])
    assert (ev["device"], ev["component"], ev["eventClass"], ev["eventKey"], ev["severity"]) == (
        "db01:9100",
        "postgres",
        "/Alertmanager/DiskFull",
        "be769692bbeaf3e2",
        5,
    )
    assert ev["details"]["labels"]["instance"] == "db01:9100"

    cleared, still = alertmanager(client, "partial-resolve")
    assert cleared["status"] == "Cleared" and cleared["cleared"] == [db01["eventId"]]
    assert still["eventId"] == db02["eventId"] and still["count"] == 2
    assert event(client, db01["eventId"])["status"] == "Cleared"
    assert event(client, db02["eventId"])["status"] == "New"
    wait_for(lambda: debug_incident(number).state == "closed", what="Send Clear on db01")

    (resolved,) = alertmanager(client, "resolved")
    assert resolved["status"] == "Cleared"
    assert event(client, resolved["eventId"])["eventClass"] == "/Alertmanager/HighLatency"


def test_alertmanager_bad_alerts_fail_alone(client: Client) -> None:
    resp = client.post(
        "/api/v1/alertmanager",
        {
            "version": "4",
            "status": "firing",
            "alerts": [
                {"status": "firing", "labels": {"instance": "x"}},
                {"status": "firing", "labels": {"alertname": "Fine", "instance": unique("am")}},
            ],
        },
    )
    assert resp.status_code == 200
    bad, good = resp.json()["results"]
    assert bad["ok"] is False and bad["field"] == "alerts[0].labels.alertname"
    assert good["ok"] is True
    assert client.post("/api/v1/alertmanager", {"version": "3", "alerts": []}).status_code == 422


# -- PagerDuty Events v2 -------------------------------------------------------------------


def pagerduty(client: Client, body: Any) -> requests.Response:
    """No header: the API key travels as the routing_key, as PagerDuty senders do."""
    return requests.post(client.base + "/v2/enqueue", json=body, timeout=30)


def test_pagerduty_trigger_acknowledge_resolve(client: Client) -> None:
    key = unique("pd")
    trigger = {
        "routing_key": "ingest-key",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": "Disk full",
            "source": unique("pd-host"),
            "severity": "critical",
            "component": "disk",
        },
    }
    first = pagerduty(client, trigger)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "success" and first.json()["message"] == "Event processed"
    assert first.json()["dedup_key"] == key
    (event_id,) = first.json()["eventIds"]
    assert pagerduty(client, trigger).json()["eventIds"] == [event_id]
    ev = event(client, event_id)
    assert (ev["dedupid"], ev["count"], ev["severity"]) == (key, 2, 5)
    number = incident_of(client, event_id)

    refused = pagerduty(
        client, {"routing_key": "ingest-key", "event_action": "acknowledge", "dedup_key": key}
    )
    assert refused.status_code == 403  # acknowledging is an operator's decision
    ack = pagerduty(
        client, {"routing_key": API_KEY, "event_action": "acknowledge", "dedup_key": key}
    )
    assert ack.status_code == 202 and ack.json()["eventIds"] == [event_id]
    assert event(client, event_id)["status"] == "Acknowledged"
    resolve = pagerduty(
        client, {"routing_key": "ingest-key", "event_action": "resolve", "dedup_key": key}
    )
    assert resolve.status_code == 202 and resolve.json()["eventIds"] == [event_id]
    assert event(client, event_id)["status"] == "Cleared"
    wait_for(lambda: debug_incident(number).state == "closed", what="the incident closed")
    nothing = pagerduty(
        client, {"routing_key": "ingest-key", "event_action": "resolve", "dedup_key": key}
    )
    assert nothing.status_code == 202 and nothing.json()["eventIds"] == []


def test_pagerduty_dedup_key_made_errors_and_keys(client: Client) -> None:
    made = pagerduty(
        client,
        {
            "routing_key": "ingest-key",
            "event_action": "trigger",
            "payload": {"summary": "s", "source": unique("pd"), "severity": "info"},
        },
    )
    assert made.status_code == 202 and len(made.json()["dedup_key"]) == 32
    invalid = pagerduty(
        client,
        {
            "routing_key": "ingest-key",
            "event_action": "trigger",
            "payload": {"source": "h", "severity": "fatal"},
        },
    )
    assert invalid.status_code == 400
    assert invalid.json()["status"] == "invalid event"
    assert len(invalid.json()["errors"]) == 2
    assert (
        pagerduty(
            client, {"routing_key": "nope", "event_action": "resolve", "dedup_key": "x"}
        ).status_code
        == 401
    )
    assert pagerduty(client, {"event_action": "resolve", "dedup_key": "x"}).status_code == 401
    header = client.post(
        "/v2/enqueue",
        {"routing_key": "an-integration-key", "event_action": "resolve", "dedup_key": "x"},
    )
    assert header.status_code == 202  # a header key wins over the routing key


# -- seed 002: incident objects ------------------------------------------------------------


def entity(client: Client, body: Any) -> requests.Response:
    return client.post("/api/v1/entity-incidents", body)


def test_entity_incident_lifecycle(client: Client) -> None:
    obj = {
        "id": unique("inc"),
        "entityId": unique("router"),
        "text": "Interface down",
        "state": 1,
        "type": 1,
        "entityType": 1,
        "timestamp": 1763872000,
        "reason": {"code": 2},
    }
    first = entity(client, obj)
    assert first.status_code == 201, first.text
    event_id = first.json()["eventId"]
    ev = event(client, event_id)
    assert (ev["device"], ev["summary"], ev["severity"]) == (obj["entityId"], "Interface down", 5)
    assert ev["details"]["reason"]["meaning"].startswith("Deprecated. Now treated as code 10.")
    assert ev["details"]["reason"]["treatedAs"] == 10
    number = incident_of(client, event_id)

    acked = {**obj, "acknowledgedBy": "u-7", "comment": "on it", "commentedBy": "u-7"}
    again = entity(client, acked)
    assert again.status_code == 200 and again.json()["eventId"] == event_id
    assert entity(client, acked).status_code == 200
    ev = event(client, event_id)
    assert (ev["status"], ev["acknowledgedBy"], ev["count"]) == ("Acknowledged", "u-7", 1)
    assert [(n["author"], n["text"]) for n in ev["notes"]] == [("u-7", "on it")]

    cleared = entity(client, {**acked, "clearTimestamp": 1763872500})
    assert cleared.json()["status"] == "Cleared"
    back = client.get(f"/api/v1/entity-incidents/{obj['id']}").json()
    assert (back["clearTimestamp"], back["status"]) == (1763872500, "Cleared")  # as it was sent
    wait_for(lambda: debug_incident(number).state == "closed", what="Send Clear")
    removed = entity(
        client,
        {
            **acked,
            "clearTimestamp": 1763872500,
            "removed": {"userId": "u-8", "timestamp": 1763872600},
        },
    )
    assert removed.status_code == 200 and removed.json()["status"] == "Closed"


SEED_002_FIELDS = [
    "id",
    "entityId",
    "data",
    "acknowledgedBy",
    "acknowledgementTimestamp",
    "clearTimestamp",
    "comment",
    "commentedBy",
    "commentTimestamp",
    "entityType",
    "localTimestamp",
    "parentChainId",
    "state",
    "text",
    "timestamp",
    "type",
    "branchId",
    "reason",
    "removed",
]


def test_entity_incidents_read_back_in_the_seeds_shape(client: Client) -> None:
    """Seed 002's incident object (acknowledgedBy, clearTimestamp, comment, commentedBy,
    parentChainId, removed, ...) comes back as an object of that shape, up to date with
    what was done to its event in incman since."""
    obj = {
        "id": unique("inc"),
        "entityId": unique("link"),
        "text": "Link flapping",
        "state": 1,
        "type": 2,
        "entityType": 2,
        "parentChainId": "chain-17",
        "branchId": "b-3",
        "data": "ifIndex=4",
        "timestamp": 1763872000,
        "localTimestamp": 1763875600,
        "reason": {"code": 7},
    }
    event_id = entity(client, obj).json()["eventId"]
    one = client.get(f"/api/v1/entity-incidents/{obj['id']}")
    assert one.status_code == 200, one.text
    back = one.json()
    assert set(back) >= set(SEED_002_FIELDS)
    for key in ("id", "entityId", "text", "state", "type", "entityType", "parentChainId"):
        assert back[key] == obj[key], key
    assert (back["branchId"], back["data"], back["timestamp"]) == ("b-3", "ifIndex=4", 1763872000)
    assert back["reason"]["code"] == 7 and back["reason"]["meaning"] == "Agent down."
    for key in ("acknowledgedBy", "comment", "commentedBy", "clearTimestamp", "removed"):
        assert back[key] is None, key
    assert (back["eventId"], back["status"]) == (event_id, "New")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "cable swapped"}).status_code
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    back = client.get(f"/api/v1/entity-incidents/{obj['id']}").json()
    assert back["acknowledgedBy"] == "tester"
    assert isinstance(back["acknowledgementTimestamp"], int)
    assert (back["comment"], back["commentedBy"]) == ("cable swapped", "tester")
    assert isinstance(back["commentTimestamp"], int)
    assert back["removed"]["userId"] == "tester" and back["status"] == "Closed"

    listed = client.get("/api/v1/entity-incidents", params={"entityId": obj["entityId"]})
    assert [i["id"] for i in listed.json()["items"]] == [obj["id"]]
    missing = client.get("/api/v1/entity-incidents/no-such-incident")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_entity_incidents_batch_and_severity_map(client: Client) -> None:
    resp = entity(
        client,
        [
            {"id": unique("inc"), "entityId": unique("sw"), "text": "Degraded", "state": 2},
            {"entityId": "no-id"},
            {"id": unique("inc"), "entityId": unique("sw"), "text": "Back", "state": 3},
        ],
    )
    assert resp.status_code == 200
    good, bad, clear = resp.json()["results"]
    assert good["ok"] and event(client, good["eventId"])["severity"] == 3  # 2 → warning
    assert bad == {"index": 1, "ok": False, "error": "id: is required", "field": "id"}
    assert clear["ok"] and clear["status"] == "Cleared"  # state 3 → clear
    assert entity(client, {"id": "x", "entityId": "y", "state": "high"}).status_code == 422


def test_body_limits_are_413(client: Client) -> None:
    big = {"id": "big", "entityId": "e", "text": "x" * (1 << 20)}
    assert entity(client, big).status_code == 413
    assert (
        pagerduty(
            client,
            {
                "event_action": "trigger",
                "routing_key": "ingest-key",
                "payload": {"summary": "x" * (1 << 20)},
            },
        ).status_code
        == 413
    )
