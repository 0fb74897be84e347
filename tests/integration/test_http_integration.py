"""The generic HTTP integration through the real pipeline, against the HTTP simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, send_disk_event, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.http_sim import HttpSim, Record
from incman.testing.simbase import SimControl, SimServer

TOKEN = "http-pipeline-secret-0815"
ONE = "/incidents/${incident/remoteId}"


@pytest.fixture(scope="module")
def sim() -> Iterator[HttpSim]:
    app = HttpSim(token=TOKEN)
    with SimServer(app):
        yield app


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: HttpSim) -> Any:
    base = sim.base_url
    config = {
        "triggers": [
            {"id": "http-devices", "when": {"device": {"_m": "^http-"}}},
            {"id": "no-reopen-devices", "when": {"device": {"_m": "^httpnr-"}}},
        ],
        "notifications": [
            {
                # no reopen body: this integration cannot re-open its incidents
                "id": "http-no-reopen",
                "integration": "http",
                "triggers": ["no-reopen-devices"],
                "options": {"send_clear": True, "reopen_incident_on_reoccur": True},
                "config": {
                    "url": f"{base}/incidents",
                    "headers": {"Authorization": "Bearer ${env:HTTP_TEST_TOKEN}"},
                    "body": {
                        "create": {
                            "title": "${evt/summary}",
                            "correlationKey": "${correlationKey}",
                        },
                        "close": {"status": "closed", "note": "${note}"},
                    },
                    "urls": {"close": base + ONE},
                    "methods": {"close": "PATCH"},
                    "number_path": "number",
                    "find_url": base + "/incidents?correlationKey=${correlationKey}",
                    "find_path": "items[0]",
                },
            },
            {
                "id": "http-ops",
                "integration": "http",
                "triggers": ["http-devices"],
                "options": {"initial_occurrence_only": False, "close_event_on_resolve": True},
                "config": {
                    "url": f"{base}/incidents",
                    "headers": {"Authorization": "Bearer ${env:HTTP_TEST_TOKEN}"},
                    "body": {
                        "create": {
                            "title": "${evt/summary} on ${dev/titleOrId}",
                            "severity": "${python: mappingUtils.getSevString(evt)}",
                            "link": "${urls/eventUrl}",
                            "correlationKey": "${correlationKey}",
                        },
                        "note": {"note": "${note}"},
                        "assign": {"assignee": "${assignee}", "status": "assigned"},
                        "close": {"status": "closed", "note": "${note}"},
                        "reopen": {"status": "open", "note": "${note}"},
                    },
                    "urls": {a: base + ONE for a in ("note", "assign", "close", "reopen")},
                    "methods": {"close": "PATCH", "reopen": "PATCH"},
                    "number_path": "number",
                    "url_path": "url",
                    "status_url": base + ONE,
                    "find_url": base + "/incidents?correlationKey=${correlationKey}",
                    "find_path": "items[0]",
                },
                "field_mapping": "team, ${python: 'dba' if dev.getPriority() > 500 else 'ops'}",
            },
        ],
        "devices": [{"id": "http-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, extra_env={"HTTP_TEST_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def record_of(client: Client, sim: HttpSim, event_id: str) -> Record:
    number = wait_for(
        lambda: client.get(f"/api/v1/events/{event_id}").json()["incident"],
        what=f"an incident on {event_id}",
    )
    with sim.lock:
        return next(r for r in sim.records.values() if r.number == number)


def test_the_whole_lifecycle(client: Client, sim: HttpSim) -> None:
    event_id = send_disk_event(client, "http-db01")
    record = record_of(client, sim, event_id)
    assert record.fields["title"] == "Disk full on Primary database"
    assert record.fields["severity"] == "Critical"
    assert record.fields["team"] == "dba"
    assert record.fields["link"].endswith(f"/console/events/{event_id}")
    assert len(record.correlation_key) == 32

    send_disk_event(client, "http-db01")  # re-occurrence → note
    wait_for(
        lambda: any("occurred again" in n["text"] for n in record.notes),
        what="the re-occurrence note",
    )
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(
        lambda: record.status == "assigned" and record.assignee == "tester", what="the assignment"
    )
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: record.status == "closed", what="the close")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_for(lambda: record.status == "open", what="the re-open")

    SimControl(sim.base_url).act(record.id, status="resolved", comment="fixed by hand")
    result = poll_notification("http-ops")
    assert result["polled"] >= 1 and result["changed"] >= 1, result
    ev = client.get(f"/api/v1/events/{event_id}").json()
    assert ev["status"] == "Closed"
    assert ev["incidents"][0]["state"] == "RESOLVED"


def test_a_lost_create_answer_still_gives_one_record(client: Client, sim: HttpSim) -> None:
    SimControl(sim.base_url).fault("commit_then_drop", method="POST", path="/incidents")
    device = unique("http")
    event_id = send_disk_event(client, device)
    record = record_of(client, sim, event_id)
    with sim.lock:
        same = [r for r in sim.records.values() if r.correlation_key == record.correlation_key]
    assert len(same) == 1
    faulted = [r for r in SimControl(sim.base_url).requests() if r["fault"]]
    assert faulted and faulted[0]["fault"] == "commit_then_drop"


def test_the_token_stays_out_of_logs_and_answers(client: Client, stack: Any) -> None:
    worker_log = "".join(w.output() for w in stack.workers)
    assert "http-ops" in worker_log or "run_action" in worker_log
    assert TOKEN not in worker_log and TOKEN not in stack.api.output()
    for path in ("/api/v1/notifications/http-ops", "/api/v1/incidents", "/api/v1/events"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text)
        assert TOKEN not in resp.text


def test_a_new_incident_with_a_warning_where_it_cannot_reopen(
    client: Client, sim: HttpSim, stack: Any
) -> None:
    """Seed 000: with "Re-open incident when the event re-occurs", "If the integration does
    not support re-opening, then a new incident will be opened, and a warning message will
    be logged"."""
    device = unique("httpnr")
    first = send_disk_event(client, device)
    old = record_of(client, sim, first)
    clear = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf",
            "severity": 0,
            "summary": "Disk fine",
        },
    )
    assert clear.json()["cleared"] == [first]
    wait_for(lambda: old.status == "closed", what="the close on clear (Send Clear)")
    wait_for(
        lambda: (
            client.get("/api/v1/incidents", params={"eventId": first}).json()["items"][0]["state"]
            == "CLOSED"
        ),
        what="the incident CLOSED",
    )
    second = send_disk_event(client, device)
    new = record_of(client, sim, second)
    assert new.number != old.number and old.status == "closed"
    warning = f"cannot re-open incidents: a new incident instead of re-opening {old.number}"

    def logged() -> bool:
        lines = [line for w in stack.workers for line in w.output().splitlines()]
        return any(warning in line and "WARNING" in line for line in lines)

    wait_for(logged, what="the warning in the worker's log")
