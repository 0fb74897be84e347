"""Slack through the real pipeline (API → PostgreSQL → Celery worker → Slack simulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Client, unique, wait_for
from sqlalchemy import select

from incman.store.db import session_scope
from incman.store.models import Action
from incman.testing.simbase import SimServer
from incman.testing.slack_sim import SlackSim

TOKEN = "xoxb-pipeline-secret-4711"
CHANNEL = "C0INCMAN1"
UPDATE_TEMPLATE = "Now ${evt/count}x, ${evt/status}, ${python: mappingUtils.getSevString(evt)}"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackSim]:
    app = SlackSim(token=TOKEN)
    with SimServer(app):
        yield app


@pytest.fixture(scope="module")
def stack(make_stack: Any, slack: SlackSim) -> Any:
    config = {
        "triggers": [{"id": "slack-devices", "when": {"device": {"_m": "^slack-"}}}],
        "notifications": [
            {
                "id": "slack-ops",
                "integration": "slack",
                "triggers": ["slack-devices"],
                "options": {
                    "initial_occurrence_only": False,
                    "send_clear": True,
                    "one_incident_per_event": False,
                },
                "config": {
                    "api_url": slack.api_url,
                    "token": "${env:SLACK_TEST_TOKEN}",
                    "channel": CHANNEL,
                    "close_template": "Resolved: ${evt/summary} on ${dev/titleOrId}",
                    "update_template": UPDATE_TEMPLATE,
                },
                "field_mapping": "text, ${evt/summary} on ${dev/titleOrId} (${urls/eventUrl})",
            }
        ],
        "devices": [{"id": "slack-db01", "title": "Primary database"}],
    }
    return make_stack(config, extra_env={"SLACK_TEST_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def send(client: Client, device: str, severity: int = 5) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/events",
        {
            "device": device,
            "component": "disk",
            "eventClass": "/Perf",
            "severity": severity,
            "summary": "Disk full",
        },
    )
    assert resp.status_code in (200, 201), resp.text
    return dict(resp.json())


def parent(slack: SlackSim, ts: str) -> dict[str, Any]:
    with slack.lock:
        messages = slack.state()["channels"][CHANNEL]["messages"]
    return next(m for m in messages if m["ts"] == ts)


def replies(slack: SlackSim, ts: str) -> list[str]:
    return [r["text"] for r in parent(slack, ts)["replies"]]


def finished(event_id: str, kind: str) -> list[Action]:
    with session_scope() as session:
        rows = list(
            session.scalars(select(Action).where(Action.event_id == event_id, Action.kind == kind))
        )
    return rows if rows and all(a.status in ("done", "skipped", "dead") for a in rows) else []


def test_the_whole_lifecycle_in_one_thread(client: Client, slack: SlackSim, stack: Any) -> None:
    event = send(client, "slack-db01")
    event_id = event["eventId"]
    ev = wait_for(
        lambda: (e := client.get(f"/api/v1/events/{event_id}").json())["incident"] and e,
        what="the Slack message",
    )
    ts = ev["incident"]
    message = parent(slack, ts)
    assert message["text"].startswith("Disk full on Primary database (http")
    assert message["text"].endswith(f"/console/events/{event_id})")
    assert message["metadata"]["event_type"] == "incman_incident"
    assert requests.get(ev["incidentUrl"], timeout=5).json()["message"]["ts"] == ts

    send(client, "slack-db01")  # re-occurrence → a thread reply, and the update template
    wait_for(
        lambda: any("occurred again" in r for r in replies(slack, ts)),
        what="the re-occurrence reply",
    )
    wait_for(lambda: finished(event_id, "update"), what="the update action")
    assert "Now 2x, New, Critical" in replies(slack, ts)

    assert client.post(f"/api/v1/events/{event_id}/acknowledge").status_code == 200
    wait_for(
        lambda: parent(slack, ts)["text"].endswith("Assigned to tester"),
        what="the assignment on the parent",
    )

    send(client, "slack-db01", severity=0)  # clear → close (Send Clear)
    wait_for(
        lambda: parent(slack, ts)["text"] == "Resolved: Disk full on Primary database",
        what="the closed parent",
    )
    # Closing the cleared event as well must not say "closed" a second time.
    assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: finished(event_id, "close"), what="the close action")
    closing = [r for r in replies(slack, ts) if "clear" in r.lower() or "closed" in r.lower()]
    assert len(closing) == 1, replies(slack, ts)
    assert len(slack.state()["channels"][CHANNEL]["messages"]) == 1

    assert client.post(f"/api/v1/events/{event_id}/reopen").status_code == 200
    wait_for(
        lambda: parent(slack, ts)["metadata"]["event_payload"]["state"] == "open",
        what="the re-opened parent",
    )
    assert parent(slack, ts)["text"].startswith(":repeat: *Re-opened*: Disk full")
    assert sum("re-opened" in r for r in replies(slack, ts)) == 1


def test_a_new_event_after_close_opens_a_new_message(client: Client, slack: SlackSim) -> None:
    device = unique("slack")
    first_id = send(client, device)["eventId"]
    first = wait_for(
        lambda: client.get(f"/api/v1/events/{first_id}").json()["incident"],
        what="the first message",
    )
    send(client, device, severity=0)
    wait_for(
        lambda: parent(slack, first)["metadata"]["event_payload"]["state"] == "closed",
        what="the first message closed",
    )
    second_id = send(client, device)["eventId"]
    second = wait_for(
        lambda: client.get(f"/api/v1/events/{second_id}").json()["incident"],
        what="the second message",
    )
    assert second != first


def test_the_token_stays_out_of_logs_and_answers(client: Client, stack: Any) -> None:
    worker_log = "".join(w.output() for w in stack.workers)
    assert "slack" in worker_log and TOKEN not in worker_log
    assert TOKEN not in stack.api.output()
    for path in ("/api/v1/notifications/slack-ops", "/api/v1/incidents", "/api/v1/events"):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.text)
        assert TOKEN not in resp.text


def test_a_clear_updates_an_incident_that_stays_open(client: Client, slack: SlackSim) -> None:
    """Send Clear, "update the incident when the event clears": one incident for two events
    (made by hand); the first clear updates it with the cleared event, the second closes it
    and no update is sent for what the close already says."""
    first, second = unique("manual-a"), unique("manual-b")
    ids = [send(client, first, severity=4)["eventId"], send(client, second)["eventId"]]
    made = client.post("/api/v1/incidents", {"eventIds": ids, "notificationId": "slack-ops"})
    assert made.status_code == 201, made.text
    ts = made.json()["items"][0]["number"]

    send(client, first, severity=0)
    wait_for(lambda: finished(ids[0], "update"), what="the update after the first clear")
    assert replies(slack, ts).count("Now 1x, Cleared, Error") == 1
    assert parent(slack, ts)["metadata"]["event_payload"]["state"] == "open"

    send(client, second, severity=0)
    wait_for(
        lambda: parent(slack, ts)["metadata"]["event_payload"]["state"] == "closed",
        what="the incident closed by the last clear",
    )
    wait_for(lambda: finished(ids[1], "update"), what="the second clear's update decided")
    with session_scope() as session:
        kinds = {
            a.event_id: a.status
            for a in session.scalars(select(Action).where(Action.kind == "update"))
            if a.event_id in ids
        }
    assert kinds == {ids[0]: "done", ids[1]: "skipped"}
    assert [r for r in replies(slack, ts) if r.startswith("Now")] == ["Now 1x, Cleared, Error"]
