"""/metrics shows what the API and the separate worker processes did."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers import Client, unique, wait_for
from prometheus_client.parser import text_string_to_metric_families

from incman.store.metrics import FLUSH_SECONDS

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


def test_an_incident_shows_in_events_actions_and_queue_latency(client: Client) -> None:
    created = client.post(
        "/api/v1/events", {"device": unique("ok"), "severity": 5, "summary": "Disk full"}
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["eventId"]
    wait_for(
        lambda: client.get(f"/api/v1/events/{event_id}").json().get("incident"),
        what="the Debug incident",
    )

    def outcome_shown() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        found = samples(client)
        done = value(found, "incman_actions", integration="debug", status="done") >= 1
        # The API writes its event counts every FLUSH_SECONDS.
        counted = value(found, "incman_events_accepted_total", source="api") >= 1
        return found if done and counted else None

    found = wait_for(outcome_shown, what="the event and the action's outcome in /metrics")
    count = value(found, "incman_queue_latency_seconds_count", integration="debug")
    assert count >= 1
    assert (
        value(found, "incman_queue_latency_seconds_bucket", integration="debug", le="+Inf") == count
    )
    # Buckets are cumulative and the waits are real (positive, and not minutes on loopback).
    bounds = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in found.items()
        if name == "incman_queue_latency_seconds_bucket" and dict(labels)["integration"] == "debug"
    )
    assert [v for _, v in bounds] == sorted(v for _, v in bounds)
    assert (
        value(found, "incman_queue_latency_seconds_bucket", integration="debug", le="30.0") == count
    )
    assert value(found, "incman_queue_latency_seconds_sum", integration="debug") > 0


def settled_events_accepted(client: Client) -> float:
    """The API's accepted count once it has written what it counted (every FLUSH_SECONDS)."""
    time.sleep(FLUSH_SECONDS * 1.5)
    return value(samples(client), "incman_events_accepted_total", source="api")


def test_events_are_counted_per_event(client: Client) -> None:
    before = settled_events_accepted(client)
    batch = [{"device": unique("none"), "severity": 2, "summary": "x"} for _ in range(3)]
    assert client.post("/api/v1/events", batch).status_code == 200
    assert settled_events_accepted(client) == before + 3


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
