"""PagerDuty Events v2: validation with every reason, and the event of a trigger."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.formats.pagerduty import InvalidEvent, parse_enqueue

TRIGGER = {
    "routing_key": "k",
    "event_action": "trigger",
    "dedup_key": "disk-db01",
    "payload": {
        "summary": "Disk full",
        "source": "db01",
        "severity": "critical",
        "component": "disk",
        "group": "prod",
        "class": "disk",
        "custom_details": {"free": "1%"},
    },
    "client": "Monitor",
    "links": [{"href": "http://x"}],
}


def test_a_trigger_is_an_event_folded_by_its_dedup_key() -> None:
    parsed = parse_enqueue(TRIGGER)
    assert (parsed.action, parsed.dedup_key) == ("trigger", "disk-db01")
    ev = parsed.event
    assert ev is not None
    assert (ev["device"], ev["component"], ev["eventClass"], ev["eventKey"]) == (
        "db01",
        "disk",
        "/PagerDuty/disk",
        "disk-db01",
    )
    assert (ev["severity"], ev["summary"], ev["dedupid"]) == (5, "Disk full", "disk-db01")
    assert ev["details"]["custom_details"] == {"free": "1%"}
    assert ev["details"]["group"] == "prod" and ev["details"]["links"] == [{"href": "http://x"}]


def test_a_trigger_without_dedup_key_gets_one() -> None:
    body = {k: v for k, v in TRIGGER.items() if k != "dedup_key"}
    first, second = parse_enqueue(body), parse_enqueue(body)
    assert first.dedup_key and first.dedup_key != second.dedup_key
    assert first.event is not None and first.event["dedupid"] == first.dedup_key


@pytest.mark.parametrize(
    "severity, expected", [("critical", 5), ("error", 4), ("warning", 3), ("info", 2)]
)
def test_severities(severity: str, expected: int) -> None:
    body = {**TRIGGER, "payload": {**TRIGGER["payload"], "severity": severity}}
    event = parse_enqueue(body).event
    assert event is not None and event["severity"] == expected


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_need_only_the_dedup_key(action: str) -> None:
    parsed = parse_enqueue({"event_action": action, "dedup_key": "disk-db01"})
    assert (parsed.action, parsed.dedup_key, parsed.event) == (action, "disk-db01", None)


@pytest.mark.parametrize(
    "body, errors",
    [
        ("x", ["the event must be a JSON object"]),
        ({}, ["'event_action' is missing or invalid (trigger, acknowledge, resolve)"]),
        ({"event_action": "resolve"}, ["'dedup_key' is missing or blank"]),
        ({"event_action": "acknowledge", "dedup_key": "   "}, ["'dedup_key' is missing or blank"]),
        ({"event_action": "trigger"}, ["'payload' is missing or not an object"]),
        (
            {"event_action": "trigger", "payload": {"severity": "bad"}},
            [
                "'payload.summary' is missing or blank",
                "'payload.source' is missing or blank",
                "'payload.severity' must be one of critical, error, warning, info",
            ],
        ),
        (
            {"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": {}}},
            ["'payload.severity' must be one of critical, error, warning, info"],
        ),
        (
            {"event_action": ["trigger"]},
            ["'event_action' is missing or invalid (trigger, acknowledge, resolve)"],
        ),
        (
            {"event_action": "trigger", "routing_key": 5, "dedup_key": "x" * 256},
            ["'routing_key' must be a string", "'dedup_key' is longer than 255 characters"],
        ),
        (
            {
                "event_action": "trigger",
                "payload": {"summary": "s" * 1025, "source": "h", "severity": "info"},
            },
            ["'payload.summary' is longer than 1024 characters"],
        ),
    ],
)
def test_invalid_events_list_every_reason(body: Any, errors: list[str]) -> None:
    with pytest.raises(InvalidEvent) as err:
        parse_enqueue(body)
    assert err.value.errors == errors
