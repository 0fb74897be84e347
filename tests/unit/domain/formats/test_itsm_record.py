"""ITSM Events API (seed 004): the directory's default team, request templates, the full
response body and `waiting_until`, as tables over the pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from incman.domain.formats.itsm_directory import (
    Directory,
    apply_template,
    parse_directory,
)
from incman.domain.formats.itsm_record import (
    FIXED,
    apply_update,
    finish,
    new_record,
    resume_waiting,
    waiting_over,
)
from incman.domain.formats.itsm_request import ItsmError, parse_params

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
# The seed's own names: Carla Cluster in Unix Servers, the Data Center Rack Space instance.
SECTION: dict[str, Any] = {
    "teams": [
        {"id": 13, "name": "Unix Servers", "members": ["carla@widget.example", 54]},
        {"id": 20, "name": "Data Center", "members": ["monitor"]},
        {"id": 21, "name": "Rack Support"},
        {"id": 7, "name": "Service Desk"},
    ],
    "service_instances": [
        {
            "id": 29,
            "name": "Data Center Rack Space",
            "first_line_team": "Data Center",
            "support_team": "Rack Support",
        },
        {"id": 30, "name": "Printing", "first_line_team": "Unix Servers", "support_team": 21},
        {"id": 31, "name": "Mail", "support_team": "Rack Support"},
        {"name": "Chat"},
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
        },
        {"id": 6, "subject": "Question", "category": "rfi", "status": "accepted"},
    ],
}
DIRECTORY = parse_directory(SECTION)
UNIX = {"name": "Unix Servers", "id": 13}
DATA_CENTER = {"name": "Data Center", "id": 20}
RACK = {"name": "Rack Support", "id": 21}
DESK = {"name": "Service Desk", "id": 7}


def create(params: dict[str, Any], user: str = "ops-bot", directory: Directory = DIRECTORY) -> Any:
    merged, template = apply_template(parse_params(params), directory)
    return new_record(merged, user, {}, NOW, directory, template)


@pytest.mark.parametrize(
    "params, user, team",
    [
        # "The team to which the person specified as the member belongs."
        ({"member": "carla@widget.example"}, "ops-bot", UNIX),
        ({"member_id": 54, "service_instance": "Data Center Rack Space"}, "ops-bot", UNIX),
        # "Otherwise ... the First Line Team of this service instance"
        ({"service_instance": "Data Center Rack Space"}, "ops-bot", DATA_CENTER),
        ({"service_instance_id": 30}, "ops-bot", UNIX),
        # "... or, if ... the current user is a member of the First Line Team or the Support
        # Team, the Support Team of this service instance."
        ({"service_instance": "Data Center Rack Space"}, "monitor", RACK),
        # "... if a First Line Team is not specified ..., the Support Team"
        ({"service_instance": "Mail"}, "ops-bot", RACK),
        # "Else, set to the Service Desk Team"
        ({"service_instance": "Chat"}, "ops-bot", DESK),
        ({}, "ops-bot", DESK),
        # a member in no team: the next rule applies
        ({"member": "nobody@widget.example", "service_instance": "Mail"}, "ops-bot", RACK),
        # a valid team given is kept, named as the directory names it
        ({"team": "Data Center"}, "ops-bot", DATA_CENTER),
        ({"team_id": 21}, "ops-bot", RACK),
        # "if an invalid team was specified in the API call, the default team is selected"
        ({"team": "No Such Team"}, "ops-bot", DESK),
        ({"team_id": 999, "member": "carla@widget.example"}, "ops-bot", UNIX),
        ({"team": "No Such Team", "service_instance": "Printing"}, "ops-bot", UNIX),
    ],
)
def test_the_default_team(params: dict[str, Any], user: str, team: dict[str, Any]) -> None:
    """Seed 004, default values, `team`."""
    assert create({"subject": "s", **params}, user)["team"] == team


def test_without_a_directory_a_given_team_is_kept_and_none_is_made_up() -> None:
    """No teams configured: nothing to check a team against, no default team to give."""
    assert create({"subject": "s", "team": "Unix"}, directory=Directory())["team"] == {
        "name": "Unix",
        "id": None,
    }
    assert create({"subject": "s"}, directory=Directory())["team"] is None


def test_a_service_instance_known_to_the_directory_gets_its_id() -> None:
    record = create({"subject": "s", "service_instance": "Data Center Rack Space"})
    assert record["service_instance"] == {"name": "Data Center Rack Space", "id": 29}
    assert record["category"] == "incident"


def test_a_template_linked_to_a_workflow() -> None:
    """Seed 004: with template_id the status is workflow_pending and the member the
    workflow's manager; "the field values specified in the API call overwrite the values
    specified in the request template"."""
    record = create({"subject": "Rack 12 for the new SAN", "template_id": "5"})
    assert record["status"] == "workflow_pending"
    assert record["member"] == {"name": "carla@widget.example", "id": None}
    assert record["team"] == UNIX  # the manager's team
    assert record["workflow"] == {"id": 238, "subject": "Install new rack"}
    assert record["template"] == {"id": 5, "subject": "Install new rack"}
    assert (record["subject"], record["category"], record["impact"]) == (
        "Rack 12 for the new SAN",  # the call's value
        "rfc",  # the template's
        "low",
    )
    mine = create({"template_id": 5, "impact": "high", "member": "x@widget.example"})
    assert mine["subject"] == "Install new rack"
    assert (mine["impact"], mine["member"]) == ("high", {"name": "x@widget.example", "id": None})
    given = create({"template_id": 5, "status": "assigned"})
    assert given["status"] == "assigned"


def test_a_template_without_a_workflow_keeps_the_usual_defaults() -> None:
    record = create({"template_id": 6})
    assert (record["subject"], record["category"], record["status"]) == (
        "Question",
        "rfi",
        "accepted",
    )
    assert record["member"] == {"name": "ops-bot", "id": None}  # accepted needs a member
    assert record["workflow"] is None


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(ItsmError) as err:
        create({"subject": "s", "template_id": 77})
    assert err.value.field == "template_id"


# The seed's "Response Request created", key by key.
SEED_RESPONSE_KEYS = {
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
}


def test_the_record_has_every_field_of_the_seed_response() -> None:
    record = create({"subject": "Add new rack in data center"})
    assert set(record) >= SEED_RESPONSE_KEYS
    assert (record["grouping"], record["reviewed"], record["urgent"], record["addressed"]) == (
        "none",
        False,
        False,
        False,
    )
    for key in ("organization", "feedback", "satisfaction", "project", "grouped_into"):
        assert record[key] is None
    assert record["new_assignment"] is True  # assigned to the Service Desk, not yet taken


@pytest.mark.parametrize(
    "params, next_target, duration",
    [
        ({}, "best_effort", None),
        ({"desired_completion_at": "2026-11-24T09:00:00Z"}, "2026-11-24T09:00:00Z", None),
        ({"status": "waiting_for"}, "clock_stopped", None),
        ({"status": "waiting_for_customer"}, "clock_stopped", None),
        ({"status": "completed", "completion_reason": "solved"}, "no_target", 0),
    ],
)
def test_next_target_and_resolution_duration(
    params: dict[str, Any], next_target: str, duration: int | None
) -> None:
    record = create({"subject": "s", **params})
    assert record["next_target_at"] == next_target
    assert record["resolution_duration"] == duration


def test_resolution_duration_counts_the_minutes_to_completion() -> None:
    record = create({"subject": "s"})
    done, _ = apply_update(
        record,
        {"status": "completed", "completion_reason": "solved"},
        "ops-bot",
        NOW + timedelta(hours=2, minutes=5, seconds=30),
        DIRECTORY,
    )
    assert (done["resolution_duration"], done["next_target_at"]) == (125, "no_target")
    assert done["new_assignment"] is False


def test_an_update_with_an_invalid_team_gets_the_default_team() -> None:
    record = create({"subject": "s", "service_instance": "Printing"})
    moved, changed = apply_update(record, {"team": "Data Center"}, "ops-bot", NOW, DIRECTORY)
    assert moved["team"] == DATA_CENTER and changed == ["team"]
    back, _ = apply_update(moved, {"team": "No Such Team"}, "ops-bot", NOW, DIRECTORY)
    assert back["team"] == UNIX  # Printing's first line team


def test_a_record_stored_before_the_full_shape_is_answered_in_it() -> None:
    added = {*FIXED, "next_target_at", "new_assignment", "resolution_duration"}
    old = {k: v for k, v in create({"subject": "s"}).items() if k not in added}
    assert not set(old) >= SEED_RESPONSE_KEYS
    assert set(finish(old)) >= SEED_RESPONSE_KEYS


@pytest.mark.parametrize(
    "status, until, now, resumed",
    [
        ("waiting_for", "2026-11-23T12:00:00Z", NOW, True),  # at that time
        ("waiting_for", "2026-11-23T12:00:00Z", NOW - timedelta(seconds=1), False),
        ("waiting_for", "2026-11-23T11:00:00Z", NOW, True),
        ("waiting_for", None, NOW, False),
        ("waiting_for_customer", "2026-11-23T11:00:00Z", NOW, False),  # only waiting_for
        ("assigned", "2026-11-23T11:00:00Z", NOW, False),
    ],
)
def test_waiting_until(status: str, until: str | None, now: datetime, resumed: bool) -> None:
    """Seed 004: waiting_until is "the date and time at which the status of the request is
    to be updated from waiting_for to assigned"."""
    record = create({"subject": "s", "status": "waiting_for"})
    record.update(status=status, waiting_until=until)
    assert waiting_over(record, now) is resumed
    after = resume_waiting(record, now)
    if not resumed:
        assert after is None
        return
    assert after is not None
    assert (after["status"], after["waiting_until"]) == ("assigned", None)
    assert after["updated_at"] == now.isoformat().replace("+00:00", "Z")
    assert after["next_target_at"] == "best_effort"  # the clock runs again


@pytest.mark.parametrize(
    "section, message",
    [
        ([], "itsm: must be a mapping"),
        ({"colour": 1}, "itsm.colour"),
        ({"teams": [{"name": "x"}]}, "itsm.teams[0].id"),
        ({"teams": [{"id": 1}]}, "itsm.teams[0].name"),
        ({"teams": [{"id": 1, "name": "x", "members": "a"}]}, "itsm.teams[0].members"),
        ({"service_instances": [{"name": "s", "support_team": "nope"}]}, "unknown team"),
        ({"service_desk_team": "nope"}, "itsm.service_desk_team"),
        ({"templates": [{"id": 1, "colour": "red"}]}, "itsm.templates[0].colour"),
        ({"templates": [{"id": 1, "status": "done"}]}, "itsm.templates[0].status"),
        ({"templates": [{"id": 1}, {"id": 1}]}, "duplicate template 1"),
        ({"templates": [{"id": 1, "template_id": 2}]}, "cannot name another template"),
    ],
)
def test_a_bad_directory_is_refused_with_the_place(section: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_directory(section)
