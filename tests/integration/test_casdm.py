"""CA Service Desk Manager through the real pipeline (API, PostgreSQL, a Celery worker on
`itsm.casdm`) against the CA SDM simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, created_incident, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.casdm_sim import CasdmSim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "Sdm-Pa55-4e7a90"
CUSTOMER = "Monitoring, Incman"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(CasdmSim(password=PASSWORD)) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "username": "servicedesk",
        "password": PASSWORD,
        "customer": CUSTOMER,
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {"id": nid, "integration": "casdm", "triggers": [trigger], "config": config, **extra}


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    def trigger(tid: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^sdm{tid}-"}}}

    config = {
        "triggers": [trigger(t) for t in ("life", "fault", "map", "expire", "final")],
        "notifications": [
            _notification(
                "sdm-life",
                sim.url,
                "life",
                options={"initial_occurrence_only": False, "close_event_on_resolve": True},
            ),
            _notification("sdm-fault", sim.url, "fault", config={"timeout": 2}),
            _notification(
                "sdm-map",
                sim.url,
                "map",
                field_mapping=(
                    "summary, [P${defaultFields/priority}] ${evt/summary} on ${dev/titleOrId}\n"
                    "urgency, ${removeField}\n"
                    "zdevice, ${dev/title}\n"
                ),
            ),
            _notification("sdm-expire", sim.url, "expire"),
            _notification("sdm-final", sim.url, "final"),
        ],
        "devices": [{"id": "sdmmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.casdm")


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
    return [r for r in sim.state()["incidents"] if r["external_system_ticket"] == key]


def record(sim: SimControl, number: str) -> dict[str, Any]:
    return next(r for r in sim.state()["incidents"] if r["ref_num"] == number)


def wait_record(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if check(r) else None)(record(sim, number)), what=what)


def logged(text: str) -> Any:
    return lambda r: any(text in a["description"] for a in r["activity"] if a["type"] == "LOG")


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_lifecycle_create_note_assign_close_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("sdmlife")
    event_id = send(client, device)["eventId"]
    inc = created_incident(client, event_id)
    [rec] = records(sim, inc["correlationKey"])
    assert (inc["number"], inc["remoteId"]) == (rec["ref_num"], rec["id"])
    assert inc["url"].endswith(f"/CAisd/pdmweb.exe?OP=SHOW_DETAIL+PERSID=cr:{rec['id']}")
    assert (rec["summary"], rec["impact"], rec["urgency"], rec["priority"]) == (
        "Disk full",
        "1",
        "5",
        "1",
    )
    assert rec["customer_name"] == CUSTOMER and rec["status"] == "OP"
    assert f"/console/events/{event_id}" in rec["description"]

    assert send(client, device)["count"] == 2  # a re-occurrence → an activity log
    wait_record(sim, inc["number"], logged("occurred again"), "the re-occur note")
    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["assignee_userid"] == "tester", "the assign")
    resp = client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"})
    assert resp.status_code == 201
    wait_record(sim, inc["number"], logged("tester: disks checked"), "the event note")

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    rec = wait_record(sim, inc["number"], lambda r: r["status"] == "RE", "the remote resolve")
    wait_record(sim, inc["number"], logged("closed by tester"), "the close note")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "CLOSED",
        what="the incident CLOSED",
    )
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["status"] == "OP", "the remote re-open")
    wait_for(
        lambda: client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "OPEN",
        what="the incident OPEN again",
    )

    sim.act(inc["number"], status="RE", note="fixed by the database team")
    result = poll_notification("sdm-life")
    assert result["changed"] >= 1 and result["requests"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(records(sim, inc["correlationKey"])) == 1
    no_dead_actions(client, "sdm-life")
    # every action logged in and out again (DELETE rest_access on shutdown)
    wait_for(lambda: sim.state()["active_keys"] == 0, what="every access key ended")
    state = sim.state()
    assert state["logins"] == state["logouts"] > 0


def test_field_mapping_with_default_fields_and_remove_field(
    client: Client, sim: SimControl
) -> None:
    created = send(client, "sdmmap-db01", summary="Replication lag")
    inc = created_incident(client, created["eventId"])
    rec = record(sim, inc["number"])
    assert rec["summary"] == "[P1] Replication lag on Primary database"
    assert rec["zdevice"] == "Primary database"
    assert rec["urgency"] == "3"  # removed from the defaults: the server's own default
    assert rec["impact"] == "1"  # the other defaults stay
    assert rec["external_system_ticket"] == inc["correlationKey"]


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 3, "retry_after": 1, "path": "/caisd-rest/in"}),
        ("500", {"count": 2, "path": "/caisd-rest/in"}),
        ("commit_then_drop", {"count": 1, "method": "POST", "path": "/caisd-rest/in"}),
        ("slow", {"count": 1, "method": "POST", "path": "/caisd-rest/in", "delay": 3}),
        ("drop", {"count": 1, "method": "POST", "path": "/caisd-rest/in"}),
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, **options)
    created = send(client, unique("sdmfault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"]
    assert sim.faults() == []


def test_an_expired_access_key_is_renewed_once_and_the_call_retried(
    client: Client, sim: SimControl
) -> None:
    """SDM answers an expired key with 400 "Invalid REST Access Key", not 401."""
    event_id = send(client, unique("sdmexpire"))["eventId"]
    inc = created_incident(client, event_id)
    before, logins = len(sim.requests()), sim.state()["logins"]
    sim.fault("401", count=1, method="POST", path="/caisd-rest/alg")  # every key expires
    assert client.post(f"/api/v1/events/{event_id}/notes", {"text": "after expiry"}).status_code
    wait_record(sim, inc["number"], logged("tester: after expiry"), "the note after expiry")
    seen = sim.requests()[before:]
    refused = [r for r in seen if r["fault"] == "401"]
    assert [(r["path"], r["status"]) for r in refused] == [("/caisd-rest/alg", 400)]
    posts = [r for r in seen if r["method"] == "POST" and r["path"] == "/caisd-rest/alg"]
    assert [r["status"] for r in posts] == [400, 201]  # retried once, after a new login
    assert sim.state()["logins"] >= logins + 2  # the action's login and the renewal
    no_dead_actions(client, "sdm-expire")


def test_reopen_of_a_closed_incident_opens_a_new_one(client: Client, sim: SimControl) -> None:
    """Closed (CL) tickets are inactive: the plugin says it cannot re-open them."""
    event_id = send(client, unique("sdmfinal"))["eventId"]
    old = created_incident(client, event_id)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_record(sim, old["number"], lambda r: r["status"] == "RE", "the remote resolve")
    sim.act(old["number"], status="CL")
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200

    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev["incident"] and ev["incident"] != old["number"] else None

    number = wait_for(moved, timeout=60, what="a new incident for the event")["incident"]
    items = client.get("/api/v1/incidents", params={"eventId": event_id}).json()["items"]
    new = next(i for i in items if i["number"] == number)
    assert records(sim, new["correlationKey"])[0]["status"] == "OP"
    assert record(sim, old["number"])["status"] == "CL"  # left as the person closed it
    no_dead_actions(client, "sdm-final")


def test_the_simulator_answers_one_match_as_an_object_and_more_as_a_list() -> None:
    with SimServer(CasdmSim(password=PASSWORD)) as server:
        base = f"{server.url}/caisd-rest"
        login = requests.post(
            f"{base}/rest_access",
            data="<rest_access/>",
            auth=("servicedesk", PASSWORD),
            headers={"Content-Type": "application/xml", "Accept": "application/json"},
            timeout=10,
        )
        assert login.status_code == 201
        key = login.json()["rest_access"]["access_key"]
        assert isinstance(key, int)  # numeric text comes back as a JSON number
        headers = {"X-AccessKey": str(key), "Accept": "application/json"}

        def search(where: str) -> dict[str, Any]:
            resp = requests.get(f"{base}/cnt", params={"WC": where}, headers=headers, timeout=10)
            assert resp.status_code == 200, resp.text
            return dict(resp.json()["collection_cnt"])

        assert isinstance(search("userid = 'tester'")["cnt"], dict)
        assert len(search("userid = 'tester' OR userid = 'oncall1'")["cnt"]) == 2
        assert "cnt" not in search("userid = 'nobody'")
        bad = requests.get(f"{base}/cnt", params={"WC": "nosuch = 1"}, headers=headers, timeout=10)
        assert bad.status_code == 400
        no_json = requests.post(f"{base}/in", data="{}", headers=headers, timeout=10)
        assert no_json.status_code == 415
