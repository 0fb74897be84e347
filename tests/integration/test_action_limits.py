"""Limits on actions and what they keep: an action the remote's rate limit keeps deferring is
dead-lettered after INCMAN_ACTION_MAX_WAIT, a huge integer from a mapping is a mapping error,
and secrets of notifications created over the API are encrypted at rest yet still work."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from helpers import Client, send_disk_event, unique, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from incman.store.db import session_scope
from incman.testing.http_sim import HttpSim
from incman.testing.procs import start_api, start_worker
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "Sn0w-at-rest-5e1f0a"
HUGE = "*".join(["(999999 ** 100)"] * 8)  # 4,800 digits


@pytest.fixture(scope="module")
def http_sim() -> Iterator[HttpSim]:
    app = HttpSim(token=None)
    with SimServer(app):
        yield app


@pytest.fixture(scope="module")
def snow() -> Iterator[SimControl]:
    with SimServer(ServiceNowSim(password=PASSWORD)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def stack(make_stack: Any, http_sim: HttpSim) -> Any:
    base = http_sim.base_url
    config = {
        "triggers": [
            {"id": "limited", "when": {"device": {"_m": "^limited-"}}},
            {"id": "digits", "when": {"device": {"_m": "^digits-"}}},
            {"id": "snow", "when": {"device": {"_m": "^atrest-"}}},
        ],
        "notifications": [
            {
                "id": "limited",
                "integration": "http",
                "triggers": ["limited"],
                # Two calls (a find and a create), then one per 1,000 s: the second create waits.
                "config": {
                    "url": f"{base}/incidents",
                    "body": {"create": {"title": "${evt/summary}", "key": "${correlationKey}"}},
                    "number_path": "number",
                    "find_url": base + "/incidents?correlationKey=${correlationKey}",
                    "find_path": "items[0]",
                    "rate_limit": 0.001,
                    "rate_burst": 2,
                },
            },
            {
                "id": "digits",
                "integration": "debug",
                "triggers": ["digits"],
                "field_mapping": f"big, ${{python: {HUGE}}}",
            },
        ],
    }
    return make_stack(config, extra_env={"INCMAN_ACTION_MAX_WAIT": "3"})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def dead_of(client: Client, notification: str) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/dead-letter", params={"notificationId": notification})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def metric(client: Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_an_action_deferred_past_the_bound_is_dead_lettered(client: Client) -> None:
    first = send_disk_event(client, unique("limited"))
    wait_for(lambda: client.get(f"/api/v1/events/{first}").json().get("incident"))
    second = send_disk_event(client, unique("limited"))
    dead = wait_for(
        lambda: [a for a in dead_of(client, "limited") if a["eventId"] == second],
        timeout=90,
        what="the deferred create in the dead letter",
    )
    assert "INCMAN_ACTION_MAX_WAIT (3s)" in dead[0]["lastError"], dead
    assert "rate limit" in dead[0]["lastError"]
    assert metric(client, "incman_action_deferrals_total", integration="http") >= 1
    failure = client.get("/api/v1/events", params={"eventClass": "/App/Incman/Failure"})
    assert any(
        "INCMAN_ACTION_MAX_WAIT" in ev["summary"] + json.dumps(ev.get("details", {}))
        for ev in failure.json()["items"]
    )


def test_an_integer_of_thousands_of_digits_is_a_mapping_error(client: Client) -> None:
    event_id = send_disk_event(client, unique("digits"))
    dead = wait_for(
        lambda: [a for a in dead_of(client, "digits") if a["eventId"] == event_id],
        timeout=60,
        what="the create in the dead letter",
    )
    error = dead[0]["lastError"]
    assert "internal error" not in error
    assert "field 'big'" in error and "more than 4300 digits" in error, error


def snow_notification(nid: str, url: str, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "id": nid,
        "integration": "servicenow",
        "triggers": ["snow"],
        "config": {"url": url, "username": "incman", "password": password, "timeout": 5},
    }


def raw_definition(nid: str) -> str:
    with session_scope() as session:
        row = session.execute(
            text("SELECT CAST(definition AS TEXT) FROM notifications WHERE id = :id"), {"id": nid}
        ).scalar_one()
    return str(row)


made_here: list[str] = []  # notifications this module made over the API, deleted at its end


def test_secrets_created_over_the_api_are_encrypted_at_rest(
    client: Client, stack: Any, snow: SimControl
) -> None:
    nid = unique("snow-at-rest")
    made_here.append(nid)
    created = client.post("/api/v1/notifications", snow_notification(nid, snow.url))
    assert created.status_code == 201, created.text
    stored = raw_definition(nid)
    assert PASSWORD not in stored
    assert '"password": "fernet:' in stored
    # An edit that leaves the secret out keeps it, still encrypted.
    edit = snow_notification(nid, snow.url)
    del edit["config"]["password"]
    assert client.session.put(f"{client.base}/api/v1/notifications/{nid}", json=edit, timeout=30).ok
    assert PASSWORD not in raw_definition(nid)
    # The worker opens it and authenticates to the simulator.
    event_id = send_disk_event(client, unique("atrest"))
    ev = wait_for(
        lambda: client.get(f"/api/v1/events/{event_id}").json().get("incident"),
        timeout=60,
        what="the ServiceNow incident",
    )
    assert ev.startswith("INC")
    assert dead_of(client, nid) == []


def test_no_key_no_start_and_rotation(client: Client, stack: Any, tmp_path: Any) -> None:
    nid = unique("snow-rotate")
    assert client.post("/api/v1/notifications", snow_notification(nid, "http://127.0.0.1:9")).ok
    without = {k: v for k, v in stack.env.items() if k != "INCMAN_SECRETS_KEY"}
    with pytest.raises(RuntimeError) as refused:
        start_api(without, tmp_path)
    assert "INCMAN_SECRETS_KEY" in str(refused.value)
    with pytest.raises(RuntimeError) as refused:
        start_worker(without, tmp_path, "itsm.servicenow", concurrency=1)
    assert "INCMAN_SECRETS_KEY" in str(refused.value)
    old = stack.env["INCMAN_SECRETS_KEY"]
    new = Fernet.generate_key().decode()
    try:
        rotated = rotate_to(stack, f"{new},{old}")
        assert "re-encrypted" in rotated
        token = json.loads(raw_definition(nid))["config"]["password"].removeprefix("fernet:")
        assert json.loads(Fernet(new.encode()).decrypt(token.encode())) == PASSWORD
        with pytest.raises(InvalidToken):  # the old key alone no longer opens it
            Fernet(old.encode()).decrypt(token.encode())
    finally:
        rotate_to(stack, f"{old},{new}")  # the database is the session's: leave it as found
        for ident in (nid, *made_here):
            client.session.delete(f"{client.base}/api/v1/notifications/{ident}", timeout=30)


def rotate_to(stack: Any, keys: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "incman.cli", "secrets", "rotate"],
        env={**stack.env, "INCMAN_SECRETS_KEY": keys},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
