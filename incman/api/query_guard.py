"""Refuse what the database cannot hold before any route runs.

NUL characters in the query string are refused with a 400, and in the path, where no id can
hold them, with a 404."""

from __future__ import annotations

import json
from typing import Any

from incman.domain.text import bad_text

Scope = dict[str, Any]


async def _answer(send: Any, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


class QueryGuard:
    """A plain ASGI middleware (no per-request cost beyond two text searches)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                detail = "NUL characters are not allowed in the query"
                await _answer(send, 400, "bad request", detail)
                return
            if bad_text(scope.get("path", "")):
                detail = "no resource has a NUL character or an unpaired surrogate in its path"
                await _answer(send, 404, "not found", detail)
                return
        await self.app(scope, receive, send)
