"""The FastAPI application: `incman api` serves it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

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
from incman.api.ingest_lane import IngestLane
from incman.api.query_guard import QueryGuard
from incman.api.ratelimit import limit_rate
from incman.store.metrics import register_collectors

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER = 5  # seconds, in the 503 answered while the database is down


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Refuse to serve when stored secrets exist that no key in force opens."""
    from incman.store.secrets import secrets_problem

    problem = await run_in_threadpool(secrets_problem)
    if problem:
        log.error("incman api: %s", problem)
        raise RuntimeError(problem)
    yield


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the database cannot be reached (or dropped the connection), so
    nothing was committed and the caller may send again; the pool replaces broken
    connections meanwhile."""
    first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
    log.warning("database unavailable: %s %s", exc.__class__.__name__, *first_line or [""])
    return JSONResponse(
        {"error": "service unavailable", "detail": "the database cannot be reached"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": _reason(exc.status_code), "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    return JSONResponse(
        {"error": "invalid request", "field": field, "detail": first.get("msg", "invalid request")},
        status_code=422,
    )


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    app.add_exception_handler(RequestValidationError, _validation_error)


def create_app() -> FastAPI:
    app = FastAPI(
        title="incman",
        docs_url=None,  # served by install_docs, from local files
        redoc_url=None,  # ReDoc would load its script from a CDN
        version=__version__,
        description="Events in, incidents out: the incman HTTP API.",
        lifespan=_lifespan,
    )

    _add_error_handlers(app)

    app.include_router(events.ingest_router)  # authenticates and limits the rate itself
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


def serve_app() -> IngestLane:
    """What `incman api` serves: the application behind the ingest fast lane."""
    app = create_app()
    return IngestLane(app, events.post_events, app.exception_handlers)


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
