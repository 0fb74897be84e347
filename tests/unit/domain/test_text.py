"""Text the database cannot store is found wherever it hides."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.text import bad_text_path


@pytest.mark.parametrize(
    "doc, path",
    [
        ({"a": "fine", "b": [1, "ok"]}, None),
        ("x\x00y", "body"),
        ({"a": {"b": ["ok", "bad\x00"]}}, "body.a.b[1]"),
        ({"k\x00": 1}, "body.k\x00"),
        ({"s": "lone \ud800"}, "body.s"),
        ([1, 2.5, None, True], None),
    ],
)
def test_bad_text_path(doc: Any, path: str | None) -> None:
    assert bad_text_path(doc) == path
