"""Text the database cannot hold, and how deeply a JSON document nests.

NUL characters and lone surrogates are found anywhere in a parsed JSON document, so the API
refuses them with a 422 instead of failing on store; nesting is measured without recursion."""

from __future__ import annotations

from typing import Any


def bad_text(text: str) -> bool:
    """NUL or a lone surrogate (which UTF-8 cannot encode)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_bad = bad_text


def bad_text_path(value: Any, path: str = "body") -> str | None:
    """The path of the first string (or key) the database cannot store, or None."""
    if isinstance(value, str):
        return path if _bad(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if isinstance(key, str) and _bad(key):
                return where
            found = bad_text_path(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = bad_text_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def nesting_depth(value: Any, stop_after: int = 1_000) -> int:
    """Levels of objects and lists in `value` (a scalar is 0, `{"a": 1}` is 1), counted with
    a stack rather than recursion; counting stops once past `stop_after`."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > stop_after:
                return deepest
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):  # scalars add no level: never stacked
                stack.append((child, depth + 1))
    return deepest
