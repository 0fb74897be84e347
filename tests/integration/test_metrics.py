"""/metrics shows what the API and the separate worker processes did."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Client, unique, wait_for
from prometheus_client.parser import text_string_to_metric_families

CONFIG: dict[str, Any] = {
    "triggers": [
        {"id": "ok-devices", "when": {"device": {"_m": "^ok-"}}},
        {"id": "flaky-devices", "when": {"device": {"_m": "^flaky-"}}},
    ],
    "notifications": [
        {"id": "debug-ok", "integration": "debug", "triggers": ["ok-devices"]},
        {
            "id": "debug-flaky",
            "integration": "debug",
            "triggers": ["flaky-devices"],
            "config": {"fail": "transient"},
        },
    ],
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    return make_stack(CONFIG).client


def samples(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


Found = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def latency(found: Found) -> dict[str, float]:
    """The debug integration's queue-latency histogram: count, sum and each bucket."""
    out = {
        "count": value(found, "incman_queue_latency_seconds_count", integration="debug"),
        "sum": value(found, "incman_queue_latency_seconds_sum", integration="debug"),
    }
    for (name, labels), v in found.items():
        if name == "incman_queue_latency_seconds_bucket" and dict(labels)["integration"] == "debug":
            out[dict(labels)["le"]] = v
    return out


def test_an_incident_shows_in_events_actions_and_queue_latency(client: Client) -> None:
    # The session's Redis database keeps the figures of every module before this one:
    # what this test adds is measured against what was there (figures only grow).
    before = latency(samples(client))
    created = client.post(
        "/api/v1/events", {"device": unique("ok"), "severity": 5, "summary": "Disk full"}
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["eventId"]
    wait_for(
        lambda: client.get(f"/api/v1/events/{event_id}").json().get("incident"),
        what="the Debug incident",
    )

    def outcome_shown() -> Found | None:
        found = samples(client)
        done = value(found, "incman_actions", integration="debug", status="done") >= 1
        # The API writes its event counts every FLUSH_SECONDS.
        counted = value(found, "incman_events_accepted_total", source="api") >= 1
        return found if done and counted else None

    after = latency(wait_for(outcome_shown, what="the event and the action's outcome in /metrics"))
    assert after["count"] - before["count"] >= 1
    assert after["+Inf"] - before.get("+Inf", 0.0) == after["count"] - before["count"]
    assert after["sum"] > before["sum"]  # the wait was real
    bounds = sorted((float(le), v) for le, v in after.items() if le not in ("count", "sum"))
    assert [v for _, v in bounds] == sorted(v for _, v in bounds)  # buckets are cumulative


def entity_incidents_accepted(client: Client) -> float:
    return value(samples(client), "incman_events_accepted_total", source="entity-incidents")


def test_events_are_counted_per_event(client: Client) -> None:
    # Nothing else in this module sends incident objects, and the APIs of earlier modules
    # wrote their counts when they stopped: this figure holds still until the batch below.
    before = entity_incidents_accepted(client)
    batch = [
        {"id": unique("metric"), "entityId": unique("router"), "text": "down", "state": 4}
        for _ in range(3)
    ]
    resp = client.post("/api/v1/entity-incidents", batch)
    assert resp.status_code == 200, resp.text
    assert [item["ok"] for item in resp.json()["results"]] == [True] * 3, resp.text
    # Written by the API every FLUSH_SECONDS: wait for the count, exactly three more.
    wait_for(lambda: entity_incidents_accepted(client) >= before + 3, what="the batch counted")
    assert entity_incidents_accepted(client) == before + 3


def test_retries_are_counted_by_integration(client: Client) -> None:
    before = value(samples(client), "incman_action_retries_total", integration="debug")
    created = client.post(
        "/api/v1/events", {"device": unique("flaky"), "severity": 5, "summary": "Disk full"}
    )
    assert created.status_code == 201
    wait_for(
        lambda: value(samples(client), "incman_action_retries_total", integration="debug") > before,
        what="a retry of the transiently failing action",
    )
