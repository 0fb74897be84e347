"""Seed 004's ITSM Events API for real, beyond matching (test_api_formats): the default team
from the configuration's `itsm:` directory, request templates, the whole response body,
`waiting_until` (beat's wake-up, with a controllable clock and through a real worker), and
requests without a device, which suppression never holds back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from helpers import API_KEY, Client, unique, wait_for
from sqlalchemy import select

from incman.domain.formats.itsm_request import iso
from incman.ingest.itsm_requests import wake_waiting_requests
from incman.store.db import session_scope
from incman.store.itsm_models import ItsmRequest
from incman.store.models import Action, Event, utcnow

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "requests", "when": {"eventClass": {"_eq": "/ITSM/Request"}}}],
    "notifications": [
        {
            "id": "itsm-debug",
            "integration": "debug",
            "triggers": ["requests"],
            # one creation per source and severity within an hour...
            "suppression": {
                "threshold_num": 1,
                "threshold_secs": 3600,
                "dedup_format": "source|severity",
            },
        }
    ],
    "devices": [{"id": "rack-ci-1", "service_instance": "Data Center Rack Space"}],
    "itsm": {
        "teams": [
            {"id": 13, "name": "Unix Servers", "members": ["carla@widget.example"]},
            {"id": 20, "name": "Data Center", "members": ["feeder"]},
            {"id": 21, "name": "Rack Support"},
            {"id": 7, "name": "Service Desk"},
        ],
        "service_instances": [
            {
                "id": 29,
                "name": "Data Center Rack Space",
                "first_line_team": "Data Center",
                "support_team": "Rack Support",
            }
        ],
        "service_desk_team": "Service Desk",
        "templates": [
            {
                "id": 5,
                "subject": "Install new rack",
                "category": "rfc",
                "impact": "low",
                "workflow": {
                    "id": 238,
                    "subject": "Install new rack",
                    "manager": "carla@widget.example",
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    return make_stack(CONFIG).client


def post(client: Client, key: str = API_KEY, **params: Any) -> requests.Response:
    return requests.post(
        f"{client.base}/events?{urlencode(params)}",
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
    )


def created(client: Client, key: str = API_KEY, **params: Any) -> dict[str, Any]:
    resp = post(client, key, **params)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def row_of(request_id: int) -> ItsmRequest:
    with session_scope() as session:
        row = session.get(ItsmRequest, request_id)
        assert row is not None
        session.expunge(row)
        return row


@pytest.mark.parametrize(
    ("params", "key", "team"),
    [
        ({"member": "carla@widget.example"}, API_KEY, {"name": "Unix Servers", "id": 13}),
        ({"ci": "rack-ci-1"}, API_KEY, {"name": "Data Center", "id": 20}),
        # the current user (the key's name, feeder) is in the first line team
        ({"ci": "rack-ci-1"}, "ingest-key", {"name": "Rack Support", "id": 21}),
        ({}, API_KEY, {"name": "Service Desk", "id": 7}),
        ({"team": "Rack Support"}, API_KEY, {"name": "Rack Support", "id": 21}),
        ({"team": "Night Shift"}, API_KEY, {"name": "Service Desk", "id": 7}),
        (
            {"team_id": 404, "member": "carla@widget.example"},
            API_KEY,
            {"name": "Unix Servers", "id": 13},
        ),
    ],
)
def test_the_default_team_and_an_invalid_one(
    client: Client, params: dict[str, Any], key: str, team: dict[str, Any]
) -> None:
    """Seed 004, default values, team: the member's team, else the service instance's first
    line team (its support team when the current user is in either), else the Service Desk
    team; "if an invalid team was specified in the API call, the default team is selected"."""
    record = created(client, key, subject=unique("Disk"), source=unique("Mon"), **params)
    assert record["team"] == team
    assert row_of(record["id"]).record["team"] == team


def test_a_template_with_a_workflow(client: Client) -> None:
    """Seed 004: template_id linked to a workflow → status workflow_pending, member = the
    workflow's manager; "the field values specified in the API call overwrite the values
    specified in the request template"."""
    record = created(client, template_id=5, impact="high", source=unique("Mon"))
    assert (record["subject"], record["category"], record["impact"]) == (
        "Install new rack",
        "rfc",
        "high",
    )
    assert record["status"] == "workflow_pending"
    assert record["member"] == {"name": "carla@widget.example", "id": None}
    assert record["team"] == {"name": "Unix Servers", "id": 13}
    assert record["workflow"] == {"id": 238, "subject": "Install new rack"}
    assert record["template"] == {"id": 5, "subject": "Install new rack"}
    unknown = post(client, subject="s", template_id=6)
    assert unknown.status_code == 422 and unknown.json()["field"] == "template_id"


SEED_RESPONSE = [
    "service_instance",
    "organization",
    "completion_reason",
    "completed_at",
    "desired_completion_at",
    "requested_by",
    "created_by",
    "created_at",
    "category",
    "sourceID",
    "downtime_start_at",
    "updated_at",
    "supplier",
    "resolution_target_at",
    "requester_resolution_target_at",
    "new_assignment",
    "grouping",
    "grouped_into",
    "member",
    "resolution_duration",
    "supplier_requestID",
    "subject",
    "response_target_at",
    "id",
    "requested_for",
    "problem",
    "workflow",
    "project",
    "ci",
    "downtime_end_at",
    "impact",
    "team",
    "status",
    "source",
    "next_target_at",
    "template",
    "custom_fields",
    "waiting_until",
    "reviewed",
    "satisfaction",
    "knowledge_article",
    "urgent",
    "addressed",
    "feedback",
]


def test_the_whole_response_body_on_create_and_update(client: Client) -> None:
    """Seed 004's "Response Request created", every field with a value or null; an update
    answers "all fields of the updated request" too."""
    source = unique("Mon")
    first = created(client, subject="Rack 12 down", source=source, ci="rack-ci-1")
    assert set(first) >= set(SEED_RESPONSE)
    assert first["service_instance"] == {"name": "Data Center Rack Space", "id": 29}
    assert (first["grouping"], first["next_target_at"], first["new_assignment"]) == (
        "none",
        "best_effort",
        True,
    )
    for key in ("organization", "feedback", "satisfaction", "resolution_duration"):
        assert first[key] is None
    assert (first["reviewed"], first["urgent"], first["addressed"]) == (False, False, False)
    done = post(client, subject="x", source=source, ci="rack-ci-1", status="completed")
    assert done.status_code == 200, done.text
    body = done.json()
    assert set(body) >= set(SEED_RESPONSE) and body["id"] == first["id"]
    assert (body["next_target_at"], body["new_assignment"]) == ("no_target", False)
    assert isinstance(body["resolution_duration"], int)


def test_waiting_until_with_a_controllable_clock(client: Client) -> None:
    """Seed 004: waiting_until is "the date and time at which the status of the request is
    to be updated from waiting_for to assigned"; beat's wake-up takes `now`."""
    until = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    source = unique("Mon")
    record = created(
        client,
        subject="Vendor on site",
        source=source,
        ci="rack-ci-1",
        status="waiting_for",
        waiting_until=iso(until),
    )
    assert (record["status"], record["next_target_at"]) == ("waiting_for", "clock_stopped")
    assert record["member"] == {"name": "tester", "id": None}  # waiting_for needs a member
    wake_waiting_requests(now=until - timedelta(seconds=1))
    assert row_of(record["id"]).status == "waiting_for"
    assert wake_waiting_requests(now=until) >= 1
    row = row_of(record["id"])
    assert (row.status, row.waiting_until) == ("assigned", None)
    assert (row.record["status"], row.record["waiting_until"]) == ("assigned", None)
    with session_scope() as session:
        event = session.get(Event, record["eventId"])
        assert event is not None and event.details["itsm"]["status"] == "assigned"
    again = post(client, subject="x", source=source, ci="rack-ci-1")
    assert again.status_code == 200 and again.json()["status"] == "assigned"
    assert again.json()["next_target_at"] == "best_effort"


def test_beat_task_wakes_a_request_through_a_worker(client: Client) -> None:
    from incman.outbox.sender import send_task

    record = created(
        client,
        subject="Waiting for parts",
        source=unique("Mon"),
        status="waiting_for",
        waiting_until=iso(utcnow() - timedelta(minutes=1)),
    )
    assert row_of(record["id"]).waiting_until is not None
    send_task("incman.wake_waiting_requests", queue="maintenance")  # what beat sends every 30 s
    wait_for(lambda: row_of(record["id"]).status == "assigned", what="the wake-up")


def _actions(event_ids: list[str]) -> list[Action] | None:
    with session_scope() as session:
        rows = list(session.scalars(select(Action).where(Action.event_id.in_(event_ids))))
    done = len(rows) == len(event_ids) and all(r.status not in ("pending", "running") for r in rows)
    return rows if done else None


def test_requests_without_a_device_are_never_suppressed(client: Client) -> None:
    """Seed 000, 3.0.4: "ignore suppression rules for events that have no device". A
    request with neither CI nor service instance has none; with a CI it has one and the
    notification's suppression (one per source and severity) holds the second back."""
    source = unique("Mon")
    bare = [created(client, subject=unique("Printer"), source=source) for _ in range(3)]
    assert {row_of(r["id"]).record["service_instance"] is None for r in bare} == {True}
    with session_scope() as session:
        devices = set(
            session.scalars(select(Event.device).where(Event.id.in_([r["eventId"] for r in bare])))
        )
    assert devices == {""}
    actions = wait_for(lambda: _actions([r["eventId"] for r in bare]), what="the creates")
    assert [a.status for a in actions] == ["done"] * 3

    other = unique("Mon")
    with_ci = [created(client, subject="Disk", source=other, ci=unique("ci")) for _ in range(3)]
    actions = wait_for(lambda: _actions([r["eventId"] for r in with_ci]), what="the creates")
    assert sorted(a.status for a in actions) == ["done", "suppressed", "suppressed"]
