"""The egress policy and the remote's error text through the real pipeline: a notification
aimed at the cloud metadata address dead-letters at once as a configuration error, and what
a remote answers to a refused call reaches managers only (never the failure event a viewer
reads, never an operator's dead letter)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import API_KEY, Client, unique, wait_for

from incman.testing.http_sim import HttpSim
from incman.testing.simbase import SimServer

KEYS = (
    f"tester:admin:{API_KEY},feeder:ingest:ingest-key,look:viewer:viewer-key,"
    "op:operator:operator-key,boss:manager:manager-key"
)
REMOTE_TEXT = "Not authenticated"  # what the simulator answers a wrong token


@pytest.fixture(scope="module")
def sim() -> Iterator[HttpSim]:
    app = HttpSim(token="the-right-token")
    with SimServer(app):
        yield app


def _http(ident: str, url: str, token: str) -> dict[str, Any]:
    return {
        "id": ident,
        "integration": "http",
        "triggers": [ident],
        "config": {"url": url, "headers": {"Authorization": f"Bearer {token}"}},
    }


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: HttpSim) -> Any:
    config = {
        "triggers": [
            {"id": "egress-metadata", "when": {"device": {"_m": "^egress-metadata-"}}},
            {"id": "egress-refused", "when": {"device": {"_m": "^egress-refused-"}}},
        ],
        "notifications": [
            _http("egress-metadata", "http://169.254.169.254/latest/meta-data", "x"),
            _http("egress-refused", f"{sim.base_url}/incidents", "a-wrong-token"),
        ],
    }
    return make_stack(config, extra_env={"INCMAN_API_KEYS": KEYS})


def _dead(client: Client, notification: str, event_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = client.get("/api/v1/dead-letter", params={"notificationId": notification})
        return next((i for i in items.json()["items"] if i["eventId"] == event_id), None)

    return wait_for(found, what=f"the dead {notification} action")  # type: ignore[no-any-return]


def _failure_events(client: Client, notification: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/events", params={"device": "incman", "component": notification})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_the_metadata_address_is_refused_as_a_configuration_error(stack: Any) -> None:
    admin = stack.client
    event_id = admin.post(
        "/api/v1/events", {"device": unique("egress-metadata"), "severity": 5, "summary": "x"}
    ).json()["eventId"]
    dead = _dead(admin, "egress-metadata", event_id)
    assert dead["attempts"] == 1  # permanent: never retried
    assert dead["lastError"] == "refused by the egress policy (INCMAN_EGRESS_ALLOW)"
    assert "169.254.169.254 is 169.254.169.254 (link-local" in dead["errorDetail"]
    assert "INCMAN_EGRESS_ALLOW" in dead["errorDetail"]
    failures = wait_for(lambda: _failure_events(admin, "egress-metadata"), what="a failure")
    assert "refused by the egress policy" in failures[0]["summary"]
    assert "169.254" not in str(failures[0])  # where it points: for managers


def test_the_remote_text_reaches_managers_only(stack: Any, sim: HttpSim) -> None:
    admin = stack.client
    event_id = admin.post(
        "/api/v1/events", {"device": unique("egress-refused"), "severity": 5, "summary": "x"}
    ).json()["eventId"]
    dead = _dead(admin, "egress-refused", event_id)
    assert dead["lastError"] == "the remote system answered HTTP 401 (a refusal)"
    assert "HTTP 401" in dead["errorDetail"] and REMOTE_TEXT in dead["errorDetail"]
    assert any(r["path"] == "/incidents" for r in sim.requests)  # loopback: allowed (tests)

    viewer = Client(stack.url, "viewer-key")
    failures = wait_for(lambda: _failure_events(viewer, "egress-refused"), what="a failure")
    assert failures[0]["summary"].startswith(
        "Notification egress-refused failed to create: the remote system answered HTTP 401"
    )
    assert REMOTE_TEXT not in str(failures)
    assert REMOTE_TEXT not in viewer.get(f"/api/v1/events/{failures[0]['eventId']}").text

    operator = Client(stack.url, "operator-key")
    listed = operator.get("/api/v1/dead-letter", params={"notificationId": "egress-refused"})
    assert listed.status_code == 200
    assert REMOTE_TEXT not in listed.text
    assert all("errorDetail" not in item for item in listed.json()["items"])
    manager = Client(stack.url, "manager-key")
    listed = manager.get("/api/v1/dead-letter", params={"notificationId": "egress-refused"})
    assert all(REMOTE_TEXT in item["errorDetail"] for item in listed.json()["items"])
