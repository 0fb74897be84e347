"""OTRS / Znuny through the real pipeline (API, PostgreSQL, a Celery worker on `itsm.otrs`)
against the OTRS simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, created_incident, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.otrs_sim import OTRSSim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "0trs-Pa55-5b1e07"
SERVICE = "/otrs/nph-genericinterface.pl/Webservice/GenericTicketConnectorREST"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(OTRSSim(password=PASSWORD, dynamic_fields="IncmanKey,Device")) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url + SERVICE,
        "username": "incman",
        "password": PASSWORD,
        "customer_user": "monitoring",
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {"id": nid, "integration": "otrs", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^{tid}-"}}}

    names = ("otrslife", "otrsfault", "otrssession", "otrsmap", "otrsfinal")
    config = {
        "triggers": [trigger(n) for n in names] + [trigger("never-matches")],
        "notifications": [
            _notification(
                "otrs-life",
                sim.url,
                "otrslife",
                options={"initial_occurrence_only": False, "close_event_on_resolve": True},
                config={"user_map": {"tester": "oncall1"}},
            ),
            _notification("otrs-faults", sim.url, "otrsfault", config={"timeout": 2}),
            _notification("otrs-session", sim.url, "otrssession", config={"session": True}),
            _notification(
                "otrs-map",
                sim.url,
                "otrsmap",
                config={"ticket_type": "Incident"},
                field_mapping=(
                    "Title, [${defaultFields/Priority}] ${evt/summary} on ${dev/titleOrId}\n"
                    "Type, ${removeField}\n"
                    "DynamicField_Device, ${dev/title}\n"
                ),
            ),
            _notification("otrs-final", sim.url, "otrsfinal"),
            _notification(
                "otrs-manual",
                sim.url,
                "never-matches",
                subscribers=["tester"],
                options={"send_clear": True},
            ),
        ],
        "devices": [{"id": "otrsmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.otrs")


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


def tickets(sim: SimControl, key: str) -> list[dict[str, Any]]:
    return [t for t in sim.state()["tickets"] if t["dynamic"].get("IncmanKey") == key]


def ticket(sim: SimControl, number: str) -> dict[str, Any]:
    return next(t for t in sim.state()["tickets"] if t["TicketNumber"] == number)


def wait_ticket(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda t: t if check(t) else None)(ticket(sim, number)), what=what)


def bodies(found: dict[str, Any]) -> list[str]:
    return [a["Body"] for a in found["Article"]]


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_create_note_assign_close_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("otrslife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    [made] = tickets(sim, inc["correlationKey"])
    assert made["TicketNumber"] == inc["number"]
    assert inc["url"].endswith(f"/otrs/index.pl?Action=AgentTicketZoom;TicketID={made['TicketID']}")
    assert (made["Title"], made["Priority"], made["State"]) == ("Disk full", "5 very high", "new")
    assert event_id in made["Article"][0]["Body"]  # the event's link

    assert send(client, device)["count"] == 2  # a re-occurrence: an internal article
    wait_ticket(sim, inc["number"], lambda t: any("occurred again" in b for b in bodies(t)), "note")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_ticket(sim, inc["number"], lambda t: (t["Owner"], t["Lock"]) == ("oncall1", "lock"), "own")

    resp = client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"})
    assert resp.status_code == 201
    found = wait_ticket(
        sim, inc["number"], lambda t: "tester: disks checked" in bodies(t), "the event note"
    )
    assert all(a["IsVisibleForCustomer"] == 0 for a in found["Article"])  # all internal

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_ticket(sim, inc["number"], lambda t: t["State"] == "closed successful", "the close")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "CLOSED",
        what="the incident CLOSED",
    )
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_ticket(sim, inc["number"], lambda t: t["State"] == "open", "the re-open")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "OPEN",
        what="the incident OPEN again",
    )

    sim.act(inc["number"], State="closed successful", note="fixed by the DBAs", by="oncall2")
    result = poll_notification("otrs-life")
    assert result["changed"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(tickets(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "otrs-life")


def test_field_mapping_with_default_fields_and_remove_field(
    client: Client, sim: SimControl
) -> None:
    inc = created_incident(
        client, send(client, "otrsmap-db01", summary="Replication lag")["eventId"]
    )
    made = ticket(sim, inc["number"])
    assert made["Title"] == "[5 very high] Replication lag on Primary database"
    assert made["Type"] == "Unclassified"  # the configured Incident type was removed
    assert made["dynamic"] == {"Device": "Primary database", "IncmanKey": inc["correlationKey"]}


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 3, "retry_after": 1}),
        ("500", {"count": 2}),
        ("commit_then_drop", {"count": 1, "method": "POST", "path": SERVICE + "/Ticket"}),
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, **options)
    event_id = send(client, unique("otrsfault"))["eventId"]
    inc = created_incident(client, event_id, timeout=60)
    assert len(tickets(sim, inc["correlationKey"])) == 1
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"] and sim.faults() == []
    assert client.get(f"/api/v1/events/{event_id}").json()["incident"] == inc["number"]
    no_dead_actions(client, "otrs-faults")


def test_a_session_that_runs_out_mid_run_is_renewed_once(client: Client, sim: SimControl) -> None:
    logins = sim.state()["logins"]
    sim.fault("401", 1, path="/TicketSearch")  # the session dies before the find
    event_id = send(client, unique("otrssession"))["eventId"]
    inc = created_incident(client, event_id)
    assert len(tickets(sim, inc["correlationKey"])) == 1
    assert sim.state()["logins"] == logins + 2  # the action's login, and one more
    wait_for(lambda: sim.state()["sessions"] == 0, what="the sessions removed")
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_ticket(sim, inc["number"], lambda t: t["Lock"] == "lock", "the assign")
    no_dead_actions(client, "otrs-session")


def test_reopen_of_a_merged_ticket_opens_a_new_one(
    client: Client, sim: SimControl, stack: Any
) -> None:
    event_id = send(client, unique("otrsfinal"))["eventId"]
    old = created_incident(client, event_id)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_ticket(sim, old["number"], lambda t: t["State"] == "closed successful", "the close")
    sim.act(old["number"], State="merged", by="oncall1")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev["incident"] and ev["incident"] != old["number"] else None

    wait_for(moved, timeout=60, what="a new ticket for the event")
    new = created_incident(client, event_id)
    assert ticket(sim, new["number"])["State"] == "new"
    assert ticket(sim, old["number"])["State"] == "merged"
    no_dead_actions(client, "otrs-final")
    assert f"cannot re-open {old['number']}" in "".join(w.output() for w in stack.workers)


def test_a_typed_ticket_number_is_looked_up_and_followed(client: Client, sim: SimControl) -> None:
    opened = requests.post(
        sim.url + SERVICE + "/Ticket",
        json={
            "UserLogin": "incman",
            "Password": PASSWORD,
            "Ticket": {
                "Title": "opened by hand",
                "Queue": "Misc",
                "State": "open",
                "Priority": "3 normal",
                "CustomerUser": "monitoring",
            },
            "Article": {
                "Subject": "by hand",
                "Body": "a person wrote this",
                "ContentType": "text/plain; charset=utf8",
            },
        },
        timeout=10,
    ).json()
    event_id = send(client, unique("console"))["eventId"]
    resp = client.post(
        "/api/v1/incidents/associate",
        {
            "eventIds": [event_id],
            "notificationId": "otrs-manual",
            "incident": opened["TicketNumber"],
        },
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["number"], resp.json()["remoteState"]) == (opened["TicketNumber"], "open")
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_ticket(sim, opened["TicketNumber"], lambda t: t["Lock"] == "lock", "the assign")
    other = send(client, unique("console"))["eventId"]
    unknown = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [other], "notificationId": "otrs-manual", "incident": "2000010199999991"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "incident: otrs has no incident 2000010199999991"
