"""Suppression for real: a flood of creations through the API and a worker is held back past
the threshold, visible on the events, in /metrics, and raises one suppression event."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Client, unique, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from incman.store.db import session_scope
from incman.store.models import Action, Event, Incident

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "supp-devices", "when": {"device": {"_m": "^supp-"}}}],
    "notifications": [
        {
            "id": "debug-supp",
            "integration": "debug",
            "triggers": ["supp-devices"],
            "suppression": {"threshold_num": 3},
        },
    ],
    "suppression": {
        "threshold_num": 100,
        "threshold_secs": 60,
        "dedup_format": "device|component|severity",
    },
    # the seed's zNotificationSuppression* are the device's own: they win over both
    "devices": [
        {"id": "supp-strict", "suppression": {"threshold_num": 1}},
        {"id": "supp-free", "zNotificationSuppressionThresholdNum": -1},
    ],
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    return make_stack(CONFIG, concurrency=4).client


def send(client: Client, device: str, component: str, key: str) -> str:
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": component,
            "eventClass": "/Perf/Disk",
            "eventKey": key,
            "severity": 5,
            "summary": f"{component} {key}",
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["eventId"])


def finished_actions(event_ids: list[str]) -> list[Action] | None:
    with session_scope() as session:
        rows = list(session.scalars(select(Action).where(Action.event_id.in_(event_ids))))
    if len(rows) == len(event_ids) and all(r.status not in ("pending", "running") for r in rows):
        return rows
    return None


def suppressed_total(client: Client, notification: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if (
                sample.name == "incman_suppressed_creations_total"
                and sample.labels.get("notification") == notification
            ):
                return sample.value
    return 0.0


def test_flood_beyond_the_threshold_is_suppressed_once_per_key(client: Client) -> None:
    device = unique("supp")
    before = suppressed_total(client, "debug-supp")
    ids = [send(client, device, "disk", f"k{n}") for n in range(7)]
    actions = wait_for(lambda: finished_actions(ids), what="every create handled")
    outcomes = sorted(a.status for a in actions)
    assert outcomes == ["done"] * 3 + ["suppressed"] * 4

    with session_scope() as session:
        events = list(session.scalars(select(Event).where(Event.id.in_(ids))))
        incidents = list(
            session.scalars(
                select(Incident).where(
                    Incident.notification_id == "debug-supp",
                    Incident.dedupid.in_([e.dedupid for e in events]),
                )
            )
        )
        flood_events = list(
            session.scalars(
                select(Event).where(
                    Event.event_class == "/App/Incman/Suppression",
                    Event.component == "debug-supp",
                    Event.event_key == f"{device}|disk|5",
                )
            )
        )
    assert len(incidents) == 3
    held_back = [e for e in events if e.suppressed_by == "debug-supp"]
    assert len(held_back) == 4
    assert not {e.dedupid for e in held_back} & {i.dedupid for i in incidents}
    for event in held_back:
        shown = client.get(f"/api/v1/events/{event.id}").json()
        assert shown["suppressedBy"] == "debug-supp"
        assert shown["incident"] is None
    # one suppression event for the flood, not one per suppressed event
    assert len(flood_events) == 1 and flood_events[0].count == 1
    assert "more than 3 within 60s" in flood_events[0].summary
    assert suppressed_total(client, "debug-supp") == before + 4

    # another key (component) has a window of its own
    other = send(client, device, "cpu", "k0")
    wait_for(lambda: finished_actions([other]), what="the other key's create")
    assert finished_actions([other])[0].status == "done"  # type: ignore[index]


def test_a_devices_own_settings_win(client: Client) -> None:
    """Seed 000: zNotificationSuppressionThresholdNum/-Secs/-DedupFormat are properties of
    the device; in incman the device inventory's settings lie over the notification's (3)
    and the global ones (100). supp-strict allows 1, supp-free turns suppression off."""
    component = unique("disk")
    strict = [send(client, "supp-strict", component, f"k{n}") for n in range(3)]
    free = [send(client, "supp-free", component, f"k{n}") for n in range(5)]
    strict_done = wait_for(lambda: finished_actions(strict), what="supp-strict's creates")
    free_done = wait_for(lambda: finished_actions(free), what="supp-free's creates")
    assert sorted(a.status for a in strict_done) == ["done", "suppressed", "suppressed"]
    assert [a.status for a in free_done] == ["done"] * 5
