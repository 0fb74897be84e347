"""PagerDuty Events API v2 as a target through the real pipeline (API, PostgreSQL, a Celery
worker on `itsm.pagerduty`): against the PagerDuty simulator, and against incman's own
inbound `POST /v2/enqueue` as the remote."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import API_KEY, Client, created_incident, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.pagerduty_sim import DEFAULT_ROUTING_KEY, PagerDutySim
from incman.testing.simbase import SimControl, SimServer


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(PagerDutySim()) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {"url": url, "routing_key": DEFAULT_ROUTING_KEY, "timeout": 5}
    config |= extra.pop("config", {})
    return {"id": nid, "integration": "pagerduty", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^{tid}-"}}}

    config = {
        "triggers": [
            trigger("pdlife"),
            trigger("pdfault"),
            trigger("pdmap"),
            # what the remote incman makes of the alerts has eventClass /PagerDuty...: it must
            # not page again
            {
                "id": "pdloop",
                "when": {
                    "_and": [
                        {"device": {"_m": "^pdloop-"}},
                        {"_not": {"eventClass": {"_ct": "/PagerDuty"}}},
                    ]
                },
            },
        ],
        "notifications": [
            _notification(
                "pd-life",
                sim.url,
                "pdlife",
                options={"send_clear": True, "close_event_on_resolve": True},
            ),
            _notification("pd-faults", sim.url, "pdfault", config={"timeout": 2}),
            _notification(
                "pd-map",
                sim.url,
                "pdmap",
                field_mapping=(
                    "summary, [${defaultFields/severity}] ${evt/summary} on ${dev/titleOrId}\n"
                    "links, ${removeField}\n"
                    "rack, ${dev/title}\n"
                ),
            ),
        ],
        "devices": [{"id": "pdmap-db01", "title": "Primary database"}],
    }
    return make_stack(config, queues="itsm.pagerduty")


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str, **fields: Any) -> dict[str, Any]:
    body = {
        "device": device,
        "component": "disk",
        "eventClass": "/Perf/Disk",
        "severity": 5,
        "summary": "Disk full",
        **fields,
    }
    resp = client.post("/api/v1/events", body)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def alerts(sim: SimControl, key: str) -> list[dict[str, Any]]:
    return [a for a in sim.state()["alerts"] if a["dedup_key"] == key]


def wait_alert(sim: SimControl, key: str, status: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        matching = alerts(sim, key)
        return matching[-1] if matching and matching[-1]["status"] == status else None

    return wait_for(found, what=f"the alert {key} {status}")


def incident_state(client: Client, inc: dict[str, Any]) -> str:
    return str(client.get(f"/api/v1/incidents/{inc['id']}").json()["state"])


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_trigger_acknowledge_resolve_and_reopen(
    client: Client, sim: SimControl, stack: Any
) -> None:
    device = unique("pdlife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    key = inc["correlationKey"]
    assert inc["number"] == key  # the Events API gives nothing else to show
    [alert] = alerts(sim, key)
    assert (alert["summary"], alert["source"], alert["severity"]) == (
        "Disk full",
        device,
        "critical",
    )

    resp = client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"})
    assert resp.status_code == 201  # PagerDuty takes no notes: nothing is sent, nothing fails

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_alert(sim, key, "acknowledged")
    wait_for(lambda: incident_state(client, inc) == "ASSIGNED", what="the incident ASSIGNED")

    assert send(client, device, severity=0, summary="Disk ok")["status"] == "Cleared"
    wait_alert(sim, key, "resolved")
    wait_for(lambda: incident_state(client, inc) == "CLOSED", what="the incident CLOSED")

    # PagerDuty opens a new alert for a trigger after resolve: incman makes a new incident
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev["incident"] and ev["incident"] != key else None

    new_key = wait_for(moved, what="a new incident for the event")["incident"]
    wait_alert(sim, new_key, "triggered")
    assert [a["status"] for a in alerts(sim, key)] == ["resolved"]
    assert f"cannot re-open {key}" in "".join(w.output() for w in stack.workers)

    # no status reads: a resolve made in PagerDuty does not come back (declared)
    sim.act(new_key, status="resolved", by="oncall1")
    assert poll_notification("pd-life")["skipped"] == "pagerduty has no status reads"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] in ("New", "Acknowledged")
    no_dead_actions(client, "pd-life")


def test_field_mapping_with_default_fields_and_remove_field(
    client: Client, sim: SimControl
) -> None:
    inc = created_incident(client, send(client, "pdmap-db01", summary="Replication lag")["eventId"])
    [alert] = alerts(sim, inc["correlationKey"])
    assert alert["summary"] == "[critical] Replication lag on Primary database"
    assert alert["links"] == []  # removed
    assert alert["custom_details"]["rack"] == "Primary database"
    assert "Replication lag" in alert["custom_details"]["description"]


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 3, "retry_after": 1}),
        ("500", {"count": 2}),
        ("commit_then_drop", {"count": 1}),
    ],
)
def test_faults_still_page_exactly_once(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, path="/v2/enqueue", **options)
    event_id = send(client, unique("pdfault"))["eventId"]
    inc = created_incident(client, event_id, timeout=60)
    [alert] = alerts(sim, inc["correlationKey"])  # PagerDuty deduplicated the retry
    triggers = 2 if fault == "commit_then_drop" else 1
    assert [e["type"] for e in alert["log"]] == ["trigger"] * triggers
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"] and sim.faults() == []
    no_dead_actions(client, "pd-faults")


def test_incman_pages_another_incman_through_its_pagerduty_endpoint(
    client: Client, stack: Any
) -> None:
    """incman's inbound `POST /v2/enqueue` as the remote: the routing key is an API key, of
    the operator role at least, since acknowledging events takes an operator."""
    resp = client.post(
        "/api/v1/notifications",
        {
            "id": "pd-loop",
            "integration": "pagerduty",
            "triggers": ["pdloop"],
            "config": {"url": stack.url, "routing_key": API_KEY, "timeout": 5},
        },
    )
    assert resp.status_code == 201, resp.text
    device = unique("pdloop")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)

    def remote_event() -> dict[str, Any] | None:
        found = client.get("/api/v1/events", params={"dedupid": inc["correlationKey"]}).json()
        return found["items"][0] if found["items"] else None

    paged = wait_for(remote_event, what="the event the alert made")
    assert (paged["device"], paged["summary"], paged["severity"]) == (device, "Disk full", 5)
    assert paged["eventClass"].startswith("/PagerDuty") and paged["status"] == "New"

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(lambda: remote_event()["status"] == "Acknowledged", what="the remote acknowledge")
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: remote_event()["status"] == "Cleared", what="the remote resolve")
    assert (
        client.get("/api/v1/incidents", params={"eventId": paged["eventId"]}).json()["items"] == []
    )  # the alert's own event paged no one
    no_dead_actions(client, "pd-loop")
