"""Event normalisation: the dedupid, severity names, statuses, and the one event document."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from incman.domain.event import (
    EventError,
    event_document,
    is_self_monitoring,
    normalise_event,
    parse_severity,
    parse_status,
)

BASE = {"device": "db01", "severity": 5, "summary": "Disk full"}

# (extra fields, expected dedupid): device|component|eventClass|eventKey|severity
DEDUPID = [
    ({}, "db01||||5"),
    ({"component": "disk"}, "db01|disk|||5"),
    ({"component": "disk", "eventClass": "/Perf/Disk"}, "db01|disk|/Perf/Disk||5"),
    (
        {"component": "disk", "eventClass": "/Perf/Disk", "eventKey": "usage"},
        "db01|disk|/Perf/Disk|usage|5",
    ),
    ({"severity": "Warning"}, "db01||||3"),
    ({"severity": "critical", "eventKey": "k"}, "db01|||k|5"),
    ({"eventClassKey": "ignored-in-dedupid"}, "db01||||5"),
    ({"summary": "another summary"}, "db01||||5"),  # the summary never splits an event
    ({"dedupid": "given-by-the-sender"}, "given-by-the-sender"),
    ({"dedupid": ""}, "db01||||5"),  # empty means: compute it
]


@pytest.mark.parametrize(("extra", "expected"), DEDUPID, ids=[d for _, d in DEDUPID])
def test_dedupid(extra: dict[str, Any], expected: str) -> None:
    assert normalise_event({**BASE, **extra}).dedupid == expected


SEVERITIES = [
    (0, 0),
    (5, 5),
    ("3", 3),
    ("Clear", 0),
    ("debug", 1),
    ("INFO", 2),
    (" Warning ", 3),
    ("error", 4),
    ("Critical", 5),
]


@pytest.mark.parametrize(("raw", "expected"), SEVERITIES)
def test_severity_by_number_or_name(raw: Any, expected: int) -> None:
    assert parse_severity(raw) == expected


@pytest.mark.parametrize("raw", [6, -1, "7", "Major", True, None, 2.5, ["5"]])
def test_bad_severity_is_refused(raw: Any) -> None:
    with pytest.raises(EventError) as caught:
        parse_severity(raw)
    assert caught.value.field == "severity"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("new", "New"), ("ACKNOWLEDGED", "Acknowledged"), (" cleared ", "Cleared"), ("Aged", "Aged")],
)
def test_status_any_case(raw: str, expected: str) -> None:
    assert parse_status(raw) == expected


INVALID = [
    ({"severity": 5, "summary": "x"}, "device"),
    ({"device": "  ", "severity": 5, "summary": "x"}, "device"),
    ({"device": "d", "summary": "x"}, "severity"),
    ({"device": "d", "severity": 5}, "summary"),
    ({**BASE, "details": []}, "details"),
    ({**BASE, "device": "a\x00b"}, "device"),
    ({**BASE, "device": "x" * 256}, "device"),
    ({**BASE, "component": {"nested": 1}}, "component"),
]


@pytest.mark.parametrize(("raw", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_event_names_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(EventError) as caught:
        normalise_event(raw)
    assert caught.value.field == field


def test_unknown_fields_go_into_details() -> None:
    ev = normalise_event({**BASE, "rack": "R12", "details": {"agent_id": 7}})
    assert ev.details == {"agent_id": 7, "rack": "R12"}


@pytest.mark.parametrize(
    ("event_class", "expected"),
    [
        ("/App/Incman/Failure", True),
        ("/App/Incman/Suppression", True),
        ("/App/Incman", True),
        ("/App/IncmanOther", False),
        ("/App", False),
        ("", False),
    ],
)
def test_self_monitoring_classes(event_class: str, expected: bool) -> None:
    assert is_self_monitoring(event_class) is expected


def test_the_one_event_document() -> None:
    ev = normalise_event({**BASE, "component": "disk", "details": {"rack": "R12"}})
    first = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    doc = event_document(
        ev, event_id="e1", status="New", count=2, first_time=first, last_time=first
    )
    assert doc == {
        "eventId": "e1",
        "dedupid": "db01|disk|||5",
        "device": "db01",
        "component": "disk",
        "eventClass": "",
        "eventKey": "",
        "eventClassKey": "",
        "severity": 5,
        "summary": "Disk full",
        "message": "",
        "status": "New",
        "count": 2,
        "firstTime": "2026-01-02T03:04:05Z",
        "lastTime": "2026-01-02T03:04:05Z",
        "agent": "",
        "source": "",
        "details": {"rack": "R12"},
    }
