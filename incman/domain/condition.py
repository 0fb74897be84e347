"""Trigger conditions: the seed's operators over event fields, as a tree."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from incman.domain.event import SEVERITY_NAMES

OPERATORS = ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte", "_ct", "_nct", "_m")
COMBINATORS = ("_and", "_or", "_not")


class ConditionError(ValueError):
    """A malformed condition tree."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to whoever wrote it


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """RE2, not `re`: matching takes time linear in the text whatever the pattern, so no
    trigger can stall the API or a worker (`^(a+)+$` is harmless). RE2 refuses what needs
    backtracking (backreferences, lookaround) and repetitions over 1,000."""
    return re2.compile(pattern, _RE2_OPTIONS)


def validate_condition(cond: Any, path: str = "when") -> None:
    """Raise ConditionError naming the place of the first problem."""
    if cond is None or cond == {}:
        return
    if not isinstance(cond, dict):
        raise ConditionError(f"{path}: must be a mapping")
    for key, value in cond.items():
        where = f"{path}.{key}"
        if key in ("_and", "_or"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"{where}: must be a non-empty list")
            for i, item in enumerate(value):
                validate_condition(item, f"{where}[{i}]")
        elif key == "_not":
            validate_condition(value, where)
        elif key.startswith("_"):
            raise ConditionError(f"{where}: unknown combinator (use {', '.join(COMBINATORS)})")
        else:
            if not isinstance(value, dict) or not value:
                raise ConditionError(f"{where}: must be a mapping of operator to value")
            for op, operand in value.items():
                if op not in OPERATORS:
                    raise ConditionError(
                        f"{where}: unknown operator {op!r} (use {', '.join(OPERATORS)})"
                    )
                if op == "_m":
                    _check_regex(str(operand), f"{where}._m")


def _check_regex(pattern: str, where: str) -> None:
    try:
        _regex(pattern)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else "invalid"
        reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        raise ConditionError(
            f"{where}: regular expression refused ({reason}); conditions use RE2 syntax, "
            "without backreferences or lookaround"
        ) from exc


def field_value(doc: dict[str, Any], name: str) -> Any:
    """`details.x` and `dev.x` walk into nested mappings; a missing field is None."""
    if name in doc:
        return doc[name]
    value: Any = doc
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _operand(field: str, operand: Any) -> Any:
    # Severity may be written by name in a trigger: {severity: {_gte: Error}}.
    if field == "severity" and isinstance(operand, str):
        for n, name in enumerate(SEVERITY_NAMES):
            if name.lower() == operand.lower():
                return n
    return operand


def _compare(op: str, actual: Any, expected: Any) -> bool:
    a, e = _number(actual), _number(expected)
    left: Any
    right: Any
    if a is not None and e is not None:
        left, right = a, e
    else:
        left, right = ("" if actual is None else str(actual)), str(expected)
    if op == "_gt":
        return bool(left > right)
    if op == "_gte":
        return bool(left >= right)
    if op == "_lt":
        return bool(left < right)
    return bool(left <= right)


def _contains(actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    if isinstance(actual, (list, tuple, set)):
        return any(str(item) == str(expected) or str(expected) in str(item) for item in actual)
    return str(expected) in str(actual)


def _equal(actual: Any, expected: Any) -> bool:
    a, e = _number(actual), _number(expected)
    if a is not None and e is not None:
        return a == e
    return ("" if actual is None else str(actual)) == str(expected)


def _leaf(actual: Any, op: str, expected: Any) -> bool:
    if op == "_eq":
        return _equal(actual, expected)
    if op == "_neq":
        return not _equal(actual, expected)
    if op == "_ct":
        return _contains(actual, expected)
    if op == "_nct":
        return not _contains(actual, expected)
    if op == "_m":
        if actual is None:
            return False
        return _regex(str(expected)).search(str(actual)) is not None
    if actual is None:
        return False
    return _compare(op, actual, expected)


def matches(cond: Any, doc: dict[str, Any]) -> bool:
    """Whether the event document satisfies the condition (empty matches all)."""
    if not cond:
        return True
    for key, value in cond.items():
        if key == "_and":
            ok = all(matches(item, doc) for item in value)
        elif key == "_or":
            ok = any(matches(item, doc) for item in value)
        elif key == "_not":
            ok = not matches(value, doc)
        else:
            actual = field_value(doc, key)
            ok = all(_leaf(actual, op, _operand(key, exp)) for op, exp in value.items())
        if not ok:
            return False
    return True
