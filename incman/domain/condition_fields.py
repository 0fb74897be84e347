"""What a trigger condition may name, and every problem of a condition tree at once.

The names: the event fields of CONFIG.md, `details.<key>` and `dev.<field>`. An unknown name
is reported with the closest known one ("did you mean")."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from incman.domain.condition import COMBINATORS, ConditionError, validate_condition

# The API's camelCase names (CONFIG.md "Event fields in conditions").
EVENT_FIELDS = (
    "device",
    "component",
    "eventClass",
    "eventKey",
    "eventClassKey",
    "severity",
    "summary",
    "message",
    "status",
    "count",
    "agent",
    "source",
    "dedupid",
)
# Prefixes of the open-ended names: any key of `details`, any field of the device record.
OPEN_PREFIXES = ("details", "dev")


def suggest(name: str, known: Iterable[str], what: str = "key") -> str:
    """`unknown key (did you mean 'x'?)`, or the list of known names when none is close."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close:  # `Severity` for `severity`, `EVENTCLASS` for `eventClass`
        close = [n for n in names if n.lower() == name.lower()][:1]
    if close:
        return f"unknown {what} (did you mean {close[0]!r}?)"
    return f"unknown {what} (known: {', '.join(names)})"


def field_problem(name: str) -> str | None:
    """Why `name` is not a field a condition can test, or None."""
    if name in EVENT_FIELDS:
        return None
    prefix, dot, rest = name.partition(".")
    if dot and prefix in OPEN_PREFIXES:
        return None if rest else f"name a key after {prefix!r}: {prefix}.<key>"
    if dot:
        close = difflib.get_close_matches(prefix, OPEN_PREFIXES, n=1, cutoff=0.6)
        if close:
            return f"unknown field (did you mean {close[0] + dot + rest!r}?)"
    if name in OPEN_PREFIXES:
        return f"name a key: {name}.<key>"
    known = (*EVENT_FIELDS, "details.<key>", "dev.<field>")
    close = difflib.get_close_matches(name, EVENT_FIELDS, n=1, cutoff=0.6)
    if not close:
        close = [f for f in EVENT_FIELDS if f.lower() == name.lower()][:1]
    if close:
        return f"unknown field (did you mean {close[0]!r}?)"
    return f"unknown field (known: {', '.join(known)})"


def condition_problems(cond: Any, path: str = "when") -> list[tuple[str, str]]:
    """Every problem of a condition tree as (path, message): the structure and operators
    (incman.domain.condition.validate_condition, leaf by leaf) and the field names."""
    if cond is None or cond == {}:
        return []
    if not isinstance(cond, dict):
        return [(path, "must be a mapping")]
    out: list[tuple[str, str]] = []
    for key, value in cond.items():
        where = f"{path}.{key}"
        if key in ("_and", "_or"):
            if not isinstance(value, list) or not value:
                out.append((where, "must be a non-empty list"))
                continue
            for i, item in enumerate(value):
                out += condition_problems(item, f"{where}[{i}]")
        elif key == "_not":
            out += condition_problems(value, where)
        elif not isinstance(key, str) or key.startswith("_"):
            out.append((where, suggest(str(key), COMBINATORS, "combinator")))
        else:
            problem = field_problem(key)
            if problem is not None:
                out.append((where, problem))
            try:  # the operators and operands of this one leaf
                validate_condition({key: value}, path)
            except ConditionError as exc:
                place, _, message = str(exc).partition(": ")
                out.append((place, message))
    return out
