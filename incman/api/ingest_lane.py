"""The ingest fast lane: `POST /api/v1/events` goes straight to its handler.

A request without a query string passes routing and the middleware stack, the hot path's
largest cost per request (`incman api` serves the application behind it:
incman.api.app.serve_app).

The handler is the route's own (incman.api.events.post_events: it authenticates and counts
the rate itself), and its errors are answered by the application's own exception handlers,
so both ways in answer alike; the route stays declared for the OpenAPI document and takes
every other form of the request."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

PATH = "/api/v1/events"
Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class IngestLane:
    """A plain ASGI middleware in front of the application."""

    def __init__(self, app: Any, handler: Handler, error_handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.handler = handler
        self.error_handlers = error_handlers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except Exception as exc:  # noqa: BLE001 (answered as the application would)
            response = await self._answer_error(request, exc)
        await response(scope, receive, send)

    async def _answer_error(self, request: Request, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            handler: ErrorHandler | None = self.error_handlers.get(cls)
            if handler is not None:
                return await handler(request, exc)
        log.exception("POST %s failed", PATH, exc_info=exc)
        return JSONResponse({"error": "internal error", "detail": "see the API's log"}, 500)
