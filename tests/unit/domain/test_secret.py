"""Write-only secrets: masked answers, kept on edits that leave them out."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.secret import MASK, mask_config, merge_secrets, unresolved_masks

SECRETS = {"password", "token"}
STORED = {"url": "https://x", "username": "u", "password": "s3cret", "token": "t0k"}


def test_secrets_are_masked() -> None:
    out = mask_config({**STORED, "token": ""}, SECRETS)
    assert out == {"url": "https://x", "username": "u", "password": MASK, "token": ""}
    assert "s3cret" not in repr(out)


@pytest.mark.parametrize(
    "new, expected",
    [
        ({"url": "https://y"}, {"url": "https://y", "password": "s3cret", "token": "t0k"}),
        (
            {"url": "https://y", "password": MASK},
            {"url": "https://y", "password": "s3cret", "token": "t0k"},
        ),
        (
            {"url": "https://y", "password": "new"},
            {"url": "https://y", "password": "new", "token": "t0k"},
        ),
        ({"url": "https://y", "password": None}, {"url": "https://y", "token": "t0k"}),
    ],
)
def test_an_edit_keeps_what_it_leaves_out(new: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_secrets(new, STORED, SECRETS) == expected


def test_a_mask_with_nothing_stored_is_not_a_value() -> None:
    merged = merge_secrets({"password": MASK}, {}, SECRETS)
    assert unresolved_masks(merged) == ["password"]
    assert merge_secrets({"url": "u"}, {}, SECRETS) == {"url": "u"}
