"""The FastAPI application: `incman api` serves it with uvicorn."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from incman import __version__
from incman.api import (
    alertmanager,
    config_objects,
    dead_letter,
    entity_incidents,
    event_management,
    events,
    health,
    incidents,
    itsm_events,
    links,
    pagerduty,
)
from incman.api.body import ApiError
from incman.api.console import install_console
from incman.api.docs import install_docs
from incman.api.query_guard import QueryGuard
from incman.api.ratelimit import limit_rate
from incman.store.metrics import register_collectors

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    app = FastAPI(
        title="incman",
        docs_url=None,  # served by install_docs, from local files
        redoc_url=None,  # ReDoc would load its script from a CDN
        version=__version__,
        description="Events in, incidents out: the incman HTTP API.",
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": _reason(exc.status_code), "detail": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(
            {
                "error": "invalid request",
                "field": field,
                "detail": first.get("msg", "invalid request"),
            },
            status_code=422,
        )

    app.include_router(events.router, dependencies=[Depends(limit_rate)])
    app.include_router(incidents.router)
    app.include_router(health.router)
    app.include_router(links.router)
    app.include_router(event_management.router)
    app.include_router(itsm_events.router)
    app.include_router(alertmanager.router)
    app.include_router(pagerduty.router)
    app.include_router(entity_incidents.router)
    app.include_router(config_objects.router)
    app.include_router(dead_letter.router)
    install_docs(app)
    install_console(app)
    app.add_middleware(QueryGuard)
    register_collectors()
    return app


def _reason(status: int) -> str:
    return {
        400: "bad request",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        409: "conflict",
        413: "payload too large",
        429: "too many requests",
    }.get(status, "error")
