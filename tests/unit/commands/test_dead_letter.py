"""Dead letter: the replay body's validation and the CLI's progress bar."""

from __future__ import annotations

import io
from typing import Any

import pytest

from incman.api.body import ApiError
from incman.api.dead_letter import parse_replay_body
from incman.commands.dead_letter import progress_bar


@pytest.mark.parametrize(
    ("body", "ids"),
    [
        ({"ids": [3, 1, 2]}, [3, 1, 2]),
        ({"all": True}, None),
    ],
)
def test_good_replay_bodies(body: Any, ids: list[int] | None) -> None:
    assert parse_replay_body(body) == ids


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1, 2], "the body must be"),
        ({}, "ids: a non-empty list"),
        ({"ids": []}, "ids: a non-empty list"),
        ({"ids": "1,2"}, "ids: a non-empty list"),
        ({"ids": [1, "2"]}, "ids: action ids are positive integers"),
        ({"ids": [0]}, "ids: action ids are positive integers"),
        ({"ids": [True]}, "ids: action ids are positive integers"),
        ({"all": False}, "all: must be true"),
        ({"all": True, "ids": [1]}, "give ids or all, not both"),
        ({"every": True}, "unknown field 'every'"),
    ],
)
def test_bad_replay_bodies_answer_422_with_the_reason(body: Any, reason: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_replay_body(body)
    assert err.value.status == 422
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("done", "total", "line"),
    [
        (0, 10, "\rreplaying [..............................] 0/10"),
        (5, 10, "\rreplaying [###############...............] 5/10"),
        (10, 10, "\rreplaying [##############################] 10/10"),
        (0, 0, "\rreplaying [##############################] 0/0"),
    ],
)
def test_progress_bar(done: int, total: int, line: str) -> None:
    out = io.StringIO()
    progress_bar(done, total, out)
    assert out.getvalue() == line
