"""Service endpoints: liveness, readiness, metrics, and the Debug integration's pages."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select, text

from incman.api.auth import Principal, authorize
from incman.api.body import not_found
from incman.store.db import session_scope
from incman.store.models import DebugIncident

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_all() -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        from incman.store.redisconn import get_redis

        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        checks["redis"] = f"error: {exc.__class__.__name__}"
    try:
        from incman.outbox.sender import check_broker

        check_broker()
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        checks["broker"] = f"error: {exc.__class__.__name__}"
    return checks


@router.get("/readyz", summary="Database, Redis and broker are reachable")
async def readyz() -> JSONResponse:
    checks = await run_in_threadpool(_check_all)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics() -> Response:
    body = await run_in_threadpool(generate_latest)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _debug_incident(number: str) -> dict[str, Any] | None:
    with session_scope() as session:
        row = session.scalars(select(DebugIncident).where(DebugIncident.number == number)).first()
        if row is None:
            return None
        return {
            "number": row.number,
            "state": row.state,
            "assignee": row.assignee,
            "fields": row.fields,
            "notes": row.notes,
            "createdAt": row.created_at.isoformat(),
        }


def _page_viewer(request: Request) -> Principal:
    """Who may see a Debug incident's page: a key of role viewer or above (header or
    `?api_key=`), or whoever is signed in to the console (it links here)."""
    from incman.api.console import session

    signed_in = session.current(request)
    return signed_in.principal if signed_in is not None else authorize(request, "viewer")


@router.get(
    "/debug/incidents/{number}",
    response_class=HTMLResponse,
    summary="A Debug integration incident (the link put on events; role viewer or a console "
    "session)",
)
async def debug_incident(number: str, _: Principal = Depends(_page_viewer)) -> HTMLResponse:
    row = await run_in_threadpool(_debug_incident, number)
    if row is None:
        raise not_found(f"debug incident {number}")
    fields = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in row["fields"].items()
    )
    notes = "".join(
        f"<li>{html.escape(n.get('at', ''))}: {html.escape(n.get('text', ''))}</li>"
        for n in row["notes"]
    )
    page = (
        f"<!doctype html><title>{html.escape(number)}</title>"
        f"<h1>{html.escape(number)} — {html.escape(row['state'])}</h1>"
        f"<p>Assignee: {html.escape(row['assignee'] or '-')}</p>"
        f"<table>{fields}</table><h2>Notes</h2><ul>{notes}</ul>"
    )
    return HTMLResponse(page)
