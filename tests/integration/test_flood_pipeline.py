"""Flood control through the real pipeline against the ServiceNow simulator: a 429 storm
and an outage that opens the circuit breaker are absorbed with no lost action, no duplicate
ticket, and no call to the remote while it asked everyone to wait."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Client, unique, wait_for
from sqlalchemy import select

from incman.store.db import session_scope
from incman.store.models import Action, EventIncident, Incident
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimControl, SimServer

PASSWORD = "Fl00d-Pa55-4b2a"


SLOTS = 4  # the worker's concurrency: calls that may be past the guard at any moment


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(ServiceNowSim(password=PASSWORD)) as server:
        yield SimControl(server.url)


@pytest.fixture(scope="module")
def client(make_stack: Any, sim: SimControl) -> Client:
    config = {
        "triggers": [{"id": "flood", "when": {"device": {"_m": "^flood-"}}}],
        "notifications": [
            {
                "id": "snow-flood",
                "integration": "servicenow",
                "triggers": ["flood"],
                "config": {
                    "url": sim.url,
                    "username": "incman",
                    "password": PASSWORD,
                    "timeout": 5,
                    "breaker_failures": 3,
                    "breaker_cooldown": 1.5,
                },
            }
        ],
    }
    return make_stack(config, concurrency=SLOTS).client


def send_all(client: Client, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        resp = client.post(
            "/api/v1/events",
            {"device": unique("flood"), "component": "app", "severity": 5, "summary": "down"},
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["eventId"])
    return ids


def all_created(event_ids: list[str]) -> list[str] | None:
    """The correlation keys once every event's create action is done."""
    with session_scope() as session:
        statuses = list(
            session.scalars(select(Action.status).where(Action.event_id.in_(event_ids)))
        )
        if statuses != ["done"] * len(event_ids):
            assert "dead" not in statuses, statuses
            return None
        return list(
            session.scalars(
                select(Incident.correlation_key)
                .join(EventIncident, EventIncident.incident_id == Incident.id)
                .where(EventIncident.event_id.in_(event_ids))
            )
        )


def remote_calls(sim: SimControl, since: float) -> list[dict[str, Any]]:
    return sorted((r for r in sim.requests() if r["at"] >= since), key=lambda r: r["at"])


def assert_exactly_once(sim: SimControl, keys: list[str]) -> None:
    remote = [r["correlation_id"] for r in sim.state()["incidents"]]
    for key in keys:
        assert remote.count(key) == 1, key


def quiet_after(calls: list[dict[str, Any]], at: float, start: float, end: float) -> bool:
    """The remote was quiet between `at + start` and `at + end` seconds: no call but the
    ones already past the guard when the call at `at` failed (fewer than SLOTS; on a busy
    machine they may land late, so their number, not their time, is what is bounded)."""
    return len([c for c in calls if at + start < c["at"] < at + end]) < SLOTS


def test_a_429_storm_pauses_every_worker_and_loses_nothing(client: Client, sim: SimControl) -> None:
    since = time.time()
    sim.fault("429", count=4, retry_after=1)
    events = send_all(client, 20)
    keys = wait_for(lambda: all_created(events), timeout=60, what="20 incidents")
    assert len(keys) == 20
    assert_exactly_once(sim, keys)
    calls = remote_calls(sim, since)
    storms = [c["at"] for c in calls if c["fault"] == "429"]
    assert len(storms) == 4
    for at in storms:
        # calls already past the guard may land just after a 429; then the remote is quiet
        assert quiet_after(calls, at, 0.3, 0.9), (at, calls)


def test_an_outage_opens_the_breaker_then_probes_one_call_at_a_time(
    client: Client, sim: SimControl
) -> None:
    since = time.time()
    sim.fault("500", count=6)
    events = send_all(client, 8)
    keys = wait_for(lambda: all_created(events), timeout=60, what="8 incidents")
    assert_exactly_once(sim, keys)
    calls = remote_calls(sim, since)
    failures = [c["at"] for c in calls if c["fault"] == "500"]
    assert len(failures) == 6
    opened = failures[2]  # the third consecutive failure opens it for 1.5 s
    assert quiet_after(calls, opened, 0.3, 1.4), calls
    # then one probe per cool-down: the failures left come one by one, 1.5 s apart
    probes = [at for at in failures if at > opened + 0.3]
    assert probes, calls
    assert all(b - a > 1.4 for a, b in itertools.pairwise(probes)), probes
