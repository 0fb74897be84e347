"""CA Cloud Service Management through the real pipeline (API, PostgreSQL, a Celery worker
on `itsm.casm`) against the SOAP simulator on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, created_incident, unique, wait_for
from sqlalchemy import select

from incman.integrations.casm import envelope, marker
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.plugins import make_plugin
from incman.store.ticket_map import PluginTicket
from incman.sync.poll import poll_notification
from incman.testing.casm_sim import CasmSim
from incman.testing.simbase import SimControl, SimServer

USER = "incman@example.com"
PASSWORD = "Casm-Pa55-91b2c3"
WRONG_PASSWORD = "Wr0ng-Casm-77d1"
CREATE = "ServiceRequestHttpSoap12Endpoint/logServiceRequest"
SEARCH = "ServiceRequestHttpSoap12Endpoint/listServiceRequests"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(CasmSim(username=USER, password=PASSWORD)) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "username": USER,
        "password": PASSWORD,
        "requester": "incman",
        "group": "Service Desk",
        "ticket_url": url + "/servicedesk/ticket/{id}",
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {"id": nid, "integration": "casm", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^casm{tid}-"}}}

    config = {
        "triggers": [trigger(t) for t in ("life", "fault", "map", "bad", "final")],
        "notifications": [
            _notification(
                "casm-life",
                sim.url,
                "life",
                options={"initial_occurrence_only": False, "close_event_on_resolve": True},
            ),
            _notification("casm-fault", sim.url, "fault", config={"timeout": 2}),
            _notification(
                "casm-map",
                sim.url,
                "map",
                field_mapping=(
                    "ticket_description, ${defaultFields/ticket_impact}: ${evt/summary} on "
                    "${dev/titleOrId}\n"
                    "ticket_urgency, ${removeField}\n"
                    "affected_ci_name, ${dev/title}\n"
                ),
            ),
            _notification("casm-bad", sim.url, "bad", config={"password": WRONG_PASSWORD}),
            _notification("casm-final", sim.url, "final"),
        ],
        "devices": [{"id": "casmmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.casm")


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
    return dict(resp.json())


def records(sim: SimControl, key: str) -> list[dict[str, Any]]:
    return [r for r in sim.state()["requests"] if marker(key) in r["description_long"]]


def record(sim: SimControl, number: str) -> dict[str, Any]:
    return next(r for r in sim.state()["requests"] if r["ticket_identifier"] == number)


def wait_record(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if check(r) else None)(record(sim, number)), what=what)


def logged(text: str) -> Any:
    return lambda r: any(text in w["work_description"] for w in r["worklogs"])


def mapped(key: str) -> list[tuple[str, str]]:
    with session_scope() as session:
        rows = session.scalars(
            select(PluginTicket).where(
                PluginTicket.integration == "casm", PluginTicket.correlation_key == key
            )
        ).all()
        return [(r.remote_id, r.number) for r in rows]


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_create_note_assign_close_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("casmlife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    [rec] = records(sim, inc["correlationKey"])
    assert (inc["number"], inc["remoteId"]) == (rec["ticket_identifier"], rec["row_id"])
    assert inc["url"] == f"{sim.url}/servicedesk/ticket/{rec['row_id']}"
    assert (rec["ticket_description"], rec["ticket_impact"], rec["ticket_urgency"]) == (
        "Disk full",
        "High",
        "Critical",
    )
    assert (rec["requester_name"], rec["assigned_to_group_name"]) == ("incman", "Service Desk")
    assert f"/console/events/{event_id}" in rec["description_long"]
    assert mapped(inc["correlationKey"]) == [(rec["row_id"], rec["ticket_identifier"])]

    assert send(client, device)["count"] == 2  # a re-occurrence → a worklog
    wait_record(sim, inc["number"], logged("occurred again"), "the re-occur note")
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_record(
        sim, inc["number"], lambda r: r["assigned_to_individual_name"] == "tester", "the assign"
    )
    resp = client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks <checked> & ok"})
    assert resp.status_code == 201
    wait_record(sim, inc["number"], logged("tester: disks <checked> & ok"), "the event note")

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    rec = wait_record(
        sim, inc["number"], lambda r: r["ticket_status"] == "Resolved", "the remote resolve"
    )
    assert "closed by tester" in rec["resolution"]
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "CLOSED",
        what="the incident CLOSED",
    )
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["ticket_status"] == "Active", "the re-open")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "OPEN",
        what="the incident OPEN again",
    )

    sim.act(inc["number"], ticket_status="Resolved", resolution="fixed by the database team")
    result = poll_notification("casm-life")
    assert result["changed"] >= 1 and result["requests"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(records(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "casm-life")


def test_the_local_map_answers_find_without_a_remote_search(
    client: Client, sim: SimControl
) -> None:
    inc = created_incident(client, send(client, unique("casmlife"))["eventId"])
    plugin = make_plugin(get_catalog().notifications["casm-life"])
    before = len(sim.requests())
    try:
        found = plugin.find(inc["correlationKey"])
    finally:
        plugin.shutdown()
    assert found is not None and (found.remote_id, found.number) == (
        inc["remoteId"],
        inc["number"],
    )
    assert sim.requests()[before:] == []  # answered from the map


def test_field_mapping_with_default_fields_and_remove_field(
    client: Client, sim: SimControl
) -> None:
    created = send(client, "casmmap-db01", summary="Replication lag")
    inc = created_incident(client, created["eventId"])
    rec = record(sim, inc["number"])
    assert rec["ticket_description"] == "High: Replication lag on Primary database"
    assert rec["affected_ci_name"] == "Primary database"
    assert rec["ticket_urgency"] == ""  # removed from the defaults
    assert rec["ticket_impact"] == "High"  # the other defaults stay
    assert marker(inc["correlationKey"]) in rec["description_long"]  # not a mapping's to drop


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 3, "retry_after": 1, "path": CREATE}),
        ("500", {"count": 2, "path": CREATE}),
        ("commit_then_drop", {"count": 1, "path": CREATE}),
        ("slow", {"count": 1, "path": CREATE, "delay": 3}),
        ("drop", {"count": 1, "path": SEARCH}),
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, **options)
    created = send(client, unique("casmfault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    seen = sim.requests()[before:]
    assert len([r for r in seen if r["fault"] == fault]) == options["count"]
    assert sim.faults() == []
    assert mapped(inc["correlationKey"]) == [(inc["remoteId"], inc["number"])]
    if fault in ("commit_then_drop", "slow"):
        # the answer was lost after the service logged the request: the retry searched
        # for the marker and found it instead of logging a second one
        assert len([r for r in seen if r["path"].endswith("/logServiceRequest")]) == 1


def test_a_failure_inside_a_200_answer_is_an_error_without_secrets(
    client: Client, stack: Any, sim: SimControl
) -> None:
    before = len(sim.requests())
    send(client, unique("casmbad"))  # wrong password: the service says so inside a 200

    def failure() -> list[dict[str, Any]]:
        return client.get(
            "/api/v1/events", params={"device": "incman", "component": "casm-bad"}
        ).json()["items"]

    [event] = wait_for(failure, what="the failure event of casm-bad")
    # The remote's words stay out of the event viewers read (in the dead letter, for managers).
    assert "the remote system answered HTTP 401" in event["summary"]
    assert "Invalid user name or password" not in json.dumps(event)
    dead = client.get("/api/v1/dead-letter", params={"notificationId": "casm-bad"}).json()
    assert any("Invalid user name or password" in a["errorDetail"] for a in dead["items"])
    assert [r["status"] for r in sim.requests()[before:]] == [200]  # refused, not retried
    answers = [
        client.get("/api/v1/notifications/casm-bad").text,
        client.get(f"/api/v1/events/{event['eventId']}").text,
    ]
    logs = [p.read_text(errors="replace") for p in stack.logs.glob("*.log")]
    for text in answers + logs:
        assert PASSWORD not in text and WRONG_PASSWORD not in text


def test_reopen_of_a_closed_request_opens_a_new_one(client: Client, sim: SimControl) -> None:
    event_id = send(client, unique("casmfinal"))["eventId"]
    old = created_incident(client, event_id)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_record(sim, old["number"], lambda r: r["ticket_status"] == "Resolved", "the resolve")
    sim.act(old["number"], ticket_status="Closed")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev["incident"] and ev["incident"] != old["number"] else None

    number = wait_for(moved, timeout=60, what="a new incident for the event")["incident"]
    assert record(sim, number)["ticket_status"] == "New"
    assert record(sim, old["number"])["ticket_status"] == "Closed"
    no_dead_actions(client, "casm-final")


def _post(sim: SimControl, body: bytes, operation: str, **headers: str) -> Any:
    content_type = f'application/soap+xml;charset=UTF-8;action="urn:{operation}"'
    return requests.post(
        f"{sim.url}/servicedesk/webservices/ServiceRequest.ServiceRequestHttpSoap12Endpoint/",
        data=body,
        headers={"Content-Type": content_type, **headers},
        timeout=10,
    )


def test_the_simulator_refuses_envelopes_the_service_would() -> None:
    with SimServer(CasmSim(username=USER, password=PASSWORD, multipart=False)) as server:
        sim = SimControl(server.url)
        good = envelope("addWorklog", (USER, PASSWORD), {"workglogBean": {"row_id": "1"}})
        soap11 = good.replace(
            b"http://www.w3.org/2003/05/soap-envelope", b"http://schemas.xmlsoap.org/soap/envelope/"
        )
        unknown = envelope("logServiceRequest", (USER, PASSWORD), {"srqBean": {"summary": "x"}})
        cases = [
            (soap11, "addWorklog", {}, "SOAP 1.2 Envelope expected"),
            (good, "logServiceRequest", {}, "Operation not found"),
            (good, "addWorklog", {"SOAPAction": "urn:logServiceRequest"}, "does not match"),
            (unknown, "logServiceRequest", {}, "Unexpected subelement"),
            (
                good.replace(b"<wrap:credentials>", b"<wrap:credentials><x/>"),
                "addWorklog",
                {},
                "Unexpected",
            ),
        ]
        for body, operation, headers, reason in cases:
            resp = _post(sim, body, operation, **headers)
            assert (resp.status_code, reason in resp.text) == (400, True), resp.text
        resp = _post(sim, good, "addWorklog")  # well-formed, but no such request: in-band
        assert resp.status_code == 200 and "<bean:responseStatus>FAILURE" in resp.text
        assert resp.headers["Content-Type"].startswith("application/soap+xml")
