"""Refuse query strings the database cannot hold (NUL characters) before any route runs."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]


class QueryGuard:
    """A plain ASGI middleware (no per-request cost beyond one byte search)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                body = json.dumps(
                    {
                        "error": "bad request",
                        "detail": "NUL characters are not allowed in the query",
                    }
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)
