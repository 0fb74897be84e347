"""Incidents: list, read, and create or associate by hand (the event console's actions)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from incman.api.auth import Principal, require
from incman.api.body import SINGLE_LIMIT, ApiError, not_found, read_json
from incman.api.views import incident_to_api
from incman.ingest import manual
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.models import EventIncident, Incident

router = APIRouter(prefix="/api/v1", tags=["incidents"])
STATES = ("PENDING", "OPEN", "ASSIGNED", "RESOLVED", "CLOSED")


def _event_ids(session: Any, incident_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in incident_ids}
    if incident_ids:
        for event_id, incident_id in session.execute(
            select(EventIncident.event_id, EventIncident.incident_id)
            .where(EventIncident.incident_id.in_(incident_ids))
            .order_by(EventIncident.associated_at)
        ):
            out[incident_id].append(event_id)
    return out


def _list(
    state: str | None,
    notification_id: str | None,
    event_id: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    conds: list[Any] = []
    if state:
        wanted = [s.strip().upper() for s in state.split(",")]
        bad = [s for s in wanted if s not in STATES]
        if bad:
            raise ApiError(
                400, "bad filter", f"unknown state {bad[0]} ({', '.join(STATES)})", "state"
            )
        conds.append(Incident.state.in_(wanted))
    if notification_id:
        conds.append(Incident.notification_id == notification_id)
    if event_id:
        conds.append(
            Incident.id.in_(
                select(EventIncident.incident_id).where(EventIncident.event_id == event_id)
            )
        )
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Incident).where(*conds)) or 0
        query = select(Incident).where(*conds)
        if cursor:
            query = query.where(Incident.id < cursor)
        rows = list(session.scalars(query.order_by(Incident.id.desc()).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        links = _event_ids(session, [r.id for r in rows])
        items = [incident_to_api(r, links[r.id]) for r in rows]
    return {"items": items, "total": total, "nextCursor": rows[-1].id if more else None}


@router.get("/incidents", summary="List incidents")
async def list_incidents(
    state: str | None = None,
    notificationId: str | None = None,
    eventId: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
    _: Principal = Depends(require("viewer")),
) -> dict[str, Any]:
    return await run_in_threadpool(_list, state, notificationId, eventId, limit, cursor)


def _get(incident_id: str) -> dict[str, Any] | None:
    with session_scope() as session:
        inc = session.get(Incident, incident_id)
        if inc is None:
            inc = session.scalars(
                select(Incident)
                .where(Incident.number == incident_id)
                .order_by(Incident.created_at.desc())
            ).first()
        if inc is None:
            return None
        return incident_to_api(inc, _event_ids(session, [inc.id])[inc.id])


@router.get("/incidents/{incident_id}", summary="One incident (by id or number)")
async def get_incident(
    incident_id: str, _: Principal = Depends(require("viewer"))
) -> dict[str, Any]:
    out = await run_in_threadpool(_get, incident_id)
    if out is None:
        raise not_found(f"incident {incident_id}")
    return out


MANUAL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["eventIds", "notificationId"],
                    "properties": {
                        "eventIds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "notificationId": {"type": "string"},
                    },
                }
            }
        },
    }
}
ASSOCIATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["eventIds", "notificationId", "incident"],
                    "properties": {
                        "eventIds": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "notificationId": {"type": "string"},
                        "incident": {"type": "string", "minLength": 1},
                    },
                }
            }
        },
    }
}
WAIT_FOR_CREATION = 10.0


def _manual_body(doc: Any, *names: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid request", "the body must be a JSON object")
    for name in names:
        if name not in doc:
            raise ApiError(422, "invalid request", f"{name}: is required", name)
    if not isinstance(doc["eventIds"], list):
        raise ApiError(422, "invalid request", "eventIds: must be a list", "eventIds")
    if not isinstance(doc["notificationId"], str):
        raise ApiError(422, "invalid request", "notificationId: must be a string", "notificationId")
    return doc


def _create_manual(doc: dict[str, Any], who: Principal) -> list[str]:
    with session_scope() as session:
        incidents = manual.create_manual(
            session,
            get_catalog(),
            doc["eventIds"],
            doc["notificationId"],
            who.name,
            who.role,
            who.groups,
        )
        return [i.id for i in incidents]


def _wait_created(ids: list[str]) -> list[dict[str, Any]]:
    """Give the workers a moment so the answer carries the numbers; PENDING otherwise."""
    deadline = time.monotonic() + WAIT_FOR_CREATION
    while True:
        with session_scope() as session:
            rows = [session.get(Incident, i) for i in ids]
            links = _event_ids(session, ids)
            out = [incident_to_api(r, links[r.id]) for r in rows if r is not None]
        if all(i["state"] != "PENDING" for i in out) or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def _manual_error(exc: manual.ManualError) -> ApiError:
    return ApiError(exc.status, _REASONS.get(exc.status, "refused"), exc.reason, exc.field)


_REASONS = {
    403: "forbidden",
    404: "not found",
    409: "conflict",
    422: "invalid request",
    502: "remote refused",
    503: "remote unavailable",
}


@router.post(
    "/incidents",
    status_code=201,
    openapi_extra=MANUAL_BODY,
    summary="Create incidents by hand for events (one per event, or one for all)",
)
async def create_incidents(
    request: Request, who: Principal = Depends(require("operator"))
) -> JSONResponse:
    doc, _ = await read_json(request, SINGLE_LIMIT)
    body = _manual_body(doc, "eventIds", "notificationId")
    try:
        ids = await run_in_threadpool(_create_manual, body, who)
    except manual.ManualError as exc:
        raise _manual_error(exc) from exc
    items = await run_in_threadpool(_wait_created, ids)
    return JSONResponse({"items": items}, status_code=201)


def _associate(doc: dict[str, Any], who: Principal) -> dict[str, Any]:
    catalog = get_catalog()
    # The remote lookup comes first, outside the transaction that links the events.
    remote = manual.remote_by_number(
        catalog, doc["notificationId"], doc["incident"], who.name, who.role, who.groups
    )
    with session_scope() as session:
        inc = manual.associate_manual(
            session,
            catalog,
            doc["eventIds"],
            doc["notificationId"],
            remote,
            who.name,
            who.role,
            who.groups,
        )
        session.flush()
        return incident_to_api(inc, _event_ids(session, [inc.id])[inc.id])


@router.post(
    "/incidents/associate",
    openapi_extra=ASSOCIATE_BODY,
    summary="Associate events with an incident number, looked up at the remote (422: unknown)",
)
async def associate_incident(
    request: Request, who: Principal = Depends(require("operator"))
) -> JSONResponse:
    doc, _ = await read_json(request, SINGLE_LIMIT)
    body = _manual_body(doc, "eventIds", "notificationId", "incident")
    try:
        out = await run_in_threadpool(_associate, body, who)
    except manual.ManualError as exc:
        raise _manual_error(exc) from exc
    return JSONResponse(out)
