"""Incidents: list and read (manual creation and association live in the lifecycle)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select

from incman.api.auth import Principal, require
from incman.api.body import ApiError, not_found
from incman.db import session_scope
from incman.models import EventIncident, Incident
from incman.views import incident_to_api

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


def _list(state: str | None, notification_id: str | None, event_id: str | None, limit: int,
          cursor: str | None) -> dict[str, Any]:
    conds = []
    if state:
        wanted = [s.strip().upper() for s in state.split(",")]
        bad = [s for s in wanted if s not in STATES]
        if bad:
            raise ApiError(400, "bad filter", f"unknown state {bad[0]} ({', '.join(STATES)})",
                           "state")
        conds.append(Incident.state.in_(wanted))
    if notification_id:
        conds.append(Incident.notification_id == notification_id)
    if event_id:
        conds.append(Incident.id.in_(select(EventIncident.incident_id)
                                     .where(EventIncident.event_id == event_id)))
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
            inc = session.scalars(select(Incident).where(Incident.number == incident_id)
                                  .order_by(Incident.created_at.desc())).first()
        if inc is None:
            return None
        return incident_to_api(inc, _event_ids(session, [inc.id])[inc.id])


@router.get("/incidents/{incident_id}", summary="One incident (by id or number)")
async def get_incident(incident_id: str,
                       _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    out = await run_in_threadpool(_get, incident_id)
    if out is None:
        raise not_found(f"incident {incident_id}")
    return out
