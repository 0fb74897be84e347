"""ServiceNow through the real pipeline (API, PostgreSQL, a Celery worker on
`itsm.servicenow`) against the ServiceNow simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, created_incident, unique, wait_for

from incman.sync.poll import poll_notification
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "Sn0w-Pa55-7f3e91c4"
WRONG_PASSWORD = "Wr0ng-Pa55-0c81d2"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(ServiceNowSim(password=PASSWORD)) as server:
        yield SimControl(server.url)


def _notification(nid: str, url: str, trigger: str, **extra: Any) -> dict[str, Any]:
    config = {
        "url": url,
        "username": "incman",
        "password": PASSWORD,
        "timeout": 5,
        **extra.pop("config", {}),
    }
    return {
        "id": nid,
        "integration": "servicenow",
        "triggers": [trigger],
        "config": config,
        **extra,
    }


OTHER_PASSWORD = "An0ther-Sn0w-2b9d"


@pytest.fixture(scope="module")
def other_sim() -> Iterator[SimControl]:
    """A second ServiceNow instance, with credentials of its own."""
    with SimServer(ServiceNowSim(password=OTHER_PASSWORD)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl, other_sim: SimControl) -> Any:
    def trigger(tid: str, prefix: str) -> dict[str, Any]:
        return {"id": tid, "when": {"device": {"_m": f"^{prefix}-"}}}

    config = {
        "triggers": [
            trigger("life", "snowlife"),
            trigger("faults", "snowfault"),
            trigger("map", "snowmap"),
            trigger("bad", "snowbad"),
            trigger("final", "snowfinal"),
            trigger("recur", "snowrecur"),
            trigger("never", "never-matches"),
            trigger("poll-a", "snowpa"),
            trigger("poll-b", "snowpb"),
        ],
        "notifications": [
            # two notifications of one integration, each with settings of its own
            _notification("snow-poll-a", sim.url, "poll-a"),  # final_states: the default
            _notification(
                "snow-poll-b",
                other_sim.url,
                "poll-b",
                config={"password": OTHER_PASSWORD, "final_states": ["6"]},
            ),
            _notification(
                "snow-life",
                sim.url,
                "life",
                options={"initial_occurrence_only": False, "close_event_on_resolve": True},
            ),
            _notification("snow-faults", sim.url, "faults", config={"timeout": 2}),
            _notification(
                "snow-map",
                sim.url,
                "map",
                field_mapping=(
                    "short_description, ${evt/summary} on ${dev/titleOrId}\n"
                    "u_device, ${dev/title}\n"
                ),
            ),
            _notification("snow-bad", sim.url, "bad", config={"password": WRONG_PASSWORD}),
            _notification("snow-final", sim.url, "final"),
            _notification(
                "snow-recur",
                sim.url,
                "recur",
                options={"reopen_incident_on_reoccur": True, "send_clear": True},
            ),
            _notification(
                "snow-manual",
                sim.url,
                "never",
                subscribers=["tester"],
                options={"send_clear": True},
                config={"assignment_group": "Service Desk"},
            ),
        ],
        "devices": [{"id": "snowmap-db01", "title": "Primary database", "priority": 800}],
    }
    return make_stack(config, queues="itsm.servicenow")


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
    return [r for r in sim.state()["incidents"] if r["correlation_id"] == key]


def record(sim: SimControl, number: str) -> dict[str, Any]:
    return next(r for r in sim.state()["incidents"] if r["number"] == number)


def wait_record(sim: SimControl, number: str, check: Any, what: str) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if check(r) else None)(record(sim, number)), what=what)


def incident_is(client: Client, incident_id: str, state: str, remote_state: str) -> bool:
    """The incident's local state and the remote state the last action left."""
    inc = client.get(f"/api/v1/incidents/{incident_id}").json()
    return bool(inc["state"] == state and inc["remoteState"] == remote_state)


def test_lifecycle_create_note_assign_close_reopen_and_remote_resolve(
    client: Client, sim: SimControl
) -> None:
    device = unique("snowlife")
    created = send(client, device)
    event_id = created["eventId"]
    inc = created_incident(client, event_id)
    assert inc["number"].startswith("INC")
    [rec] = records(sim, inc["correlationKey"])
    assert rec["number"] == inc["number"]
    assert inc["url"] == f"{sim.url}/incident.do?sys_id={rec['sys_id']}"
    assert client.get(f"/api/v1/events/{event_id}").json()["incident"] == inc["number"]
    assert (rec["short_description"], rec["impact"], rec["urgency"]) == ("Disk full", "1", "1")
    assert f"/console/events/{event_id}" in rec["description"]

    again = send(client, device)  # a re-occurrence → a work note
    assert (again["eventId"], again["count"]) == (event_id, 2)
    wait_record(
        sim,
        inc["number"],
        lambda r: any("occurred again" in j["value"] for j in r["journal"]),
        "the re-occur note",
    )

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["assigned_to_name"] == "Tester", "the assign")

    assert (
        client.post(f"/api/v1/events/{event_id}/notes", {"text": "disks checked"}).status_code
        == 201
    )
    wait_record(
        sim,
        inc["number"],
        lambda r: any(j["value"] == "tester: disks checked" for j in r["journal"]),
        "the event note",
    )

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    rec = wait_record(sim, inc["number"], lambda r: r["state"] == "6", "the remote resolve")
    assert rec["close_code"] == "Solved (Permanently)" and "closed by tester" in rec["close_notes"]
    wait_for(
        lambda: incident_is(client, inc["id"], "CLOSED", "6"),
        what="the incident CLOSED, remote state 6 (Resolved) as the close left it",
    )

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    rec = wait_record(sim, inc["number"], lambda r: r["state"] == "2", "the remote re-open")
    assert rec["reopen_count"] == "1"
    wait_for(
        lambda: incident_is(client, inc["id"], "OPEN", "2"),
        what="the incident OPEN again, remote state 2 (In Progress)",
    )

    sim.act(
        inc["number"],
        state="6",
        close_code="Solved Remotely (Permanently)",
        close_notes="fixed by the database team",
        by="oncall1",
    )
    result = poll_notification("snow-life")
    assert result["changed"] >= 1 and result["requests"] >= 1
    assert client.get(f"/api/v1/incidents/{inc['id']}").json()["state"] == "RESOLVED"
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Closed"
    assert len(records(sim, inc["correlationKey"])) == 1


def test_field_mapping_reaches_the_record(client: Client, sim: SimControl) -> None:
    created = send(client, "snowmap-db01", summary="Replication lag")
    inc = created_incident(client, created["eventId"])
    rec = record(sim, inc["number"])
    assert rec["short_description"] == "Replication lag on Primary database"
    assert rec["u_device"] == "Primary database"
    assert rec["correlation_id"] == inc["correlationKey"]  # not a mapping's to change


def test_manual_incident_then_assign_has_no_403(client: Client, sim: SimControl) -> None:
    """The seed's 3.0.2 bug: assigning a manually created ServiceNow incident got 403."""
    created = send(client, unique("console"))  # matches no trigger
    resp = client.post(
        "/api/v1/incidents", {"eventIds": [created["eventId"]], "notificationId": "snow-manual"}
    )
    assert resp.status_code == 201, resp.text
    inc = created_incident(client, created["eventId"])
    assert client.post(f"/api/v1/events/{created['eventId']}/acknowledge").status_code == 200
    rec = wait_record(
        sim,
        inc["number"],
        lambda r: r["assigned_to_name"] == "Tester",
        "the manual incident's assign",
    )
    assert rec["assignment_group_name"] == "Service Desk"
    assert not [r for r in sim.requests() if r["status"] == 403]


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 5, "retry_after": 1}),
        ("500", {"count": 3}),
        ("commit_then_drop", {"count": 1, "method": "POST"}),
        ("slow", {"count": 1, "method": "POST", "delay": 3}),  # the answer outlives the timeout
    ],
)
def test_faults_still_make_exactly_one_ticket(
    client: Client, sim: SimControl, fault: str, options: dict[str, Any]
) -> None:
    before = len(sim.requests())
    sim.fault(fault, path="/api/now/table/incident", **options)
    created = send(client, unique("snowfault"))
    inc = created_incident(client, created["eventId"], timeout=60)
    assert len(records(sim, inc["correlationKey"])) == 1
    seen = [r for r in sim.requests()[before:] if r["fault"] == fault]
    assert len(seen) == options["count"]
    assert sim.faults() == []
    assert client.get(f"/api/v1/events/{created['eventId']}").json()["incident"] == inc["number"]


def test_secrets_stay_out_of_logs_and_answers(client: Client, stack: Any, sim: SimControl) -> None:
    send(client, unique("snowbad"))  # 401 with the wrong password: a failure event

    def failure() -> list[dict[str, Any]]:
        return client.get(
            "/api/v1/events", params={"device": "incman", "component": "snow-bad"}
        ).json()["items"]

    [event] = wait_for(failure, what="the failure event of snow-bad")
    assert "HTTP 401" in event["summary"]
    answers = [
        client.get("/api/v1/notifications/snow-bad").text,
        client.get("/api/v1/notifications/snow-life").text,
        client.get("/api/v1/notifications", params={"manual": "true"}).text,
        client.get(f"/api/v1/events/{event['eventId']}").text,
        client.get("/api/v1/incidents").text,
    ]
    logs = [p.read_text(errors="replace") for p in stack.logs.glob("*.log")]
    assert any("snow-bad" in text for text in logs)  # the failure was logged...
    for text in answers + logs:
        assert PASSWORD not in text and WRONG_PASSWORD not in text  # ...without secrets


def close_for_good(client: Client, sim: SimControl, event_id: str) -> dict[str, Any]:
    """The event's incident, resolved by incman, then Closed (final, read-only) by a person."""
    inc = created_incident(client, event_id)
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_record(sim, inc["number"], lambda r: r["state"] == "6", "the remote resolve")
    sim.act(inc["number"], state="7", by="oncall1")
    return inc


def replacement(client: Client, event_id: str, old: dict[str, Any]) -> dict[str, Any]:
    def moved() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        number = ev["incident"]
        return ev if number and number != old["number"] and ev["incidents"] else None

    return wait_for(moved, timeout=60, what="a new incident for the event")


def no_dead_actions(client: Client, notification: str) -> None:
    dead = client.get("/api/v1/dead-letter", params={"notificationId": notification}).json()
    assert dead["items"] == [], dead


def test_reopen_of_a_finally_closed_incident_opens_a_new_one(
    client: Client, sim: SimControl, stack: Any
) -> None:
    """Issue 11: re-opening the event of a Closed (state 7, read-only) ticket used to PATCH,
    get 403 and dead-letter; the plugin now says it cannot re-open that one."""
    event_id = send(client, unique("snowfinal"))["eventId"]
    old = close_for_good(client, sim, event_id)
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    ev = replacement(client, event_id, old)
    assert ev["status"] == "New"
    new = created_incident(client, event_id)
    assert new["id"] != old["id"] and new["state"] == "OPEN"
    assert records(sim, new["correlationKey"])[0]["state"] == "1"
    assert record(sim, old["number"])["state"] == "7"  # left as the person closed it
    assert client.get(f"/api/v1/incidents/{old['id']}").json()["state"] == "CLOSED"
    assert [r for r in sim.requests() if r["status"] == 403]  # it was tried, and refused
    no_dead_actions(client, "snow-final")
    logs = "".join(w.output() for w in stack.workers)
    assert f"cannot re-open {old['number']}" in logs


def test_reoccurrence_of_a_finally_closed_incident_opens_a_new_one(
    client: Client, sim: SimControl
) -> None:
    """reopen_incident_on_reoccur against a Closed ticket: a new incident, not a dead letter."""
    device = unique("snowrecur")
    first = send(client, device)["eventId"]
    old = close_for_good(client, sim, first)
    again = send(client, device)["eventId"]  # the same dedupid, its event closed: a new event
    assert again != first
    ev = replacement(client, again, old)
    new = created_incident(client, again)
    assert ev["incident"] == new["number"] != old["number"]
    assert client.get(f"/api/v1/incidents/{old['id']}").json()["state"] == "CLOSED"
    assert len(records(sim, new["correlationKey"])) == 1
    no_dead_actions(client, "snow-recur")


def test_a_typed_incident_number_is_looked_up_and_followed(client: Client, sim: SimControl) -> None:
    """Issue 11: the associated incident used to have no remote id, so later actions
    dead-lettered (405). Now it is read from ServiceNow, polled, assigned and closed."""
    opened = requests.post(
        f"{sim.url}/api/now/table/incident",
        auth=("incman", PASSWORD),
        json={"short_description": "opened by hand", "state": "2"},
        timeout=10,
    ).json()["result"]
    event_id = send(client, unique("console"))["eventId"]  # matches no trigger
    resp = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "snow-manual", "incident": opened["number"]},
    )
    assert resp.status_code == 200, resp.text
    inc = resp.json()
    assert (inc["number"], inc["state"], inc["remoteState"]) == (opened["number"], "OPEN", "2")
    assert inc["url"] == f"{sim.url}/incident.do?sys_id={opened['sys_id']}"

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_record(sim, opened["number"], lambda r: r["assigned_to_name"] == "Tester", "the assign")
    sim.act(opened["number"], work_notes="looking", by="oncall1")
    result = poll_notification("snow-manual")
    assert result["polled"] >= 1
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_record(sim, opened["number"], lambda r: r["state"] == "6", "the remote resolve")
    assert not [r for r in sim.requests() if r["status"] == 405]
    no_dead_actions(client, "snow-manual")


def test_an_unknown_typed_number_is_422_with_the_reason(client: Client, sim: SimControl) -> None:
    event_id = send(client, unique("console"))["eventId"]
    resp = client.post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "snow-manual", "incident": "INC9999999"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == "incident: servicenow has no incident INC9999999"
    assert client.get(f"/api/v1/events/{event_id}").json()["incident"] in (None, "")


def test_each_notification_is_polled_with_its_own_settings(
    client: Client, sim: SimControl, other_sim: SimControl
) -> None:
    """Seed 000, 2.9.3: "When more than one Notification is configured, Incident polling may
    have used the incorrect settings" — and 2.9.4's ServiceNow final state, default '7'.
    snow-poll-a reads its instance with the default final state; snow-poll-b another
    instance, other credentials, final state 6."""
    a = created_incident(client, send(client, unique("snowpa"))["eventId"])
    b = created_incident(client, send(client, unique("snowpb"))["eventId"])
    assert records(sim, a["correlationKey"]) and records(other_sim, b["correlationKey"])
    assert not records(sim, b["correlationKey"])
    for control, inc in ((sim, a), (other_sim, b)):
        control.act(inc["number"], state="6", close_code="x", close_notes="y", by="oncall1")

    seen_a, seen_b = len(sim.requests()), len(other_sim.requests())
    assert poll_notification("snow-poll-a")["changed"] >= 1
    assert len(other_sim.requests()) == seen_b  # a's poll never reached b's instance
    polled_a = sim.requests()[seen_a:]
    assert poll_notification("snow-poll-b")["changed"] >= 1
    assert len(sim.requests()) == seen_a + len(polled_a)
    polled_b = other_sim.requests()[seen_b:]
    assert polled_a and polled_b
    assert {r["status"] for r in polled_a + polled_b} == {200}  # each with its own password

    def state(inc: dict[str, Any]) -> str:
        return str(client.get(f"/api/v1/incidents/{inc['id']}").json()["state"])

    assert state(a) == "RESOLVED"  # 6 is not final by default: still polled
    assert state(b) == "CLOSED"  # 6 is one of b's final states
    sim.act(a["number"], state="7", close_code="x", close_notes="y", by="oncall1")
    poll_notification("snow-poll-a")
    assert state(a) == "CLOSED"  # 7, the default final state
    assert poll_notification("snow-poll-a")["polled"] == 0  # a closed incident is not polled
