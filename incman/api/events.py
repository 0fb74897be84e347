"""Events: ingest (one or a batch), list, read, and the operator's actions."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from incman.api.auth import KEY_SECURITY, Principal, authorized, require
from incman.api.body import DATABASE_DOWN, SINGLE_LIMIT, ApiError, not_found, read_body, read_json
from incman.api.clean_body import check_clean
from incman.api.ratelimit import limit_rate
from incman.api.views import event_to_api, note_to_api, occurrence_to_api
from incman.domain.event import (
    Checked,
    EventError,
    EventIn,
    normalise_event,
    parse_severity,
    parse_status,
)
from incman.ingest import event_ops
from incman.ingest.accept import Accepted, IngestBatch
from incman.ingest.group_commit import committer
from incman.ingest.producer import store
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.models import Event, EventIncident, Incident, Note, Occurrence
from incman.store.queries import linked_incidents

router = APIRouter(prefix="/api/v1", tags=["events"])
# The ingest endpoint, the hot path: it reads the key and counts the rate itself, without the
# dependency machinery (the OpenAPI document still declares its security schemes).
ingest_router = APIRouter(prefix="/api/v1", tags=["events"])
MAX_BATCH = 1000

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["device", "severity", "summary"],
    "properties": {
        "device": {"type": "string", "maxLength": 255},
        "component": {"type": "string"},
        "eventClass": {"type": "string"},
        "eventKey": {"type": "string"},
        "eventClassKey": {"type": "string"},
        "severity": {
            "oneOf": [{"type": "integer", "minimum": 0, "maximum": 5}, {"type": "string"}]
        },
        "summary": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "agent": {"type": "string"},
        "source": {"type": "string"},
        "dedupid": {"type": "string"},
        "details": {"type": "object"},
    },
}
INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        EVENT_SCHEMA,
                        {"type": "array", "items": EVENT_SCHEMA, "maxItems": MAX_BATCH},
                    ]
                }
            }
        },
    }
}


def store_events(events: list[EventIn], source: str = "api") -> IngestBatch:
    """Accept validated events in one committed transaction of their own."""
    return store(events, source)


def _store_alone(
    events: list[tuple[int, EventIn]],
) -> tuple[list[tuple[int, Accepted]], list[tuple[int, str]]]:
    """Each event in a transaction of its own: what the database refuses fails only it."""
    done: list[tuple[int, Accepted]] = []
    failed: list[tuple[int, str]] = []
    for index, ev in events:
        try:
            done.append((index, store_events([ev]).accepted[0]))
        except DATABASE_DOWN:
            raise
        except SQLAlchemyError as exc:
            failed.append((index, f"could not store: {exc.__class__.__name__}"))
    return done, failed


async def store_each(
    events: list[tuple[int, EventIn]], source: str = "api"
) -> tuple[list[tuple[int, Accepted]], list[tuple[int, str]]]:
    """Accept a batch together (joined with other requests' events: group commit); if the
    database refuses it, item by item."""
    if not events:
        return [], []
    try:
        accepted = await committer(source).submit([ev for _, ev in events])
        return list(zip([i for i, _ in events], accepted, strict=True)), []
    except DATABASE_DOWN:
        raise
    except SQLAlchemyError:
        return await run_in_threadpool(_store_alone, events)


def _invalid(exc: EventError, index: int | None = None) -> ApiError:
    field = exc.field if index is None else f"[{index}].{exc.field}"
    return ApiError(422, "invalid event", str(exc), field)


@ingest_router.post(
    "/events",
    openapi_extra={**INGEST_BODY, "security": KEY_SECURITY},
    status_code=201,
    summary="Send one event (201 new, 200 folded) or a batch (200, per-item results)",
)
async def post_events(request: Request) -> Response:
    await authorized(request, "ingest")
    await limit_rate(request)
    body = await read_body(request)
    if isinstance(body.doc, list):
        return await _post_batch(body.doc, body.checked)
    if body.size > SINGLE_LIMIT:
        raise ApiError(413, "payload too large", f"one event may be at most {SINGLE_LIMIT} bytes")
    try:
        ev = normalise_event(body.doc, checked=body.checked)
    except EventError as exc:
        raise _invalid(exc) from exc
    result = (await committer("api").submit([ev]))[0]
    return _json(result.to_api(), 201 if result.created else 200)


def _json(doc: Any, status: int) -> Response:
    """A JSON answer encoded by orjson (the ingest answers: plain dicts, no NaN)."""
    return Response(orjson.dumps(doc), status, media_type="application/json")


async def _post_batch(items: list[Any], checked: Checked) -> Response:
    if len(items) > MAX_BATCH:
        raise ApiError(
            413, "batch too large", f"{len(items)} events; at most {MAX_BATCH}", "events"
        )
    results: list[dict[str, Any]] = []
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, normalise_event(raw, checked=checked)))
        except EventError as exc:
            results.append({"index": index, "ok": False, "error": str(exc), "field": exc.field})
    done, failed = await store_each(valid)
    for index, accepted in done:
        results.append({"index": index, "ok": True, **accepted.to_api()})
    for index, error in failed:
        results.append({"index": index, "ok": False, "error": error})
    results.sort(key=lambda r: r["index"])
    return _json({"results": results}, 200)


def _encode_cursor(first_time: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{first_time.isoformat()}|{event_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(stamp), event_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "bad cursor", "the cursor is not one this API gave out", "cursor"
        ) from exc


def _list_events(filters: dict[str, Any], limit: int, cursor: str | None) -> dict[str, Any]:
    conds: list[Any] = []
    if filters.get("status"):
        conds.append(Event.status.in_([parse_status(s) for s in filters["status"].split(",")]))
    if filters.get("severity") is not None:
        conds.append(Event.severity == parse_severity(filters["severity"]))
    for name, column in (
        ("device", Event.device),
        ("dedupid", Event.dedupid),
        ("eventClass", Event.event_class),
        ("component", Event.component),
    ):
        if filters.get(name):
            conds.append(column == filters[name])
    if filters.get("incident") or filters.get("notificationId"):
        sub = select(EventIncident.event_id).join(
            Incident, Incident.id == EventIncident.incident_id
        )
        if filters.get("incident"):
            sub = sub.where(
                or_(Incident.number == filters["incident"], Incident.id == filters["incident"])
            )
        if filters.get("notificationId"):
            sub = sub.where(EventIncident.notification_id == filters["notificationId"])
        conds.append(Event.id.in_(sub))
    with session_scope() as session:
        total = session.scalar(select(func.count()).select_from(Event).where(*conds)) or 0
        query = select(Event).where(*conds)
        if cursor:
            stamp, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(Event.first_time < stamp, and_(Event.first_time == stamp, Event.id < last_id))
            )
        rows = list(
            session.scalars(
                query.order_by(Event.first_time.desc(), Event.id.desc()).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        links = linked_incidents(session, [r.id for r in rows])
        items = [event_to_api(r, links[r.id]) for r in rows]
    next_cursor = _encode_cursor(rows[-1].first_time, rows[-1].id) if more and rows else None
    return {"items": items, "total": total, "nextCursor": next_cursor}


@router.get("/events", summary="List events, newest first, with filters and cursor paging")
async def get_events(
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    device: str | None = None,
    dedupid: str | None = None,
    incident: str | None = None,
    notificationId: str | None = None,
    eventClass: str | None = None,
    component: str | None = None,
    _: Principal = Depends(require("viewer")),
) -> dict[str, Any]:
    filters = {
        "status": status,
        "severity": severity,
        "device": device,
        "dedupid": dedupid,
        "incident": incident,
        "notificationId": notificationId,
        "eventClass": eventClass,
        "component": component,
    }
    check_clean({k: v for k, v in filters.items() if v is not None}, "query")
    try:
        return await run_in_threadpool(_list_events, filters, limit, cursor)
    except EventError as exc:
        raise ApiError(400, "bad filter", str(exc), exc.field) from exc


def load_event_api(event_id: str) -> dict[str, Any] | None:
    with session_scope() as session:
        ev = session.get(Event, event_id)
        if ev is None:
            return None
        out = event_to_api(ev, linked_incidents(session, [ev.id])[ev.id])
        occs = session.scalars(
            select(Occurrence)
            .where(Occurrence.event_id == ev.id)
            .order_by(Occurrence.seq.desc())
            .limit(1000)
        )
        out["occurrences"] = [occurrence_to_api(o) for o in occs]
        notes = session.scalars(
            select(Note).where(Note.event_id == ev.id).order_by(Note.created_at)
        )
        out["notes"] = [note_to_api(n) for n in notes]
        return out


@router.get("/events/{event_id}", summary="One event, with its occurrences and notes")
async def get_event(event_id: str, _: Principal = Depends(require("viewer"))) -> dict[str, Any]:
    out = await run_in_threadpool(load_event_api, event_id)
    if out is None:
        raise not_found(f"event {event_id}")
    return out


def _operate(event_id: str, op: str, user: str) -> dict[str, Any] | None:
    with session_scope() as session:
        ev = session.get(Event, event_id, with_for_update=True)
        if ev is None:
            return None
        func_ = {
            "acknowledge": event_ops.acknowledge,
            "close": event_ops.close,
            "reopen": event_ops.reopen,
        }[op]
        func_(session, get_catalog(), ev, user)
        return event_to_api(ev, linked_incidents(session, [ev.id])[ev.id])


async def _event_action(event_id: str, op: str, principal: Principal) -> JSONResponse:
    try:
        out = await run_in_threadpool(_operate, event_id, op, principal.name)
    except event_ops.EventStateError as exc:
        raise ApiError(409, "conflict", str(exc), "status") from exc
    if out is None:
        raise not_found(f"event {event_id}")
    return JSONResponse(out)


@router.post("/events/{event_id}/acknowledge", summary="Acknowledge (assigns linked incidents)")
async def acknowledge_event(
    event_id: str, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    return await _event_action(event_id, "acknowledge", principal)


@router.post("/events/{event_id}/close", summary="Close (closes linked incidents)")
async def close_event(
    event_id: str, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    return await _event_action(event_id, "close", principal)


@router.post("/events/{event_id}/reopen", summary="Re-open (re-opens linked incidents)")
async def reopen_event(
    event_id: str, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    return await _event_action(event_id, "reopen", principal)


NOTE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 65536}},
                }
            }
        },
    }
}


def _add_note(event_id: str, user: str, text: str) -> dict[str, Any] | None:
    with session_scope() as session:
        ev = session.get(Event, event_id)
        if ev is None:
            return None
        return note_to_api(event_ops.add_note(session, get_catalog(), ev, user, text))


@router.post(
    "/events/{event_id}/notes",
    status_code=201,
    openapi_extra=NOTE_BODY,
    summary="Add a note (copied to linked incidents)",
)
async def post_note(
    event_id: str, request: Request, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    doc, _ = await read_json(request, SINGLE_LIMIT)
    text = doc.get("text") if isinstance(doc, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "invalid note", "text: a non-empty string is required", "text")
    if len(text) > 65536:
        raise ApiError(422, "invalid note", "text: at most 65536 characters", "text")
    out = await run_in_threadpool(_add_note, event_id, principal.name, text)
    if out is None:
        raise not_found(f"event {event_id}")
    return JSONResponse(out, status_code=201)
