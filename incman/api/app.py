"""The FastAPI application: `incman api` serves it with uvicorn."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from incman import __version__
from incman.api import events, health, incidents
from incman.api.body import ApiError
from incman.metrics import register_collectors

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    app = FastAPI(
        title="incman",
        version=__version__,
        description="Events in, incidents out: the incman HTTP API.",
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": _reason(exc.status_code), "detail": exc.detail},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse({"error": "invalid request", "field": field,
                             "detail": first.get("msg", "invalid request")}, status_code=422)

    app.include_router(events.router)
    app.include_router(incidents.router)
    app.include_router(health.router)
    register_collectors()
    return app


def _reason(status: int) -> str:
    return {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found",
            409: "conflict", 413: "payload too large", 429: "too many requests"}.get(
        status, "error")
