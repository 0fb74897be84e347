"""ITSM Events API (seed 004): parameters, default values, 24 h matching, updates."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from incman.domain.formats.itsm_match import (
    MATCH_WINDOW,
    facts_of,
    find_match,
    ignored_on_update,
    is_match,
    note_is_new,
)
from incman.domain.formats.itsm_record import apply_update, event_fields, new_record
from incman.domain.formats.itsm_request import UPDATABLE, ItsmError, parse_params

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
DEVICES = {
    "db01": {"id": "db01", "service_instance": "Database Service"},
    "web01": {"id": "web01", "serviceInstances": ["Web Shop", "Intranet"]},
}


def test_the_seed_example_query_parses() -> None:
    # POST /events?subject=Server%20Down&source=MyMonitoringTool&sourceID=882395&note=...
    params = parse_params(
        {
            "subject": "Server Down",
            "source": "MyMonitoringTool",
            "sourceID": "882395",
            "note": "Not reachable",
        }
    )
    assert params == {
        "subject": "Server Down",
        "source": "MyMonitoringTool",
        "source_id": "882395",
        "note": "Not reachable",
    }


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"source_id": "1"}, {"source_id": "1"}),
        ({"sourceID": "1", "source_id": "1"}, {"source_id": "1"}),
        ({"ci_id": "17"}, {"ci_id": 17}),
        (
            {"category": "incident", "impact": "top", "status": "waiting_for"},
            {"category": "incident", "impact": "top", "status": "waiting_for"},
        ),
        ({"waiting_until": "2026-11-24T08:00:00+01:00"}, {"waiting_until": "2026-11-24T07:00:00Z"}),
        (
            {"desired_completion_at": "2026-11-24T08:00:00Z"},
            {"desired_completion_at": "2026-11-24T08:00:00Z"},
        ),
        ({"note": ""}, {}),
    ],
)
def test_parameters_are_typed(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert parse_params(raw) == expected


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"colour": "red"}, "colour"),
        ({"category": "bogus"}, "category"),
        ({"status": "closed"}, "status"),
        ({"impact": "huge"}, "impact"),
        ({"completion_reason": "bored"}, "completion_reason"),
        ({"ci_id": "abc"}, "ci_id"),
        ({"team_id": "0"}, "team_id"),
        ({"waiting_until": "tomorrow"}, "waiting_until"),
        ({"subject": "x" * 256}, "subject"),
        ({"subject": ["a", "b"]}, "subject"),
        ({"sourceID": "1", "source_id": "2"}, "source_id"),
        (
            {
                "downtime_start_at": "2026-11-24T08:00:00Z",
                "downtime_end_at": "2026-11-24T07:00:00Z",
            },
            "downtime_end_at",
        ),
    ],
)
def test_bad_parameters_name_themselves(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ItsmError) as err:
        parse_params(raw)
    assert err.value.field == field


def test_defaults_with_only_a_subject() -> None:
    rec = new_record({"subject": "Server Down"}, "monitor", {}, NOW)
    assert rec["category"] == "other"
    assert rec["impact"] is None
    assert rec["status"] == "assigned"
    assert rec["source"] == "Event"
    assert (
        rec["created_by"]
        == rec["requested_by"]
        == rec["requested_for"]
        == {"name": "monitor", "id": None}
    )
    assert rec["member"] is None
    assert rec["service_instance"] is None
    assert rec["created_at"] == rec["updated_at"] == "2026-11-23T12:00:00Z"


def test_defaults_with_a_ci_take_its_service_instance() -> None:
    rec = new_record({"subject": "Disk", "ci": "db01"}, "monitor", DEVICES, NOW)
    assert rec["service_instance"] == {"name": "Database Service", "id": None}
    assert rec["category"] == "incident"
    assert rec["impact"] == "top"
    assert rec["ci"]["label"] == "db01"
    first = new_record({"subject": "Disk", "ci": "web01"}, "monitor", DEVICES, NOW)
    assert first["service_instance"]["name"] == "Web Shop"


def test_defaults_never_override_what_is_given() -> None:
    rec = new_record(
        {
            "subject": "s",
            "category": "rfc",
            "impact": "low",
            "source": "Nagios",
            "requested_by": "a@x",
            "requested_for_id": 7,
            "status": "in_progress",
            "member": "m@x",
        },
        "monitor",
        {},
        NOW,
    )
    assert (rec["category"], rec["impact"], rec["source"]) == ("rfc", "low", "Nagios")
    assert rec["requested_by"] == {"name": "a@x", "id": None}
    assert rec["requested_for"] == {"name": None, "id": 7}
    assert rec["member"] == {"name": "m@x", "id": None}


def test_a_status_that_needs_a_member_gets_the_current_user() -> None:
    rec = new_record({"subject": "s", "status": "in_progress"}, "monitor", {}, NOW)
    assert rec["member"] == {"name": "monitor", "id": None}


def test_a_request_needs_a_subject_and_completion_reason_needs_completed() -> None:
    with pytest.raises(ItsmError, match="subject"):
        new_record({"source": "x"}, "monitor", {}, NOW)
    with pytest.raises(ItsmError, match="completion_reason"):
        new_record({"subject": "s", "completion_reason": "solved"}, "monitor", {}, NOW)
    done = new_record(
        {"subject": "s", "status": "completed", "completion_reason": "solved"}, "monitor", {}, NOW
    )
    assert done["completed_at"] == "2026-11-23T12:00:00Z"


WITH_CI = {"subject": "Disk", "source": "Mon", "ci": "db01", "note": "95%"}
NO_CI = {"subject": "Server Down", "source": "Mon", "note": "Not reachable"}


def _existing(
    params: dict[str, Any], age: timedelta, account: str = "monitor", open_: bool = True
) -> Any:
    return replace(facts_of(params, account, DEVICES), created_at=NOW - age, open=open_)


@pytest.mark.parametrize(
    "age, matched",
    [
        (timedelta(0), True),
        (timedelta(hours=23, minutes=59, seconds=59), True),
        (MATCH_WINDOW, True),
        (MATCH_WINDOW + timedelta(seconds=1), False),
        (timedelta(days=3), False),
    ],
)
def test_the_24_hour_boundary(age: timedelta, matched: bool) -> None:
    for params in (WITH_CI, NO_CI):
        incoming = facts_of(params, "monitor", DEVICES)
        assert is_match(_existing(params, age), incoming, NOW) is matched


@pytest.mark.parametrize(
    "change, matched",
    [
        ({}, True),
        ({"note": "97%"}, True),  # with a CI the note does not matter
        ({"subject": "Other"}, True),  # nor the subject
        ({"requested_for": "x@y"}, True),
        ({"source": "Other"}, False),
        ({"ci": "web01"}, False),
        ({"service_instance": "Another Service"}, False),
    ],
)
def test_matching_with_a_ci(change: dict[str, Any], matched: bool) -> None:
    incoming = facts_of({**WITH_CI, **change}, "monitor", DEVICES)
    assert is_match(_existing(WITH_CI, timedelta(hours=1)), incoming, NOW) is matched


@pytest.mark.parametrize(
    "change, account, matched",
    [
        ({}, "monitor", True),
        ({"subject": "Other"}, "monitor", False),
        ({"note": "Other"}, "monitor", False),
        ({"source": "Other"}, "monitor", False),
        ({"requested_for": "x@y"}, "monitor", False),
        ({}, "another-key", False),
    ],
)
def test_matching_without_a_ci(change: dict[str, Any], account: str, matched: bool) -> None:
    incoming = facts_of({**NO_CI, **change}, account, DEVICES)
    assert is_match(_existing(NO_CI, timedelta(hours=1)), incoming, NOW) is matched


def test_a_closed_request_never_matches() -> None:
    incoming = facts_of(NO_CI, "monitor", DEVICES)
    assert not is_match(_existing(NO_CI, timedelta(minutes=1), open_=False), incoming, NOW)


def test_the_newest_match_wins() -> None:
    incoming = facts_of(WITH_CI, "monitor", DEVICES)
    candidates = [
        ("old", _existing(WITH_CI, timedelta(hours=5))),
        ("new", _existing(WITH_CI, timedelta(hours=1))),
        ("stale", _existing(WITH_CI, timedelta(hours=30))),
        ("other", _existing({**WITH_CI, "ci": "web01"}, timedelta(minutes=1))),
    ]
    assert find_match(candidates, incoming, NOW) == "new"
    assert find_match(candidates[2:], incoming, NOW) is None


@pytest.mark.parametrize(
    "note, earlier, added",
    [
        ("Not reachable", [], True),
        ("Not reachable", ["Not reachable"], False),
        ("Not reachable ", ["Not reachable"], False),
        ("Still down", ["Not reachable"], True),
        (None, ["x"], False),
        ("", [], False),
    ],
)
def test_a_note_is_added_only_when_new(note: str | None, earlier: list[str], added: bool) -> None:
    assert note_is_new(note, earlier) is added


def test_an_update_takes_only_the_listed_parameters() -> None:
    rec = new_record({"subject": "s"}, "monitor", {}, NOW)
    later = NOW + timedelta(hours=1)
    params = parse_params(
        {
            "subject": "changed",
            "impact": "low",
            "status": "completed",
            "completion_reason": "solved",
            "team": "Unix",
            "note": "n",
        }
    )
    out, changed = apply_update(rec, params, "monitor", later)
    assert out["subject"] == "s" and out["impact"] is None
    assert (out["status"], out["completion_reason"]) == ("completed", "solved")
    assert out["team"] == {"name": "Unix", "id": None}
    assert out["member"] == {"name": "monitor", "id": None}
    assert out["completed_at"] == out["updated_at"] == "2026-11-23T13:00:00Z"
    assert set(changed) == {"status", "completion_reason", "team", "member", "completed_at"}
    assert ignored_on_update(params, out) == ["impact", "subject"]
    assert ignored_on_update({"subject": "s", "source": "Mon", "ci": "db01"}, out) == []
    assert set(UPDATABLE) >= {"status", "team", "member", "waiting_until"}


def test_an_update_with_nothing_new_changes_nothing() -> None:
    rec = new_record({"subject": "s"}, "monitor", {}, NOW)
    out, changed = apply_update(rec, {"status": "assigned"}, "monitor", NOW + timedelta(hours=1))
    assert changed == [] and out == rec


def test_the_event_of_a_request() -> None:
    rec = new_record(
        {"subject": "Disk", "ci": "db01", "source": "Mon", "source_id": "9"},
        "monitor",
        DEVICES,
        NOW,
    )
    rec["id"] = 12
    ev = event_fields(rec, "95%")
    assert (ev["device"], ev["component"], ev["eventKey"]) == ("db01", "Database Service", "9")
    assert (ev["severity"], ev["summary"], ev["message"]) == (5, "Disk", "95%")
    assert ev["dedupid"] == "itsm-request:12"
    assert ev["details"]["itsm"]["id"] == 12
    plain = new_record({"subject": "s", "service_instance": "Mail"}, "monitor", {}, NOW)
    plain["id"] = 13
    assert event_fields(plain, None)["device"] == "Mail"
    bare = new_record({"subject": "s", "source": "Mon"}, "monitor", {}, NOW)
    bare["id"] = 14
    # Neither CI nor service instance: the event has no device (release 3.0.4's events
    # without a device, never suppressed); the source stays the event's source.
    assert (event_fields(bare, None)["device"], event_fields(bare, None)["severity"]) == ("", 3)
    assert event_fields(bare, None)["source"] == "Mon"
