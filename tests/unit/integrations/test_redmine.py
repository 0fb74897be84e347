"""Redmine's pure parts: issue bodies, default fields, states, the config. The plugin against
a real Redmine: tests/integration/test_redmine.py and the contract table."""

from __future__ import annotations

import re
from typing import Any

import pytest

from incman.integrations.errors import ConfigurationError
from incman.integrations.redmine import SUBJECT_MAX, RedmineIntegration

CONFIG = {"url": "http://redmine.test/", "api_key": "k" * 40, "project": "incidents"}


def plugin(**extra: Any) -> RedmineIntegration:
    return RedmineIntegration({**CONFIG, **extra})


def test_issue_body_keeps_redmine_attributes_and_custom_fields() -> None:
    body = plugin().issue_body(
        {
            "subject": "x" * 300,
            "description": "d",
            "priority": "4",  # an id: no look-up
            "assigned_to_id": 5,
            "cf_3": "Paris",
            "custom_fields": [{"id": 2, "value": "db"}],
            "severityName": "Critical",  # incman's, not Redmine's
            "cf_name": "not a field id",
        }
    )
    assert body == {
        "subject": "x" * SUBJECT_MAX,
        "description": "d",
        "priority_id": 4,
        "assigned_to_id": 5,
        "custom_fields": [{"id": 2, "value": "db"}, {"id": 3, "value": "Paris"}],
    }
    assert plugin().issue_body({"priority_id": 2, "priority": "9"}) == {"priority_id": 2}


def test_default_fields_map_the_severity_to_a_priority() -> None:
    event = {"summary": "Disk full", "message": "/var", "device": "db01", "severity": 5}
    fields = plugin().default_fields(event, None, {"eventUrl": "http://incman.test/e/1"})
    assert fields["subject"] == "Disk full" and fields["priority"] == "Urgent"
    assert "Event URL: http://incman.test/e/1" in fields["description"]
    quiet = plugin(priority_map={"5": "Immediate"}).default_fields(
        {**event, "severity": 2}, None, {}
    )
    assert "priority" not in quiet  # no mapping for that severity: Redmine's default


@pytest.mark.parametrize(
    ("status", "assignee", "state"),
    [
        ({"id": 1, "name": "New", "is_closed": False}, None, "OPEN"),
        ({"id": 1, "name": "New", "is_closed": False}, {"id": 5, "name": "Jane Doe"}, "ASSIGNED"),
        ({"id": 2, "name": "In Progress", "is_closed": False}, None, "OPEN"),
        ({"id": 3, "name": "Resolved", "is_closed": False}, {"id": 5, "name": "J"}, "RESOLVED"),
        ({"id": 5, "name": "Closed", "is_closed": True}, None, "CLOSED"),
        ({"id": 9, "name": "Done", "is_closed": True}, None, "CLOSED"),  # a status of its own
        ({"id": 8, "name": "Waiting", "is_closed": False}, None, "OPEN"),
    ],
)
def test_states_come_from_the_status_and_the_assignee(
    status: dict[str, Any], assignee: dict[str, Any] | None, state: str
) -> None:
    issue: dict[str, Any] = {"id": 12, "status": status}
    if assignee:
        issue["assigned_to"] = assignee
    ref = plugin()._ref(issue)
    assert (ref.remote_id, ref.number, ref.url) == ("12", "12", "http://redmine.test/issues/12")
    assert (ref.state, ref.remote_state) == (state, status["name"])


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"api_key": ""}, "config.api_key: may not be empty"),
        ({"project": None}, "config.project: is required"),
        ({"correlation_field": ""}, "config.correlation_field"),
        ({"priority_map": {"7": "High"}}, "keys are event severities 0-5, not 7"),
        ({"url": "redmine.test"}, "must be an http(s) URL"),
        ({"private_notes": "maybe"}, "must be true or false"),
    ],
)
def test_config_problems_are_named(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        plugin(**extra)


def test_the_api_key_is_never_shown() -> None:
    assert "k" * 40 not in repr(plugin().cfg)
