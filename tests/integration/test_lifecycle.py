"""The lifecycle through the real pipeline (API → worker → Debug), option by option, and
the event console's manual incidents (API and CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers import Client, unique, wait_for
from sqlalchemy import func, select, update

from incman.store.db import session_scope
from incman.store.debug_records import DebugStore
from incman.store.models import Action, DebugIncident, EventIncident, Incident, utcnow


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prefixed(name: str) -> dict[str, Any]:
    return {"id": name, "when": {"device": {"_m": f"^{name}-"}}}


CONFIG: dict[str, Any] = {
    "triggers": [
        prefixed(n)
        for n in ("plain", "reopen", "follow", "ackcreate", "repeat", "linked", "mapped", "aged")
    ]
    + [
        {"id": "never", "when": {"device": {"_eq": "no-such-device"}}},
        {"id": "switched-off", "enabled": False, "when": {"device": {"_m": "^quiet-"}}},
    ],
    "notifications": [
        {
            "id": "mapped",
            "integration": "debug",
            "triggers": ["mapped"],
            "field_mapping": "old_link, ${evt/url}\n"
            "smart, ${urls/smartViewUrl}\n"
            "room, ${dmd/devices/mapped-db01/room}\n"
            "peer, ${python: dmd.Devices.findDevice('mapped-db02').titleOrId()}\n"
            "aged_via, ${python: dmd.notifications['aged']['integration']}\n"
            "secret, ${python: 'config' in dmd.notifications['mapped']}",
        },
        {"id": "aged", "integration": "debug", "triggers": ["aged"]},
        {
            "id": "manual-off",
            "integration": "debug",
            "triggers": ["switched-off"],
            "subscribers": ["ops"],
            "options": {"send_clear": True},
        },
        {"id": "plain", "integration": "debug", "triggers": ["plain"]},
        {
            "id": "reopen",
            "integration": "debug",
            "triggers": ["reopen"],
            "options": {"reopen_incident_on_reoccur": True, "send_clear": True},
        },
        {
            "id": "follow",
            "integration": "debug",
            "triggers": ["follow"],
            "options": {"close_event_on_resolve": True, "ack_event_on_assign": True},
        },
        {
            "id": "ackcreate",
            "integration": "debug",
            "triggers": ["ackcreate"],
            "options": {"ack_event_on_create": True},
        },
        {
            "id": "linked",
            "integration": "debug",
            "triggers": ["linked"],
            "field_mapping": "ack, ${urls/ackUrl}\nclose, ${urls/closeUrl}\n"
            "summary, ${evt/summary} on ${dev/titleOrId}",
        },
        {
            "id": "repeat",
            "integration": "debug",
            "triggers": ["repeat"],
            "options": {"initial_occurrence_only": False},
        },
        {
            "id": "manual-one",
            "integration": "debug",
            "triggers": ["never"],
            "subscribers": ["ops"],
            "options": {"send_clear": True},
        },
        {
            "id": "manual-all",
            "integration": "debug",
            "triggers": ["never"],
            "subscribers": ["oncall1"],
            "options": {"one_incident_per_event": False},
        },
        {
            "id": "manual-hidden",
            "integration": "debug",
            "triggers": ["never"],
            "subscribers": ["ops"],
            "options": {"hidden": True},
        },
    ],
    "devices": [
        {"id": "mapped-db01", "title": "Primary database", "room": "Paris-2"},
        {"id": "mapped-db02", "title": "Standby database"},
    ],
    "users": [
        {
            "name": "oncall1",
            "role": "operator",
            "groups": ["ops"],
            "api_key_sha256": sha("oncall-key"),
        },
        {"name": "stranger", "role": "operator", "api_key_sha256": sha("stranger-key")},
    ],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    return make_stack(CONFIG)


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str, severity: int = 4, **extra: Any) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "c",
            "eventClass": "/X",
            "severity": severity,
            "summary": f"{device} is unwell",
            **extra,
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def incident_of(client: Client, event_id: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        ev = client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev.get("incident") else None

    return wait_for(ready, what=f"an incident on {event_id}")


def debug_row(number: str) -> DebugIncident:
    with session_scope() as session:
        row = session.scalars(select(DebugIncident).where(DebugIncident.number == number)).one()
        session.expunge(row)
        return row


def set_remote(number: str, **values: Any) -> None:
    """Act as a person in the remote system."""
    with session_scope() as session:
        session.execute(
            update(DebugIncident).where(DebugIncident.number == number).values(**values)
        )


def note_texts(number: str) -> list[str]:
    return [n["text"] for n in debug_row(number).notes]


def clear(client: Client, device: str) -> None:
    send(client, device, severity=0)


def test_new_event_for_an_open_incident_is_associated_with_a_note(client: Client) -> None:
    device = unique("plain")
    first = incident_of(client, send(client, device)["eventId"])
    clear(client, device)  # Cleared, not Closed: without Send Clear the incident stays open
    second_id = send(client, device)["eventId"]
    second = incident_of(client, second_id)
    assert second["incident"] == first["incident"]
    wait_for(
        lambda: f"New event for existing incident: {second_id}" in note_texts(first["incident"]),
        what="the association note",
    )
    with session_scope() as session:
        assert (
            len(session.scalars(select(Incident).where(Incident.dedupid == first["dedupid"])).all())
            == 1
        )


def test_check_closed_opens_a_new_incident_when_the_remote_closed_it(client: Client) -> None:
    device = unique("plain")
    first = incident_of(client, send(client, device)["eventId"])
    set_remote(first["incident"], state="closed")
    clear(client, device)
    second = incident_of(client, send(client, device)["eventId"])
    assert second["incident"] != first["incident"]


def test_reopen_on_reoccur_reopens_the_same_incident(client: Client) -> None:
    device = unique("reopen")
    first = incident_of(client, send(client, device)["eventId"])
    number = first["incident"]
    clear(client, device)  # Send Clear: the incident closes
    wait_for(lambda: debug_row(number).state == "closed", what="the close on clear")
    second_id = send(client, device)["eventId"]
    assert incident_of(client, second_id)["incident"] == number
    wait_for(lambda: debug_row(number).state == "open", what="the re-open")
    with session_scope() as session:
        assert (
            session.scalars(select(Incident.state).where(Incident.number == number)).one() == "OPEN"
        )


def remote_state_is(client: Client, event_id: str, state: str, remote: str) -> bool:
    """The incident's local state and the remote state the last action left."""
    [inc] = client.get("/api/v1/incidents", params={"eventId": event_id}).json()["items"]
    return bool(inc["state"] == state and inc["remoteState"] == remote)


def test_ack_close_reopen_and_notes_follow_the_event(client: Client) -> None:
    event_id = send(client, unique("plain"))["eventId"]
    number = incident_of(client, event_id)["incident"]
    assert remote_state_is(client, event_id, "OPEN", "open")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").json()["status"] == "Acknowledged"
    wait_for(lambda: debug_row(number).assignee == "tester", what="the assignment")
    wait_for(
        lambda: remote_state_is(client, event_id, "ASSIGNED", "assigned"),
        what="remoteState assigned",
    )

    note = client.post(f"/api/v1/events/{event_id}/notes", {"text": "looking into it"})
    assert note.status_code == 201
    wait_for(lambda: "tester: looking into it" in note_texts(number), what="the note")

    assert client.post(f"/api/v1/events/{event_id}/close").json()["status"] == "Closed"
    wait_for(lambda: debug_row(number).state == "closed", what="the close")
    # The poller reads open incidents only: the close itself records the remote state.
    wait_for(
        lambda: remote_state_is(client, event_id, "CLOSED", "closed"), what="remoteState closed"
    )

    assert client.post(f"/api/v1/events/{event_id}/reopen").json()["status"] == "New"
    wait_for(lambda: debug_row(number).state == "open", what="the re-open")
    wait_for(lambda: remote_state_is(client, event_id, "OPEN", "open"), what="remoteState open")


def test_remote_resolve_and_assign_flow_back_through_the_poller(client: Client) -> None:
    from incman.sync.poll import poll_notification

    assigned_id = send(client, unique("follow"))["eventId"]
    resolved_id = send(client, unique("follow"))["eventId"]
    assigned = incident_of(client, assigned_id)["incident"]
    resolved = incident_of(client, resolved_id)["incident"]
    set_remote(assigned, state="assigned", assignee="alice")
    set_remote(resolved, state="resolved")
    result = poll_notification("follow")
    assert result["requests"] >= 1 and result["changed"] >= 2
    ack = client.get(f"/api/v1/events/{assigned_id}").json()
    assert ack["status"] == "Acknowledged"
    assert ack["acknowledgedBy"] == "alice"
    assert client.get(f"/api/v1/events/{resolved_id}").json()["status"] == "Closed"
    # The poller's close is the remote's own doing: nothing is sent back to close it again.
    assert debug_row(resolved).state == "resolved"


def test_ack_event_on_creation(client: Client) -> None:
    event_id = send(client, unique("ackcreate"))["eventId"]
    incident_of(client, event_id)
    ev = wait_for(
        lambda: (
            (e := client.get(f"/api/v1/events/{event_id}").json())["status"] == "Acknowledged" and e
        ),
        what="the acknowledgement",
    )
    assert ev["acknowledgedBy"] == "incman"


def test_repeats_send_nothing_with_initial_occurrence_only(client: Client) -> None:
    device = unique("plain")
    event_id = send(client, device)["eventId"]
    number = incident_of(client, event_id)["incident"]
    for _ in range(5):
        send(client, device)
    marker = send(client, unique("plain"))["eventId"]  # handled after the repeats
    incident_of(client, marker)
    assert note_texts(number) == []


def test_without_initial_occurrence_only_repeats_add_notes_never_tickets(client: Client) -> None:
    device = unique("repeat")
    for _ in range(20):  # sent at once: creates and re-occurrences race in the workers
        send(client, device)
    event_id = send(client, device)["eventId"]
    number = incident_of(client, event_id)["incident"]
    wait_for(
        lambda: len([t for t in note_texts(number) if "occurred again" in t]) == 20,
        what="a note per re-occurrence",
    )
    with session_scope() as session:
        assert (
            len(
                session.scalars(
                    select(DebugIncident).where(
                        DebugIncident.fields["device"].as_string() == device
                    )
                ).all()
            )
            == 1
        )
    # No self-monitoring event came out of it (the seed's event-loop bug).
    failures = client.get("/api/v1/events", params={"device": "incman"}).json()["items"]
    assert not [f for f in failures if f["component"] == "repeat"]


# -- manual incidents ------------------------------------------------------------------------


def test_manual_incident_per_event_by_a_subscriber(stack: Any) -> None:
    operator = Client(stack.url, key="oncall-key")
    ids = [send(stack.client, unique("quiet"))["eventId"] for _ in range(2)]
    resp = operator.post("/api/v1/incidents", {"eventIds": ids, "notificationId": "manual-one"})
    assert resp.status_code == 201, resp.text
    items = resp.json()["items"]
    assert len(items) == 2
    assert all(i["number"] and i["state"] == "OPEN" for i in items)
    assert [i["eventIds"] for i in items] == [[ids[0]], [ids[1]]]
    ev = stack.client.get(f"/api/v1/events/{ids[0]}").json()
    assert ev["incident"] == items[0]["number"]
    assert ev["notificationId"] == "manual-one"


def test_manual_incident_for_all_selected_events(stack: Any) -> None:
    operator = Client(stack.url, key="oncall-key")
    ids = [send(stack.client, unique("quiet"))["eventId"] for _ in range(3)]
    resp = operator.post("/api/v1/incidents", {"eventIds": ids, "notificationId": "manual-all"})
    assert resp.status_code == 201, resp.text
    items = resp.json()["items"]
    assert len(items) == 1
    assert sorted(items[0]["eventIds"]) == sorted(ids)


@pytest.mark.parametrize(
    ("key", "notification", "status"),
    [
        ("stranger-key", "manual-one", 403),  # not a subscriber
        ("oncall-key", "manual-hidden", 403),  # hidden from manual use
        ("oncall-key", "no-such", 404),
        ("ingest-key", "manual-one", 403),  # role too low
    ],
)
def test_manual_incident_refusals(stack: Any, key: str, notification: str, status: int) -> None:
    event_id = send(stack.client, unique("quiet"))["eventId"]
    resp = Client(stack.url, key=key).post(
        "/api/v1/incidents", {"eventIds": [event_id], "notificationId": notification}
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["detail"]


def test_manual_incident_with_an_unknown_event(stack: Any) -> None:
    resp = stack.client.post(
        "/api/v1/incidents", {"eventIds": ["nope"], "notificationId": "manual-one"}
    )
    assert resp.status_code == 404
    assert "nope" in resp.json()["detail"]


def remote_ticket(summary: str) -> str:
    """A Debug ticket opened at the "remote" by someone else: incman does not know it."""
    return DebugStore().create(unique("by-hand"), {"summary": summary}).number


def test_associate_with_a_typed_incident_number(stack: Any) -> None:
    ids = [send(stack.client, unique("quiet"))["eventId"] for _ in range(2)]
    number = remote_ticket("opened by hand")
    resp = Client(stack.url, key="oncall-key").post(
        "/api/v1/incidents/associate",
        {"eventIds": ids, "notificationId": "manual-one", "incident": number},
    )
    assert resp.status_code == 200, resp.text
    inc = resp.json()
    assert (inc["number"], inc["state"]) == (number, "OPEN")
    assert inc["url"].endswith(f"/debug/incidents/{number}")
    assert sorted(inc["eventIds"]) == sorted(ids)
    ev = stack.client.get(f"/api/v1/events/{ids[1]}").json()
    assert ev["incident"] == number
    assert ev["incidentCreatedAt"]
    with session_scope() as session:
        assert session.get(Incident, inc["id"]).remote_id == str(debug_row(number).id)
    # Later actions reach the remote ticket (they used to dead-letter: no remote id).
    assert stack.client.post(f"/api/v1/events/{ids[0]}/notes", {"text": "seen"}).status_code == 201
    wait_for(lambda: any("seen" in n["text"] for n in debug_row(number).notes), what="the note")
    for event_id in ids:
        assert stack.client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: debug_row(number).state == "closed", what="the remote close")


def test_associate_with_an_unknown_number_is_422(stack: Any) -> None:
    event_id = send(stack.client, unique("quiet"))["eventId"]
    resp = Client(stack.url, key="oncall-key").post(
        "/api/v1/incidents/associate",
        {"eventIds": [event_id], "notificationId": "manual-one", "incident": "DBG9999999"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == "incident: debug has no incident DBG9999999"
    assert stack.client.get(f"/api/v1/events/{event_id}").json()["incident"] in (None, "")


def test_incident_cli(stack: Any) -> None:
    ids = [send(stack.client, unique("quiet"))["eventId"] for _ in range(2)]
    number = remote_ticket("for the CLI")
    env = {**os.environ, "INCMAN_URL": stack.url, "INCMAN_API_KEY": "oncall-key"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "incman.cli",
            "incident",
            "create",
            "-n",
            "manual-one",
            ids[0],
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["items"][0]["eventIds"] == [ids[0]]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "incman.cli",
            "incident",
            "associate",
            "-n",
            "manual-one",
            "-i",
            number,
            ids[1],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert number in out.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "incman.cli", "incident", "create", "-n", "manual-hidden", ids[1]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "hidden" in refused.stderr


def test_one_click_links_in_the_ticket(client: Client) -> None:
    import requests

    event_id = send(client, unique("linked"))["eventId"]
    number = incident_of(client, event_id)["incident"]
    fields = debug_row(number).fields
    assert fields["summary"].endswith(" is unwell on " + fields["device"])
    ack = fields["ack"].replace("http://127.0.0.1:8000", client.base)
    page = requests.get(ack, timeout=10)  # no API key; a bare GET changes nothing
    assert page.status_code == 200 and "Acknowledge this event?" in page.text
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "New"
    done = requests.post(ack, timeout=10)
    assert done.status_code == 200 and "Acknowledged" in done.text
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "Acknowledged"
    forged = requests.post(ack[:-3] + "abc", timeout=10)
    assert forged.status_code == 403


# -- the seed's finer points -------------------------------------------------------------


def test_field_mapping_takes_the_seeds_other_names(client: Client) -> None:
    """Seed 000: `${evt/url}` (3.0.0 migrated it to `${urls/eventUrl}`, so old mappings keep
    working), `urls/smartViewUrl` (3.0.0), and the `dmd` context — here read-only access to
    the configuration and the devices incman knows."""
    event_id = send(client, "mapped-db01")["eventId"]
    fields = debug_row(incident_of(client, event_id)["incident"]).fields
    assert fields["old_link"] == f"http://127.0.0.1:8000/console/events/{event_id}"
    assert fields["smart"] == f"http://127.0.0.1:8000/console/events/{event_id}"
    assert fields["room"] == "Paris-2"
    assert fields["peer"] == "Standby database"
    assert fields["aged_via"] == "debug"  # another notification's definition
    assert fields["secret"] is False  # no plugin config (secrets) through dmd


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_incident_created_at_is_the_association_time(client: Client) -> None:
    """Seed 000: "If an Event is associated to an existing Incident, then this time reflects
    the association time, not the time the existing Incident is created"."""
    device = unique("plain")
    first = incident_of(client, send(client, device)["eventId"])
    clear(client, device)
    second_id = send(client, device)["eventId"]
    second = incident_of(client, second_id)
    assert second["incident"] == first["incident"]
    [inc] = client.get("/api/v1/incidents", params={"eventId": second_id}).json()["items"]
    with session_scope() as session:
        link = session.get(EventIncident, (second_id, "plain"))
        assert link is not None
        associated = link.associated_at
    assert _when(second["incidentCreatedAt"]) == associated
    assert _when(second["incidentCreatedAt"]) >= _when(second["firstTime"])
    assert _when(second["incidentCreatedAt"]) > _when(inc["createdAt"])
    assert second["incidentCreatedAt"] != first["incidentCreatedAt"]


def test_an_aged_out_event_is_not_associated(client: Client) -> None:
    """Seed 000: new events are associated with the incident of "an existing event that has
    not yet aged out of the system". Once the event aged out, a new event with its dedupid
    gets a new incident, even though the old one is still open."""
    from incman.store.aging import age_events

    device = unique("aged")
    first_id = send(client, device, severity=3)["eventId"]
    first = incident_of(client, first_id)
    age_events(now=utcnow() + timedelta(hours=5))  # beat's aging, four hours on
    assert client.get(f"/api/v1/events/{first_id}").json()["status"] == "Aged"
    second_id = send(client, device, severity=3)["eventId"]
    assert second_id != first_id
    second = incident_of(client, second_id)
    assert second["incident"] != first["incident"]
    old = client.get("/api/v1/incidents", params={"eventId": first_id}).json()["items"][0]
    assert old["state"] == "OPEN"  # aging says the event went quiet, not that it is solved
    assert note_texts(first["incident"]) == []  # no "New event for existing incident"
    # the next event of the dedupid joins the new incident, not the old one
    clear(client, device)
    third = incident_of(client, send(client, device, severity=3)["eventId"])
    assert third["incident"] == second["incident"]


def _clear_actions(incident_id: str) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Action)
                .where(Action.incident_id == incident_id, Action.kind == "clear")
            )
            or 0
        )


def test_a_manual_incident_follows_a_clear_only_with_an_enabled_trigger(stack: Any) -> None:
    """Seed 000: "In order for a manually created Incident to be updated when the event
    clears ... Send Clear ... is checked [and] there is an 'Enabled' Trigger in that
    notification". manual-one has both; manual-off has Send Clear and a disabled trigger."""
    operator = Client(stack.url, key="oncall-key")
    made = {}
    for notification in ("manual-one", "manual-off"):
        device = unique("quiet")
        event_id = send(stack.client, device)["eventId"]
        resp = operator.post(
            "/api/v1/incidents", {"eventIds": [event_id], "notificationId": notification}
        )
        assert resp.status_code == 201, resp.text
        made[notification] = (device, resp.json()["items"][0]["id"])
        incident_of(stack.client, event_id)
    for device, _ in made.values():
        clear(stack.client, device)
    # the clear's actions are written with the clear itself: none for manual-off
    assert _clear_actions(made["manual-one"][1]) == 1
    assert _clear_actions(made["manual-off"][1]) == 0
    one = stack.client.get(f"/api/v1/incidents/{made['manual-one'][1]}").json()
    wait_for(lambda: debug_row(one["number"]).state == "closed", what="manual-one's close")
    off = stack.client.get(f"/api/v1/incidents/{made['manual-off'][1]}").json()
    assert debug_row(off["number"]).state == "open" and off["state"] == "OPEN"


def test_a_deleted_notification_is_polled_without_error(stack: Any) -> None:
    """Seed 000, 2.9.4: "Deleting a Notification leads to tracebacks during polling if open
    events existed" — the poll queued for it finds it gone and leaves its incidents alone."""
    from incman.outbox.sender import send_task
    from incman.store.catalog import catalog_cache
    from workers.tasks import poll_notification_task

    client = stack.client
    name = unique("doomed")
    trigger = {"id": name, "when": {"device": {"_m": f"^{name}-"}}}
    assert client.session.post(f"{client.base}/api/v1/triggers", json=trigger).status_code == 201
    notification = {"id": name, "integration": "debug", "triggers": [name], "cycletime": 1}
    resp = client.session.post(f"{client.base}/api/v1/notifications", json=notification)
    assert resp.status_code == 201, resp.text
    event_id = send(client, f"{name}-db01")["eventId"]
    number = incident_of(client, event_id)["incident"]
    set_remote(number, state="resolved")  # something the poller would act on
    assert client.session.delete(f"{client.base}/api/v1/notifications/{name}").status_code == 204

    catalog_cache.invalidate()
    result = poll_notification_task(name)
    assert result["skipped"] == "notification not found"
    inc = client.get("/api/v1/incidents", params={"eventId": event_id}).json()["items"][0]
    assert inc["state"] == "OPEN"  # left alone: nothing to poll it with

    worker = stack.workers[0]

    def polled_in_the_worker() -> bool:
        send_task("incman.poll_notification", [name], queue="poll")  # what beat's tick sends
        lines = worker.output().splitlines()
        return any(name in line and "notification not found" in line for line in lines)

    wait_for(polled_in_the_worker, interval=0.5, what="the worker's poll of the deleted one")
    assert not [
        line
        for line in worker.output().splitlines()
        if "poll_notification" in line and "raised" in line
    ]
    # (a worker whose catalog is a few seconds old may poll it once more: harmless)
    assert client.get(f"/api/v1/events/{event_id}").json()["status"] == "New"


def test_a_notification_deleted_while_its_incidents_are_polled(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 000, 2.9.4, the other way round: the notification goes while its poll is under
    way (between two status reads). The poll finishes without an error, applies what it read,
    and the next one finds the notification gone and leaves the incidents alone."""
    from incman.store.catalog import catalog_cache
    from incman.sync import poll

    client = stack.client
    name = unique("going")
    trigger = {"id": name, "when": {"device": {"_m": f"^{name}-"}}}
    assert client.session.post(f"{client.base}/api/v1/triggers", json=trigger).status_code == 201
    notification = {"id": name, "integration": "debug", "triggers": [name], "cycletime": 3600}
    assert client.session.post(f"{client.base}/api/v1/notifications", json=notification).ok
    events = [send(client, f"{name}-{n}")["eventId"] for n in range(3)]
    numbers = [incident_of(client, e)["incident"] for e in events]
    for number in numbers:
        set_remote(number, state="resolved")
    catalog_cache.invalidate()
    real = poll.make_plugin

    def deleted_on_first_read(notif: Any) -> Any:
        plugin = real(notif)
        read = plugin.get_status

        def get_status(refs: Any) -> Any:
            found = read(refs)
            client.session.delete(f"{client.base}/api/v1/notifications/{name}")
            return found

        plugin.get_status = get_status  # type: ignore[method-assign]
        return plugin

    monkeypatch.setattr(poll, "BATCH", 2)  # two status reads: the deletion falls between
    monkeypatch.setattr(poll, "make_plugin", deleted_on_first_read)
    result = poll.poll_notification(name)
    assert "error" not in result and result["polled"] == 3 and result["requests"] == 2
    assert client.get(f"/api/v1/notifications/{name}").status_code == 404
    catalog_cache.invalidate()
    assert poll.poll_notification(name)["skipped"] == "notification not found"
