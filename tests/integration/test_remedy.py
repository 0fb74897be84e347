"""BMC Remedy ITSM through the real pipeline (API, PostgreSQL, a Celery worker on
`itsm.remedy`) against the Remedy simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, created_incident, unique, wait_for

from incman.integrations.remedy import RemedyIntegration
from incman.sync.poll import poll_notification
from incman.testing.remedy_sim import RemedySim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "Rem3dy-Pa55-41c9e0"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(RemedySim(password=PASSWORD)) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "username": "incman",
        "password": PASSWORD,
        "login_id": "allen",
        "assigned_group": "Service Desk",
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {"id": nid, "integration": "remedy", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str, prefix: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^{prefix}-"}}}

    config = {
        "triggers": [
            trigger("life", "remlife"),
            trigger("faults", "remfault"),
            trigger("map", "remmap"),
            trigger("final", "remfinal"),
        ],
        "notifications": [
            _notification(
                "rem-life",
                sim.url,
                "life",
                options={
                    "initial_occurrence_only": False,
                    "close_event_on_resolve": True,
                    "send_clear": True,
                },
                config={"user_map": {"tester": "oncall1"}},
            ),
            _notification(
                "rem-faults", sim.url, "faults", subscribers=["tester"], config={"timeout": 2}
            ),
            _notification(
                "rem-map",
                sim.url,
                "map",
                field_mapping=(
                    "Description, ${evt/summary} on ${dev/titleOrId}\n"
                    "Detailed_Decription, ${removeField}\n"
                    "Categorization Tier 1, "
                    "${python: 'Paging' if defaultFields.get('Urgency') == '1-Critical' "
                    "else 'Queue'}\n"
                ),
            ),
            _notification("rem-final", sim.url, "final"),
        ],
        "devices": [{"id": "remmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.remedy")


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
    return [r for r in sim.state()["incidents"] if r["Vendor Ticket Number"] == key]


def record(sim: SimControl, number: str) -> dict[str, Any]:
    return next(r for r in sim.state()["incidents"] if r["Incident Number"] == number)


def wait_record(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if check(r) else None)(record(sim, number)), what=what)


def notes(rec: dict[str, Any]) -> list[str]:
    return [w["Detailed Description"] for w in rec["worklog"]]


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_note_assign_clear_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("remlife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    [rec] = records(sim, inc["correlationKey"])
    assert (inc["number"], inc["state"]) == (rec["Incident Number"], "OPEN")
    assert (rec["Impact"], rec["Urgency"], rec["Status"]) == (
        "1-Extensive/Widespread",
        "1-Critical",
        "New",
    )
    assert f"/console/events/{event_id}" in rec["Detailed Decription"]

    assert send(client, device)["count"] == 2  # a re-occurrence → a work note
    wait_record(
        sim, inc["number"], lambda r: any("occurred again" in n for n in notes(r)), "the note"
    )
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"}).ok
    wait_record(sim, inc["number"], lambda r: "tester: disks checked" in notes(r), "event note")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    rec = wait_record(
        sim, inc["number"], lambda r: r["Assignee Login ID"] == "oncall1", "the assign"
    )
    assert (rec["Status"], rec["Assigned Group"]) == ("Assigned", "Service Desk")

    send(client, device, severity=0)  # the clear: Send Clear resolves the incident
    rec = wait_record(sim, inc["number"], lambda r: r["Status"] == "Resolved", "the resolve")
    assert rec["Status_Reason"] == "Automated Resolution Reported"
    assert rec["Resolution"].startswith("Event cleared")

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    rec = wait_record(sim, inc["number"], lambda r: r["Status"] == "Assigned", "the re-open")
    assert rec["Status_Reason"] is None and rec["Re-Opened Date"]
    wait_for(
        lambda: (
            client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] in ("OPEN", "ASSIGNED")
        ),
        what="the incident open again",
    )

    sim.act(
        inc["number"],
        Status="Resolved",
        Status_Reason="No Further Action Required",
        Resolution="fixed by the storage team",
    )
    result = poll_notification("rem-life")
    assert result["changed"] >= 1 and result["requests"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(records(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "rem-life")
    wait_for(lambda: sim.state()["tokens"] == 0, what="every login logged out")


def test_field_mapping_with_the_remedy_defaults(client: Client, sim: SimControl) -> None:
    inc = created_incident(
        client, send(client, "remmap-db01", summary="Replication lag")["eventId"]
    )
    rec = record(sim, inc["number"])
    assert rec["Description"] == "Replication lag on Primary database"
    assert rec["Detailed Decription"] is None  # removed by the mapping
    assert rec["Categorization Tier 1"] == "Paging"  # from defaultFields' urgency
    assert rec["Vendor Ticket Number"] == inc["correlationKey"]  # not a mapping's to change


def test_an_expired_token_mid_run_logs_in_again_once(client: Client, sim: SimControl) -> None:
    device = unique("remfault")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    before = len(sim.requests())
    sim.fault("401", path="/entry/HPD:WorkLog")  # every token runs out before the note
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "after expiry"}).ok
    wait_record(sim, inc["number"], lambda r: "tester: after expiry" in notes(r), "the note")
    seen = [(r["method"], r["path"], r["status"]) for r in sim.requests()[before:]]
    expired = seen.index(("POST", "/api/arsys/v1/entry/HPD:WorkLog", 401))
    assert ("POST", "/api/jwt/login", 200) in seen[expired + 1 :]
    assert seen.count(("POST", "/api/arsys/v1/entry/HPD:WorkLog", 201)) == 1
    assert len(notes(record(sim, inc["number"]))) == 1
    no_dead_actions(client, "rem-faults")


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 5, "retry_after": 1}),
        ("500", {"count": 3}),
        ("commit_then_drop", {"count": 1, "method": "POST"}),
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, path="/entry/HPD:IncidentInterface_Create", **options)
    created = send(client, unique("remfault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"]
    assert sim.faults() == []
    assert client.get(f"/api/v1/events/{created['eventId']}").json()["incident"] == inc["number"]


def test_reopen_of_a_closed_incident_opens_a_new_one(
    client: Client, sim: SimControl, stack: Any
) -> None:
    """Closed is final in Remedy: the re-open is refused and a new incident opened."""
    event_id = send(client, unique("remfinal"))["eventId"]
    old = created_incident(client, event_id)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_record(sim, old["number"], lambda r: r["Status"] == "Resolved", "the resolve")
    sim.act(old["number"], Status="Closed")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev["incident"] and ev["incident"] != old["number"] else None

    wait_for(moved, timeout=60, what="a new incident for the event")
    new = created_incident(client, event_id)
    assert new["id"] != old["id"] and records(sim, new["correlationKey"])[0]["Status"] == "New"
    assert record(sim, old["number"])["Status"] == "Closed"
    assert client.get(f"/api/v1/incidents/{old['id']}").json()["state"] == "CLOSED"
    no_dead_actions(client, "rem-final")
    logs = "".join(w.output() for w in stack.workers)
    assert f"cannot re-open {old['number']}" in logs


def test_a_typed_incident_number_is_looked_up(client: Client, sim: SimControl) -> None:
    opened_by_hand = RemedyIntegration(
        {"url": sim.url, "username": "incman", "password": PASSWORD, "login_id": "allen"}
    )
    fields = {
        **opened_by_hand.default_fields({"summary": "by hand"}, None, {}),
        "Status": "Assigned",
    }
    existing = opened_by_hand.create(fields, "typed-by-hand")
    opened_by_hand.shutdown()
    event_id = send(client, unique("console"))["eventId"]  # matches no trigger
    resp = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "rem-faults", "incident": existing.number},
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["number"], resp.json()["remoteState"]) == (existing.number, "Assigned")
    unknown = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "rem-faults", "incident": "INC000000099999"},
    )
    assert unknown.status_code == 422
