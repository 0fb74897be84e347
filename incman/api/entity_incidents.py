"""`POST /api/v1/entity-incidents`: a monitoring system's incident objects (seed 002).

`GET` reads them back in the seed's own shape.

An object sent again is the same incident: it updates its open event (acknowledgement,
comment, clear, removal) rather than counting as a new occurrence."""

from __future__ import annotations

import os
import threading
from typing import Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from incman.api.auth import Principal, event_action_refused, require
from incman.api.body import DATABASE_DOWN, SINGLE_LIMIT, ApiError
from incman.api.clean_body import read_clean_json
from incman.api.ratelimit import limit_rate
from incman.domain.event import EventError, EventIn, normalise_event
from incman.domain.formats.entity_incident import (
    EVENT_CLASS,
    MAX_ITEMS,
    EntityIncident,
    IncidentError,
    SeverityMap,
    parse_incident,
    parse_severity_map,
)
from incman.domain.formats.entity_incident_record import EventState, incident_record
from incman.ingest import event_ops
from incman.ingest.accept import accept
from incman.settings import get_settings
from incman.store import metrics
from incman.store.catalog import Catalog, get_catalog
from incman.store.db import session_scope
from incman.store.models import OPEN_EVENT_STATUSES, AuditEntry, Event, Note, utcnow

router = APIRouter(prefix="/api/v1", tags=["entity incidents"], dependencies=[Depends(limit_rate)])

INCIDENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "entityId"],
    "properties": {
        "id": {"type": "string"},
        "entityId": {"type": "string"},
        "data": {"type": "string"},
        "acknowledgedBy": {"type": "string"},
        "acknowledgementTimestamp": {"type": "integer"},
        "clearTimestamp": {"type": "integer"},
        "comment": {"type": "string"},
        "commentedBy": {"type": "string"},
        "commentTimestamp": {"type": "integer"},
        "entityType": {"type": "integer"},
        "localTimestamp": {"type": "integer"},
        "parentChainId": {"type": "string"},
        "state": {"type": "integer"},
        "text": {"type": "string"},
        "timestamp": {"type": "integer"},
        "type": {"type": "integer"},
        "branchId": {"type": "string"},
        "reason": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "rootCause": {"type": "object"},
                "branch": {"type": "object"},
            },
        },
        "removed": {
            "type": "object",
            "properties": {"userId": {"type": "string"}, "timestamp": {"type": "integer"}},
        },
    },
}
INCIDENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        INCIDENT_SCHEMA,
                        {"type": "array", "items": INCIDENT_SCHEMA, "maxItems": MAX_ITEMS},
                    ]
                }
            }
        },
    }
}


class _SeverityMapFile:
    """The `entity_incidents:` section of INCMAN_CONFIG, re-read when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, float] | None = None
        self._value = parse_severity_map(None)

    def get(self) -> SeverityMap:
        path = get_settings().config_path
        try:
            key = (path, os.stat(path).st_mtime) if path else ("", 0.0)
        except OSError:
            key = (path, -1.0)
        with self._lock:
            if key != self._key:
                section = None
                if path and key[1] >= 0:
                    with open(path, encoding="utf-8") as fh:
                        doc = yaml.safe_load(fh) or {}
                    section = doc.get("entity_incidents") if isinstance(doc, dict) else None
                self._value = parse_severity_map(section)
                self._key = key
            return self._value


severity_map_file = _SeverityMapFile()


def _latest(session: Session, dedupid: str, open_only: bool) -> Event | None:
    query = select(Event).where(Event.dedupid == dedupid)
    if open_only:
        query = query.where(Event.status.in_(OPEN_EVENT_STATUSES))
    return session.scalars(
        query.order_by(Event.first_time.desc()).limit(1).with_for_update()
    ).first()


def _refresh(ev: Event, ev_in: EventIn) -> None:
    now = utcnow()
    ev.summary = ev_in.summary
    ev.details = ev_in.details
    ev.last_time = now
    ev.updated_at = now


def _apply(
    session: Session, catalog: Catalog, obj: EntityIncident, ev_in: EventIn, user: str
) -> dict[str, Any]:
    created = False
    target = _latest(session, ev_in.dedupid, open_only=True)
    if target is not None and obj.cleared:
        # A clear through ingest, so Send Clear reaches the incidents.
        accept(session, [ev_in], catalog)
        session.refresh(target)
    if target is None and (obj.cleared or obj.removed):
        target = _latest(session, ev_in.dedupid, open_only=False)
    if target is None:
        result = accept(session, [ev_in], catalog)
        target = session.get(Event, result.accepted[0].event_id)
        created = result.accepted[0].created
    else:
        _refresh(target, ev_in)
    assert target is not None
    if (
        obj.acknowledged_by
        and target.status in OPEN_EVENT_STATUSES
        and target.status != "Acknowledged"
    ):
        event_ops.acknowledge(session, catalog, target, obj.acknowledged_by)
    if obj.comment:
        earlier = {
            t.strip() for t in session.scalars(select(Note.text).where(Note.event_id == target.id))
        }
        if obj.comment.strip() not in earlier:
            event_ops.add_note(session, catalog, target, obj.commented_by or user, obj.comment)
    if obj.removed:
        event_ops.close(session, catalog, target, obj.removed_by or user)
    session.flush()
    return {
        "eventId": target.id,
        "dedupid": target.dedupid,
        "status": target.status,
        "count": target.count,
        "created": created,
    }


def store_incident(obj: EntityIncident, ev_in: EventIn, user: str) -> dict[str, Any]:
    """One incident object in its own transaction."""
    with session_scope() as session:
        out = _apply(session, get_catalog(), obj, ev_in, user)
    metrics.EVENTS_ACCEPTED.labels(source="entity-incidents").inc()
    return out


def _convert(raw: Any, severities: SeverityMap) -> tuple[EntityIncident, EventIn]:
    obj = parse_incident(raw, severities)
    return obj, normalise_event(obj.event)


def _refused(obj: EntityIncident, principal: Principal) -> str | None:
    """Why the caller may not send this object: acknowledging and removing are operators'."""
    if obj.acknowledged_by:
        return event_action_refused(principal, "acknowledge", "acknowledgedBy")
    if obj.removed:
        return event_action_refused(principal, "close", "a removed incident")
    return None


def _store_all(
    items: list[Any], severities: SeverityMap, principal: Principal
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            obj, ev_in = _convert(raw, severities)
            refused = _refused(obj, principal)
            if refused:
                results.append({"index": index, "ok": False, "error": refused, "status": 403})
                continue
            out = store_incident(obj, ev_in, principal.name)
            results.append({"index": index, "ok": True, **out})
        except (IncidentError, EventError) as exc:
            results.append({"index": index, "ok": False, "error": str(exc), "field": exc.field})
        except DATABASE_DOWN:
            raise
        except SQLAlchemyError as exc:
            results.append(
                {"index": index, "ok": False, "error": f"could not store: {exc.__class__.__name__}"}
            )
    return results


def _severities() -> SeverityMap:
    try:
        return severity_map_file.get()
    except (ValueError, OSError, yaml.YAMLError) as exc:
        raise ApiError(500, "configuration error", str(exc), "entity_incidents") from exc


@router.post(
    "/entity-incidents",
    openapi_extra=INCIDENTS_BODY,
    status_code=201,
    summary="Incident objects of a monitoring system (one → 201/200, a list → 200)",
)
async def post_entity_incidents(
    request: Request, principal: Principal = Depends(require("ingest"))
) -> JSONResponse:
    doc, size = await read_clean_json(request)
    severities = await run_in_threadpool(_severities)
    if isinstance(doc, list):
        if len(doc) > MAX_ITEMS:
            raise ApiError(413, "batch too large", f"{len(doc)} incidents; at most {MAX_ITEMS}")
        results = await run_in_threadpool(_store_all, doc, severities, principal)
        return JSONResponse({"results": results})
    if size > SINGLE_LIMIT:
        raise ApiError(
            413, "payload too large", f"one incident may be at most {SINGLE_LIMIT} bytes"
        )
    try:
        obj, ev_in = _convert(doc, severities)
    except (IncidentError, EventError) as exc:
        raise ApiError(422, "invalid incident", str(exc), exc.field) from exc
    refused = _refused(obj, principal)
    if refused:
        raise HTTPException(403, refused)
    out = await run_in_threadpool(store_incident, obj, ev_in, principal.name)
    return JSONResponse(out, status_code=201 if out["created"] else 200)


# -- reading back ------------------------------------------------------------------------


def _state_of(session: Session, ev: Event) -> EventState:
    note = session.execute(
        select(Note.author, Note.text, Note.created_at)
        .where(Note.event_id == ev.id)
        .order_by(Note.created_at.desc())
        .limit(1)
    ).first()
    closed = session.execute(
        select(AuditEntry.actor, AuditEntry.at)
        .where(AuditEntry.target == f"event:{ev.id}", AuditEntry.action == "close")
        .order_by(AuditEntry.at.desc())
        .limit(1)
    ).first()
    return EventState(
        event_id=ev.id,
        status=ev.status,
        device=ev.device,
        event_key=ev.event_key,
        summary=ev.summary,
        details=ev.details or {},
        acknowledged_by=ev.acknowledged_by,
        acknowledged_at=ev.acknowledgement_time,
        cleared_at=ev.clear_time,
        last_note=(note.author, note.text, note.created_at) if note else None,
        closed=(closed.actor, closed.at) if closed else None,
    )


def read_incidents(
    incident_id: str | None, entity_id: str | None, limit: int
) -> list[dict[str, Any]]:
    """Incident objects newest first (by the time incman first saw them)."""
    with session_scope() as session:
        query = select(Event).where(Event.event_class == EVENT_CLASS)
        if incident_id is not None:
            query = query.where(Event.event_key == incident_id)
        if entity_id is not None:
            query = query.where(Event.device == entity_id)
        rows = session.scalars(query.order_by(Event.first_time.desc()).limit(limit))
        return [incident_record(_state_of(session, ev)) for ev in rows]


@router.get(
    "/entity-incidents",
    summary="Incident objects in the seed's shape, newest first (filter by entityId)",
)
async def list_entity_incidents(
    entity_id: str | None = Query(None, alias="entityId", max_length=255),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(require("viewer")),
) -> JSONResponse:
    items = await run_in_threadpool(read_incidents, None, entity_id, limit)
    return JSONResponse({"items": items})


@router.get(
    "/entity-incidents/{incident_id}",
    summary="One incident object in the seed's shape, as it stands now",
)
async def get_entity_incident(
    incident_id: str, _: Principal = Depends(require("viewer"))
) -> JSONResponse:
    items = await run_in_threadpool(read_incidents, incident_id, None, 1)
    if not items:
        raise ApiError(404, "not found", f"no incident object {incident_id}", "id")
    return JSONResponse(items[0])
