"""Suppression maths: rules, keys and the sliding window, with frozen time."""

from __future__ import annotations

import re
from typing import Any

import pytest

from incman.domain.suppression import (
    DEFAULT_DEDUP_FORMAT,
    SuppressionConfigError,
    SuppressionRule,
    WindowState,
    admit,
    device_suppression,
    effective_rule,
    parse_rule,
    suppression_key,
)

DOC: dict[str, Any] = {
    "device": "db01",
    "component": "disk",
    "severity": 5,
    "eventClass": "/Perf/Disk",
    "eventKey": "usage",
    "details": {"site": "paris"},
}


@pytest.mark.parametrize(
    ("global_raw", "override", "expected"),
    [
        (None, None, SuppressionRule()),
        ({}, None, SuppressionRule(-1, -1, DEFAULT_DEDUP_FORMAT)),
        ({"threshold_num": 10, "threshold_secs": 60}, None, SuppressionRule(10, 60)),
        ({"threshold_num": 10, "threshold_secs": 60}, {"threshold_num": 5}, SuppressionRule(5, 60)),
        (
            {"threshold_num": 10, "threshold_secs": 60},
            {"threshold_secs": -1},
            SuppressionRule(10, -1),
        ),
        (
            None,
            {"threshold_num": 2, "threshold_secs": 30, "dedup_format": "device"},
            SuppressionRule(2, 30, "device"),
        ),
        ({"threshold_num": 0, "threshold_secs": 1}, None, SuppressionRule(0, 1)),
    ],
)
def test_effective_rule_lays_the_notification_over_the_global_rule(
    global_raw: Any, override: Any, expected: SuppressionRule
) -> None:
    assert effective_rule(global_raw, override, "n1") == expected


@pytest.mark.parametrize(
    ("rule", "enabled"),
    [
        (SuppressionRule(), False),
        (SuppressionRule(5, -1), False),
        (SuppressionRule(-1, 60), False),
        (SuppressionRule(5, 60), True),
        (SuppressionRule(0, 60), True),
    ],
)
def test_minus_one_in_either_number_disables(rule: SuppressionRule, enabled: bool) -> None:
    assert rule.enabled is enabled


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "suppression: must be a mapping"),
        ({"threshold": 1}, "suppression.threshold: unknown setting"),
        ({"threshold_num": "5"}, "suppression.threshold_num: must be an integer"),
        ({"threshold_num": True}, "suppression.threshold_num: must be an integer"),
        ({"threshold_num": -2}, "suppression.threshold_num: must be -1 (off) or at least 0"),
        ({"threshold_secs": 0}, "suppression.threshold_secs: must be -1 (off) or at least 1"),
        ({"dedup_format": ""}, "suppression.dedup_format: must be field names"),
        ({"dedup_format": "device|colour"}, "suppression.dedup_format: unknown field 'colour'"),
        ({"dedup_format": "device|details."}, "unknown field 'details.'"),
    ],
)
def test_bad_settings_say_where_and_why(raw: Any, message: str) -> None:
    with pytest.raises(
        SuppressionConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_rule(raw, "suppression")


@pytest.mark.parametrize(
    ("fmt", "doc", "key"),
    [
        (DEFAULT_DEDUP_FORMAT, DOC, "db01|disk|5"),
        ("device|eventClass|eventKey", DOC, "db01|/Perf/Disk|usage"),
        ("device|details.site", DOC, "db01|paris"),
        ("device|details.rack", DOC, "db01|"),
        ("device|agent", DOC, "db01|"),
        (DEFAULT_DEDUP_FORMAT, {**DOC, "device": ""}, None),
        (DEFAULT_DEDUP_FORMAT, {**DOC, "device": "  "}, None),
        ("component|severity", {**DOC, "device": ""}, None),
    ],
)
def test_key_uses_api_field_names_and_events_without_device_are_never_counted(
    fmt: str, doc: dict[str, Any], key: str | None
) -> None:
    assert suppression_key(doc, SuppressionRule(1, 1, fmt)) == key


def run_window(rule: SuppressionRule, calls: list[tuple[str, float]]) -> list[str]:
    """Feed (member, time) calls; 'ok', 'SUPPRESS+START' or 'suppress' for each."""
    state = WindowState()
    out = []
    for member, now in calls:
        decision, state = admit(state, member, now, rule)
        out.append(
            "ok" if decision.allowed else "SUPPRESS+START" if decision.started else "suppress"
        )
    return out


@pytest.mark.parametrize(
    ("rule", "calls", "expected"),
    [
        # three per 10 s: the fourth and fifth are held back, one start for the flood
        (
            SuppressionRule(3, 10),
            [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)],
            ["ok", "ok", "ok", "SUPPRESS+START", "suppress"],
        ),
        # the window slides: at t=10 the creation of t=0 has left it (older than 10 s)
        (
            SuppressionRule(3, 10),
            [("a", 0), ("b", 1), ("c", 2), ("d", 9.9), ("e", 10), ("f", 10.5)],
            ["ok", "ok", "ok", "SUPPRESS+START", "ok", "suppress"],
        ),
        # refusals are not counted: they never push the window's end further
        (
            SuppressionRule(1, 10),
            [("a", 0), ("b", 5), ("c", 9), ("d", 10.5)],
            ["ok", "SUPPRESS+START", "suppress", "ok"],
        ),
        # a flood that pauses a whole window and starts again raises a second start
        (
            SuppressionRule(1, 10),
            [("a", 0), ("b", 1), ("c", 30), ("d", 31)],
            ["ok", "SUPPRESS+START", "ok", "SUPPRESS+START"],
        ),
        # the same member (a re-delivered create) is admitted again without counting twice
        (
            SuppressionRule(2, 10),
            [("a", 0), ("a", 1), ("a", 2), ("b", 3), ("c", 4)],
            ["ok", "ok", "ok", "ok", "SUPPRESS+START"],
        ),
        # threshold 0 holds back every creation
        (SuppressionRule(0, 10), [("a", 0), ("b", 1)], ["SUPPRESS+START", "suppress"]),
        # disabled: everything passes
        (SuppressionRule(-1, 10), [("a", 0), ("b", 0), ("c", 0)], ["ok", "ok", "ok"]),
        (SuppressionRule(1, -1), [("a", 0), ("b", 0)], ["ok", "ok"]),
    ],
)
def test_sliding_window_with_frozen_time(
    rule: SuppressionRule, calls: list[tuple[str, float]], expected: list[str]
) -> None:
    assert run_window(rule, calls) == expected


GLOBAL = {"threshold_num": 10, "threshold_secs": 60, "dedup_format": "device"}


@pytest.mark.parametrize(
    ("override", "device", "expected"),
    [
        (None, None, SuppressionRule(10, 60, "device")),
        (None, {"id": "db01"}, SuppressionRule(10, 60, "device")),
        ({"threshold_num": 5}, {"id": "db01"}, SuppressionRule(5, 60, "device")),
        # the device's own settings win over the notification's and the global ones
        (
            {"threshold_num": 5},
            {"id": "db01", "suppression": {"threshold_num": 2}},
            SuppressionRule(2, 60, "device"),
        ),
        (
            {"threshold_num": 5},
            {"id": "db01", "suppression": {"threshold_secs": -1}},
            SuppressionRule(5, -1, "device"),
        ),
        # the seed's property names, on the device itself
        (
            {"threshold_num": 5},
            {
                "id": "db01",
                "zNotificationSuppressionThresholdNum": 3,
                "zNotificationSuppressionThresholdSecs": 30,
                "zNotificationSuppressionDedupFormat": "device|component",
            },
            SuppressionRule(3, 30, "device|component"),
        ),
        (
            None,
            {"id": "db01", "zNotificationSuppressionThresholdNum": -1},
            SuppressionRule(-1, 60, "device"),
        ),
    ],
)
def test_a_device_lays_its_own_settings_over_both(
    override: Any, device: Any, expected: SuppressionRule
) -> None:
    """Seed 000: zNotificationSuppression* are the device's properties."""
    assert effective_rule(GLOBAL, override, "n1", device) == expected


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"id": "d", "suppression": [1]}, "devices[0].suppression: must be a mapping"),
        ({"id": "d", "suppression": {"threshold_num": "x"}}, "threshold_num: must be an integer"),
        ({"id": "d", "zNotificationSuppressionDedupFormat": "rack"}, "unknown field 'rack'"),
        (
            {
                "id": "d",
                "suppression": {"threshold_num": 1},
                "zNotificationSuppressionThresholdNum": 2,
            },
            "threshold_num is set in suppression too",
        ),
    ],
)
def test_bad_device_settings_are_refused_with_the_place(device: Any, message: str) -> None:
    with pytest.raises(SuppressionConfigError, match=re.escape(message)):
        device_suppression(device, "devices[0]")


def test_a_device_without_settings_has_none() -> None:
    assert device_suppression({"id": "d", "title": "t"}, "devices[0]") is None
    assert device_suppression(None, "devices[0]") is None
