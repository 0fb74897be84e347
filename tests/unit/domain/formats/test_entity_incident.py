"""Monitoring-system incident objects (seed 002) as events: fields, states, reason codes."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.formats.entity_incident import (
    DEFAULT_SEVERITY_MAP,
    REASONS,
    IncidentError,
    SeverityMap,
    parse_incident,
    parse_severity_map,
    reason_details,
)

DEFAULTS = parse_severity_map(None)
INCIDENT = {
    "id": "inc-1",
    "entityId": "router-7",
    "text": "Interface down",
    "state": 1,
    "type": 1,
    "entityType": 1,
    "timestamp": 1763872000,
    "reason": {"code": 7},
}


def test_an_incident_object_as_an_event() -> None:
    obj = parse_incident(INCIDENT, DEFAULTS)
    ev = obj.event
    assert (ev["device"], ev["summary"], ev["severity"]) == ("router-7", "Interface down", 5)
    assert (ev["eventClass"], ev["eventKey"]) == ("/EntityIncident", "inc-1")
    assert ev["dedupid"] == "router-7|/EntityIncident|inc-1"
    assert ev["details"]["reason"] == {"code": 7, "meaning": "Agent down."}
    assert ev["details"]["incident"]["typeName"] == "entity changed state"
    assert ev["details"]["incident"]["entityTypeName"] == "object"
    assert not obj.cleared and not obj.removed and obj.acknowledged_by is None


@pytest.mark.parametrize(
    "changes, cleared, ack, comment, removed_by",
    [
        ({"clearTimestamp": 1763872100}, True, None, None, None),
        ({"state": 3}, True, None, None, None),  # state 3 clears (the seed)
        ({"acknowledgedBy": "u-9"}, False, "u-9", None, None),
        ({"comment": "looking", "commentedBy": "u-2"}, False, None, "looking", None),
        ({"comment": "  "}, False, None, None, None),
        ({"removed": {"userId": "u-4", "timestamp": 5}}, False, None, None, "u-4"),
        ({"removed": {}}, False, None, None, None),
    ],
)
def test_what_an_object_asks_for(
    changes: dict[str, Any],
    cleared: bool,
    ack: str | None,
    comment: str | None,
    removed_by: str | None,
) -> None:
    obj = parse_incident({**INCIDENT, **changes}, DEFAULTS)
    assert obj.cleared is cleared
    assert (obj.event["severity"] == 0) is cleared
    assert (obj.acknowledged_by, obj.comment, obj.removed_by) == (ack, comment, removed_by)
    assert obj.removed is ("removed" in changes)


@pytest.mark.parametrize(
    "code, meaning, treated_as",
    [
        (None, REASONS[None], None),
        ("-", REASONS[None], None),
        (1, REASONS[1], 10),
        (2, REASONS[2], 10),
        (6, "No data from agent.", None),
        (16, "Change state on the incident clearing.", None),
        (99, "Unknown reason code 99.", None),
    ],
)
def test_reason_codes_keep_their_meaning(code: Any, meaning: str, treated_as: int | None) -> None:
    out = reason_details({"code": code, "rootCause": {"entityId": "x"}})
    assert out["meaning"] == meaning
    assert out.get("treatedAs") == treated_as
    assert out["rootCause"] == {"entityId": "x"}


@pytest.mark.parametrize(
    "section, state, severity",
    [
        (None, 1, DEFAULT_SEVERITY_MAP[1]),
        (None, 42, 3),
        ({"severity_map": {1: "critical", "2": 2, 5: "clear"}}, 2, 2),
        ({"severity_map": {1: "critical", "2": 2, 5: "clear"}}, 5, 0),
        ({"severity_map": {1: "critical"}, "default_severity": "info"}, 7, 2),
    ],
)
def test_the_severity_map_is_configurable(section: Any, state: int, severity: int) -> None:
    assert parse_severity_map(section).severity(state) == severity


@pytest.mark.parametrize(
    "section",
    [
        [],
        {"severity_map": []},
        {"severity_map": {"x": 1}},
        {"severity_map": {1: "huge"}},
        {"default_severity": 9},
    ],
)
def test_bad_severity_maps_are_refused(section: Any) -> None:
    with pytest.raises(ValueError, match="entity_incidents"):
        parse_severity_map(section)


def test_missing_text_gets_a_summary() -> None:
    obj = parse_incident({"id": 5, "entityId": 9}, SeverityMap({}, 4))
    assert obj.event["summary"] == "Incident 5 on 9"
    assert obj.event["severity"] == 4


@pytest.mark.parametrize(
    "raw, field",
    [
        ("x", "incident"),
        ({"entityId": "e"}, "id"),
        ({"id": "i"}, "entityId"),
        ({"id": "i", "entityId": "e", "state": "bad"}, "state"),
        ({"id": "i", "entityId": "e", "text": 5}, "text"),
        ({"id": "i", "entityId": "e", "removed": "yes"}, "removed"),
        ({"id": "i", "entityId": "e", "reason": {"code": "x"}}, "reason.code"),
        ({"id": True, "entityId": "e"}, "id"),
    ],
)
def test_bad_objects_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(IncidentError) as err:
        parse_incident(raw, DEFAULTS)
    assert err.value.field == field
