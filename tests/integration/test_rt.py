"""Request Tracker 5 for real: a private RT instance, the plugin, and the whole lifecycle
through the pipeline (API → worker on itsm.rt → RT REST2 → poll → events).

`make test-rt` installs RT (deploy/install-rt.sh) and runs this module; without RT installed
the tests here are skipped, saying so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, send_disk_event, unique, wait_for

from incman.integrations import rt as rt_module
from incman.integrations.base import RemoteIncident
from incman.integrations.errors import PermanentError
from incman.integrations.rt import RTIntegration
from incman.sync.poll import poll_notification
from incman.testing.rt_server import RT_SERVER, RTServer, rt_installed

MISSING = (
    f"Request Tracker 5 is not installed ({RT_SERVER} is absent): `make test-rt` "
    "installs it and runs these tests"
)
REQUIRED = os.environ.get("INCMAN_REQUIRE_RT") == "1"  # set by `make test-rt`
needs_rt = pytest.mark.skipif(not rt_installed() and not REQUIRED, reason=MISSING)


# -- against a real RT ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rt() -> Iterator[RTServer]:
    if not rt_installed():
        if REQUIRED:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with RTServer() as server:
        yield server


@pytest.fixture(scope="module")
def token(rt: RTServer) -> str:
    return rt.mint_token()


def get(rt: RTServer, path: str, **params: Any) -> Any:
    resp = requests.get(f"{rt.rest}/{path}", auth=rt.auth, params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()


def put(rt: RTServer, path: str, body: dict[str, Any]) -> Any:
    resp = requests.put(f"{rt.rest}/{path}", auth=rt.auth, json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()


def comments(rt: RTServer, ticket_id: str) -> int:
    items = get(rt, f"ticket/{ticket_id}/history", fields="Type", per_page=100)["items"]
    return sum(item["Type"] == "Comment" for item in items)


def correlation_value(rt: RTServer, ticket_id: str) -> list[str]:
    fields = get(rt, f"ticket/{ticket_id}")["CustomFields"]
    return [v for cf in fields if cf["name"] == "IncidentID" for v in cf["values"]]


@needs_rt
def test_plugin_create_find_status_with_basic_auth(rt: RTServer, monkeypatch: Any) -> None:
    plugin = RTIntegration({"url": rt.url, "username": "root", "password": "password"})
    ref = plugin.create({"Subject": "Disk full", "Content": "details"}, "key-basic")
    assert correlation_value(rt, ref.remote_id) == ["key-basic"]
    assert ref.url == f"{rt.url}/Ticket/Display.html?id={ref.remote_id}"
    assert (ref.state, ref.remote_state) == ("OPEN", "new")
    found = plugin.find("key-basic")
    assert found is not None and found.remote_id == ref.remote_id
    assert plugin.find("key-nothing") is None

    others = [plugin.create({"Subject": f"t{n}"}, f"key-b{n}") for n in range(3)]
    put(rt, f"ticket/{others[0].remote_id}", {"Status": "resolved"})
    put(rt, f"ticket/{others[1].remote_id}", {"Status": "deleted"})  # hidden from searches
    put(rt, f"ticket/{others[2].remote_id}/take", {})
    monkeypatch.setattr(rt_module, "BATCH", 2)
    missing = RemoteIncident(remote_id="99999", number="99999")
    states = plugin.get_status([ref, *others, missing])
    assert {k: v.state for k, v in states.items()} == {
        ref.remote_id: "OPEN",
        others[0].remote_id: "RESOLVED",
        others[1].remote_id: "CLOSED",
        others[2].remote_id: "ASSIGNED",
    }
    assert states[others[2].remote_id].assignee == "root"


@needs_rt
def test_a_missing_custom_field_is_a_clear_permanent_error(rt: RTServer, token: str) -> None:
    rt.create_queue("NoCorrelation")
    plugin = RTIntegration({"url": rt.url, "token": token, "queue": "NoCorrelation"})
    with pytest.raises(
        PermanentError, match="'IncidentID' must exist and apply to queue 'NoCorrelation'"
    ) as caught:
        plugin.create({"Subject": "orphan"}, "key-orphan")
    ticket_id = str(caught.value).split("ticket ")[1].split(" ")[0]
    assert get(rt, f"ticket/{ticket_id}")["Status"] == "rejected"


@needs_rt
def test_refusals_in_200_answers_are_errors(rt: RTServer, token: str) -> None:
    plugin = RTIntegration({"url": rt.url, "token": token})
    ref = plugin.create({"Subject": "refusals"}, unique("key"))
    with pytest.raises(PermanentError, match="isn't a valid status"):
        plugin.update(ref, {"Status": "bogus"})
    requests.post(
        f"{rt.rest}/user", auth=rt.auth, timeout=30, json={"Name": "norights", "Privileged": 1}
    ).raise_for_status()
    with pytest.raises(PermanentError, match="may not own tickets"):
        plugin.assign(ref, "norights")
    with pytest.raises(PermanentError, match="HTTP 401"):
        RTIntegration({"url": rt.url, "token": "1-2-wrong"}).find("x")


# -- the pipeline -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(make_stack: Any, rt: RTServer, token: str) -> Any:
    config = {
        "triggers": [{"id": "rt-devices", "when": {"device": {"_m": "^rt-"}}}],
        "notifications": [
            {
                "id": "rt-ops",
                "integration": "rt",
                "triggers": ["rt-devices"],
                "options": {"initial_occurrence_only": False, "close_event_on_resolve": True},
                "config": {"url": rt.url, "token": "${env:RT_TEST_TOKEN}", "queue": "General"},
                "field_mapping": "Subject, ${evt/summary} on ${dev/titleOrId}",
            }
        ],
        "devices": [{"id": "rt-db01", "title": "Primary database"}],
    }
    return make_stack(
        config, queues="ingest,poll,maintenance,itsm.rt", extra_env={"RT_TEST_TOKEN": token}
    )


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


@needs_rt
def test_the_whole_lifecycle_on_a_real_rt(
    client: Client, rt: RTServer, stack: Any, token: str
) -> None:
    event_id = send_disk_event(client, "rt-db01")
    ev = wait_for(
        lambda: (e := client.get(f"/api/v1/events/{event_id}").json())["incident"] and e,
        timeout=60,
        what="the RT ticket",
    )
    ticket_id = ev["incident"]
    incident = client.get(f"/api/v1/incidents/{ev['incidents'][0]['id']}").json()
    ticket = get(rt, f"ticket/{ticket_id}")
    assert ticket["Subject"] == "Disk full on Primary database"
    assert correlation_value(rt, ticket_id) == [incident["correlationKey"]]
    assert ev["incidentUrl"] == f"{rt.url}/Ticket/Display.html?id={ticket_id}"
    assert len(get(rt, "tickets", query="Subject LIKE 'Disk full on Primary'")["items"]) == 1

    send_disk_event(client, "rt-db01")  # re-occurrence → a comment
    wait_for(lambda: comments(rt, ticket_id) == 1, timeout=60, what="the re-occurrence comment")

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(
        lambda: get(rt, f"ticket/{ticket_id}")["Owner"]["id"] == "root",
        timeout=60,
        what="the ticket taken",
    )

    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(
        lambda: get(rt, f"ticket/{ticket_id}")["Status"] == "resolved",
        timeout=60,
        what="the ticket resolved",
    )
    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_for(
        lambda: get(rt, f"ticket/{ticket_id}")["Status"] == "open",
        timeout=60,
        what="the ticket re-opened",
    )

    # Someone resolves it in RT; the poller brings that back onto the event.
    put(rt, f"ticket/{ticket_id}", {"Status": "resolved"})
    result = poll_notification("rt-ops")
    assert result["polled"] >= 1 and result["changed"] >= 1, result
    ev = client.get(f"/api/v1/events/{event_id}").json()
    assert ev["status"] == "Closed"
    assert ev["incidents"][0]["state"] == "RESOLVED"

    logs = "".join(w.output() for w in stack.workers) + stack.api.output()
    assert token not in logs
    assert token not in client.get("/api/v1/notifications/rt-ops").text
