"""BMC Remedyforce through the real pipeline (API, PostgreSQL, a Celery worker on
`itsm.remedyforce`) against the Remedyforce simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, created_incident, unique, wait_for

from incman.integrations.remedyforce import RemedyforceIntegration
from incman.sync.poll import poll_notification
from incman.testing.remedyforce_sim import RemedyforceSim
from incman.testing.simbase import SimControl, SimServer

SECRET = "Rf-Cl13nt-5ecret-9a7d"
UPSERT = "/sobjects/BMCServiceDesk__Incident__c/incman_Key__c/"
TESTER = "tester@incman.example"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(RemedyforceSim(client_secret=SECRET)) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "client_id": "incman-client",
        "client_secret": SECRET,
        "username": "incman@incman.example",
        "password": "incman-secret",
        "user_map": {"tester": TESTER},
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {
        "id": nid,
        "integration": "remedyforce",
        "triggers": [trigger],
        "config": config,
        **extra,
    }


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str, prefix: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^{prefix}-"}}}

    config = {
        "triggers": [
            trigger("life", "rflife"),
            trigger("faults", "rffault"),
            trigger("map", "rfmap"),
        ],
        "notifications": [
            _notification(
                "rf-life",
                sim.url,
                "life",
                options={
                    "initial_occurrence_only": False,
                    "close_event_on_resolve": True,
                    "send_clear": True,
                },
            ),
            _notification(
                "rf-faults",
                sim.url,
                "faults",
                subscribers=["tester"],
                config={"timeout": 2, "limit_backoff": 1},
            ),
            _notification(
                "rf-map",
                sim.url,
                "map",
                field_mapping=(
                    "BMCServiceDesk__shortDescription__c, ${evt/summary} on ${dev/titleOrId}\n"
                    "BMCServiceDesk__FKImpact__c, ${removeField}\n"
                    "BMCServiceDesk__FKCategory__c, ${python: 'Monitoring' if "
                    "defaultFields.get('BMCServiceDesk__FKUrgency__c') == 'HIGH' else 'Network'}\n"
                ),
            ),
        ],
        "devices": [{"id": "rfmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.remedyforce")


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str, **fields: Any) -> dict[str, Any]:
    body = {
        "device": device,
        "component": "disk",
        "eventClass": "/Perf/Disk",
        "eventKey": "usage",
        "severity": 5,
        "summary": "Disk full",
        **fields,
    }
    resp = client.post("/api/v1/events", body)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def records(sim: SimControl, key: str) -> list[dict[str, Any]]:
    return [r for r in sim.state()["incidents"] if r["incman_Key__c"] == key]


def record(sim: SimControl, number: str) -> dict[str, Any]:
    return next(r for r in sim.state()["incidents"] if r["Name"] == number)


def wait_record(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if check(r) else None)(record(sim, number)), what=what)


def notes(rec: dict[str, Any]) -> list[str]:
    return [h["BMCServiceDesk__note__c"] for h in rec["history"]]


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_note_assign_clear_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("rflife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    [rec] = records(sim, inc["correlationKey"])
    assert (inc["number"], inc["state"]) == (rec["Name"], "OPEN")
    assert rec["BMCServiceDesk__Status_ID__c"] == "OPENED"
    assert rec["BMCServiceDesk__shortDescription__c"] == "Disk full"
    assert inc["url"] == f"{sim.url}/{rec['Id']}"

    assert send(client, device)["count"] == 2  # a re-occurrence → a note
    wait_record(
        sim, inc["number"], lambda r: any("occurred again" in n for n in notes(r)), "the note"
    )
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"}).ok
    wait_record(sim, inc["number"], lambda r: "tester: disks checked" in notes(r), "event note")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["Owner.Username"] == TESTER, "the assign")

    send(client, device, severity=0)  # the clear: Send Clear closes the incident
    rec = wait_record(
        sim, inc["number"], lambda r: r["BMCServiceDesk__Status_ID__c"] == "CLOSED", "the close"
    )
    assert rec["BMCServiceDesk__state__c"] is False
    assert rec["BMCServiceDesk__incidentResolution__c"].startswith("Event cleared")

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_record(
        sim, inc["number"], lambda r: r["BMCServiceDesk__Status_ID__c"] == "OPENED", "re-open"
    )

    sim.act(inc["number"], status="CLOSED", resolution="fixed by the storage team")
    result = poll_notification("rf-life")
    assert result["changed"] >= 1 and result["requests"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(records(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "rf-life")


def test_field_mapping_with_the_remedyforce_defaults(client: Client, sim: SimControl) -> None:
    inc = created_incident(client, send(client, "rfmap-db01", summary="Replication lag")["eventId"])
    rec = record(sim, inc["number"])
    assert rec["BMCServiceDesk__shortDescription__c"] == "Replication lag on Primary database"
    assert rec["BMCServiceDesk__FKImpact__c"] is None  # removed by the mapping
    # a name in the mapping (chosen from the default urgency), an Id in the record
    [category] = [
        c for c in sim.state()["categories"] if c["Id"] == rec["BMCServiceDesk__FKCategory__c"]
    ]
    assert category["Name"] == "Monitoring"
    assert rec["incman_Key__c"] == inc["correlationKey"]  # not a mapping's to change


def test_an_expired_session_mid_run_logs_in_again_once(client: Client, sim: SimControl) -> None:
    event_id = send(client, unique("rffault"))["eventId"]
    inc = created_incident(client, event_id)
    before = len(sim.requests())
    sim.fault("401", path="/sobjects/BMCServiceDesk__IncidentHistory__c")
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "after expiry"}).ok
    wait_record(sim, inc["number"], lambda r: "tester: after expiry" in notes(r), "the note")
    seen = [(r["method"], r["path"], r["status"]) for r in sim.requests()[before:]]
    history = "/services/data/v59.0/sobjects/BMCServiceDesk__IncidentHistory__c"
    expired = seen.index(("POST", history, 401))
    assert ("POST", "/services/oauth2/token", 200) in seen[expired + 1 :]
    assert seen.count(("POST", history, 201)) == 1
    no_dead_actions(client, "rf-faults")


def test_the_used_up_request_limit_is_retried_not_dead_lettered(
    client: Client, sim: SimControl
) -> None:
    before = len(sim.requests())
    used = sim.state()["limits"]["used"]
    sim._call("POST", "limits", {"limit": used, "used": used})  # the org's quota is gone
    event_id = send(client, unique("rffault"))["eventId"]
    wait_for(
        lambda: any(r["status"] == 403 for r in sim.requests()[before:]),
        what="a call refused with REQUEST_LIMIT_EXCEEDED",
    )
    sim._call("POST", "limits", {"limit": 0})  # the quota is back (a new day)
    inc = created_incident(client, event_id, timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "rf-faults")


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 5, "retry_after": 1}),
        ("500", {"count": 3}),
        ("commit_then_drop", {"count": 1, "method": "PATCH"}),
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, path=UPSERT, **options)
    created = send(client, unique("rffault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"]
    assert sim.faults() == []
    assert client.get(f"/api/v1/events/{created['eventId']}").json()["incident"] == inc["number"]


def test_a_typed_incident_number_is_looked_up(client: Client, sim: SimControl) -> None:
    by_hand = RemedyforceIntegration(_notification("x", sim.url, "x")["config"])
    opened = by_hand.create(by_hand.default_fields({"summary": "by hand"}, None, {}), "by-hand")
    by_hand.shutdown()
    event_id = send(client, unique("console"))["eventId"]  # matches no trigger
    resp = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "rf-faults", "incident": opened.number},
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["number"], resp.json()["remoteState"]) == (opened.number, "OPENED")
    unknown = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "rf-faults", "incident": "09999999"},
    )
    assert unknown.status_code == 422, unknown.text
