"""JSON bodies of the event formats and configuration objects, checked for unstorable text.

A body is refused (422) when it holds text the database cannot store."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from incman.api.body import BATCH_LIMIT, ApiError, read_json
from incman.domain.text import bad_text_path


def check_clean(value: Any, where: str = "body") -> None:
    found = bad_text_path(value, where)
    if found:
        raise ApiError(
            422,
            "invalid text",
            f"{found}: NUL characters and unpaired surrogates are not allowed",
            found,
        )


async def read_clean_json(request: Request, limit: int = BATCH_LIMIT) -> tuple[Any, int]:
    """`read_json` (400 / 413) and then the text check (422)."""
    doc, size = await read_json(request, limit)
    check_clean(doc)
    return doc, size
