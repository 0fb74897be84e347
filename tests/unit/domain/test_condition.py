"""Trigger conditions (seed 002's operators): one table per operator, the combinators,
severity names, and the validation of condition trees."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.condition import ConditionError, matches, validate_condition

DOC: dict[str, Any] = {
    "device": "prod-db01",
    "component": "disk",
    "eventClass": "/Perf/Disk",
    "severity": 4,
    "count": 12,
    "summary": "Disk /var is 97% full",
    "status": "New",
    "details": {"rack": "R12", "tags": ["db", "prod"], "load": "2.5"},
    "dev": {"priority": 800, "groups": ["/Databases", "/Site/Paris"]},
}

# (condition, expected) — each row one leaf, over DOC above
TABLE = [
    # _eq: numbers compare as numbers, everything else as text
    ({"severity": {"_eq": 4}}, True),
    ({"severity": {"_eq": "4"}}, True),
    ({"severity": {"_eq": 4.0}}, True),
    ({"severity": {"_eq": 5}}, False),
    ({"device": {"_eq": "prod-db01"}}, True),
    ({"device": {"_eq": "PROD-DB01"}}, False),
    ({"missing": {"_eq": ""}}, True),  # a missing field reads as empty text
    # _neq
    ({"severity": {"_neq": 5}}, True),
    ({"severity": {"_neq": 4}}, False),
    ({"device": {"_neq": "prod-db02"}}, True),
    # _gt _gte _lt _lte on numbers
    ({"count": {"_gt": 11}}, True),
    ({"count": {"_gt": 12}}, False),
    ({"count": {"_gte": 12}}, True),
    ({"count": {"_gte": 13}}, False),
    ({"count": {"_lt": 13}}, True),
    ({"count": {"_lt": 12}}, False),
    ({"count": {"_lte": 12}}, True),
    ({"count": {"_lte": 11}}, False),
    ({"count": {"_gt": "9"}}, True),  # "9" is a number: 12 > 9 (as text it would be False)
    ({"details.load": {"_gte": 2.5}}, True),
    # ... and on text when either side is not a number
    ({"device": {"_gt": "prod-a"}}, True),
    ({"device": {"_lt": "prod-a"}}, False),
    # a missing field never satisfies an ordering
    ({"missing": {"_gt": 0}}, False),
    ({"missing": {"_lte": 0}}, False),
    # _ct: substring, or member of a list
    ({"summary": {"_ct": "97%"}}, True),
    ({"summary": {"_ct": "98%"}}, False),
    ({"details.tags": {"_ct": "prod"}}, True),
    ({"dev.groups": {"_ct": "/Databases"}}, True),
    ({"dev.groups": {"_ct": "/Network"}}, False),
    ({"missing": {"_ct": "x"}}, False),
    # _nct
    ({"summary": {"_nct": "98%"}}, True),
    ({"summary": {"_nct": "97%"}}, False),
    ({"details.tags": {"_nct": "test"}}, True),
    ({"missing": {"_nct": "x"}}, True),
    # _m: a regular expression searched anywhere
    ({"device": {"_m": "^prod-"}}, True),
    ({"device": {"_m": "db0[12]$"}}, True),
    ({"device": {"_m": "^db"}}, False),
    ({"eventClass": {"_m": "/Perf/"}}, True),
    ({"missing": {"_m": ".*"}}, False),
    # nested fields: details.<key> and dev.<field>
    ({"details.rack": {"_eq": "R12"}}, True),
    ({"dev.priority": {"_lte": 800}}, True),
    ({"dev.priority": {"_gt": 800}}, False),
    # several operators on one field: all must hold
    ({"count": {"_gt": 10, "_lt": 20}}, True),
    ({"count": {"_gt": 10, "_lt": 12}}, False),
]


@pytest.mark.parametrize(("cond", "expected"), TABLE, ids=[str(c) for c, _ in TABLE])
def test_operator_table(cond: dict[str, Any], expected: bool) -> None:
    validate_condition(cond)
    assert matches(cond, DOC) is expected


SEVERITY_NAMES_TABLE = [
    ({"severity": {"_eq": "Error"}}, True),
    ({"severity": {"_eq": "error"}}, True),
    ({"severity": {"_gte": "Warning"}}, True),
    ({"severity": {"_gte": "Critical"}}, False),
    ({"severity": {"_lt": "Critical"}}, True),
    ({"severity": {"_neq": "Info"}}, True),
    ({"severity": {"_lte": "Debug"}}, False),
]


@pytest.mark.parametrize(
    ("cond", "expected"), SEVERITY_NAMES_TABLE, ids=[str(c) for c, _ in SEVERITY_NAMES_TABLE]
)
def test_severity_may_be_written_by_name(cond: dict[str, Any], expected: bool) -> None:
    assert matches(cond, DOC) is expected


COMBINATORS = [
    ({"_and": [{"severity": {"_gte": 4}}, {"device": {"_m": "^prod-"}}]}, True),
    ({"_and": [{"severity": {"_gte": 4}}, {"device": {"_m": "^test-"}}]}, False),
    ({"_or": [{"severity": {"_eq": 5}}, {"device": {"_m": "^prod-"}}]}, True),
    ({"_or": [{"severity": {"_eq": 5}}, {"device": {"_m": "^test-"}}]}, False),
    ({"_not": {"eventClass": {"_ct": "/Heartbeat"}}}, True),
    ({"_not": {"eventClass": {"_ct": "/Perf"}}}, False),
    ({"_not": {"_not": {"severity": {"_eq": 4}}}}, True),
    # a mapping of several leaves means all of them
    ({"severity": {"_eq": 4}, "component": {"_eq": "disk"}}, True),
    ({"severity": {"_eq": 4}, "component": {"_eq": "cpu"}}, False),
    # the README's example
    (
        {
            "_and": [
                {"severity": {"_gte": "Error"}},
                {"device": {"_m": "^prod-"}},
                {"_not": {"eventClass": {"_ct": "/Heartbeat"}}},
            ]
        },
        True,
    ),
    ({}, True),  # an empty condition matches every event
]


@pytest.mark.parametrize(("cond", "expected"), COMBINATORS, ids=[str(c) for c, _ in COMBINATORS])
def test_combinators(cond: dict[str, Any], expected: bool) -> None:
    validate_condition(cond)
    assert matches(cond, DOC) is expected


INVALID = [
    ([], "when: must be a mapping"),
    ({"_and": {}}, "when._and: must be a non-empty list"),
    ({"_or": []}, "when._or: must be a non-empty list"),
    ({"_xor": [{"a": {"_eq": 1}}]}, "when._xor: unknown combinator"),
    ({"severity": 4}, "when.severity: must be a mapping of operator to value"),
    ({"severity": {}}, "when.severity: must be a mapping of operator to value"),
    ({"severity": {"_like": 4}}, "when.severity: unknown operator '_like'"),
    ({"device": {"_m": "(unclosed"}}, "when.device._m:"),
    ({"_and": [{"device": {"_eq": "x"}}, {"count": {"gt": 1}}]}, "when._and[1].count:"),
    ({"_not": {"device": "x"}}, "when._not.device:"),
]


@pytest.mark.parametrize(("cond", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_conditions_name_the_place(cond: Any, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        validate_condition(cond)
    assert str(caught.value).startswith(message)
