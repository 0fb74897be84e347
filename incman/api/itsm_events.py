"""ITSM Events API (seed 004): `POST /events` and `POST /v1/events` create a request (201)
or update the open one an event matches within 24 h (200); each request is an incman event."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from incman.api.auth import Principal, require, require_event_action
from incman.api.body import SINGLE_LIMIT, ApiError
from incman.api.clean_body import check_clean, read_clean_json
from incman.api.ratelimit import limit_rate
from incman.domain.event import EventError, normalise_event
from incman.domain.formats.itsm_request import (
    ALIASES,
    CHOICES,
    FINAL_STATUSES,
    ID_PARAMETERS,
    MATCH_WINDOW,
    PARAMETERS,
    TEXT_LIMITS,
    TIME_PARAMETERS,
    Facts,
    ItsmError,
    apply_update,
    event_fields,
    facts_of,
    find_match,
    ignored_on_update,
    iso,
    new_record,
    note_is_new,
    parse_params,
)
from incman.ingest import event_ops
from incman.ingest.accept import accept
from incman.store import metrics
from incman.store.catalog import Catalog, get_catalog
from incman.store.db import session_scope
from incman.store.itsm_models import ItsmRequest
from incman.store.models import OPEN_EVENT_STATUSES, Event, Note, utcnow

router = APIRouter(tags=["itsm events"], dependencies=[Depends(limit_rate)])


def _schema(name: str) -> dict[str, Any]:
    name = ALIASES.get(name, name)
    if name in CHOICES:
        return {"type": "string", "enum": list(CHOICES[name])}
    if name in ID_PARAMETERS:
        return {"type": "integer", "minimum": 1}
    if name in TIME_PARAMETERS:
        return {"type": "string", "format": "date-time"}
    return {"type": "string", "maxLength": TEXT_LIMITS[name]}


_NAMES = (*PARAMETERS, *ALIASES)
EVENTS_OPENAPI: dict[str, Any] = {
    "parameters": [
        {"name": n, "in": "query", "required": False, "schema": _schema(n)} for n in _NAMES
    ],
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {n: _schema(n) for n in _NAMES},
                }
            }
        },
    },
}


def _row_facts(row: ItsmRequest, event_status: str) -> Facts:
    return Facts(
        source=row.source,
        service_instance=row.service_instance,
        ci=row.ci_key,
        subject=row.subject,
        note=row.note,
        requested_for=row.requested_for,
        account=row.account,
        created_at=row.created_at,
        open=row.status not in FINAL_STATUSES and event_status in OPEN_EVENT_STATUSES,
    )


def _serialise(session: Session, incoming: Facts) -> None:
    """One matcher at a time per source (PostgreSQL), so twin events make one request."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"itsm|{incoming.source}".encode()).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k)"),
            {"k": int.from_bytes(digest[:8], "big", signed=True)},
        )


def _candidates(session: Session, incoming: Facts, now: datetime) -> list[tuple[Any, Facts]]:
    query = (
        select(ItsmRequest, Event.status)
        .join(Event, Event.id == ItsmRequest.event_id)
        .where(
            ItsmRequest.source == incoming.source,
            ItsmRequest.created_at >= now - MATCH_WINDOW,
            ItsmRequest.status.not_in(FINAL_STATUSES),
        )
    )
    if incoming.ci:
        query = query.where(ItsmRequest.ci_key == incoming.ci)
    else:
        query = query.where(
            ItsmRequest.account == incoming.account, ItsmRequest.subject == incoming.subject
        )
    return [(row, _row_facts(row, status)) for row, status in session.execute(query)]


def _create(
    session: Session, catalog: Catalog, params: dict[str, Any], incoming: Facts, now: datetime
) -> dict[str, Any]:
    record = new_record(params, incoming.account, catalog.devices, now)
    row = ItsmRequest(
        account=incoming.account,
        source=incoming.source,
        service_instance=incoming.service_instance,
        ci_key=incoming.ci,
        subject=incoming.subject,
        note=incoming.note,
        requested_for=incoming.requested_for,
        status=record["status"],
        record={},
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    record["id"] = row.id
    try:
        ev_in = normalise_event(event_fields(record, incoming.note))
    except EventError as exc:
        raise ItsmError(exc.field, exc.reason) from exc
    batch = accept(session, [ev_in], catalog)
    row.event_id = batch.accepted[0].event_id
    record["eventId"] = row.event_id
    row.record = record
    event = session.get(Event, row.event_id)
    assert event is not None
    if incoming.note:
        event_ops.add_note(session, catalog, event, incoming.account, incoming.note)
    if record["status"] in FINAL_STATUSES:
        event_ops.close(session, catalog, event, incoming.account)
    return record


def _update(
    session: Session,
    catalog: Catalog,
    row: ItsmRequest,
    params: dict[str, Any],
    user: str,
    now: datetime,
) -> dict[str, Any]:
    record, changed = apply_update(row.record, params, user, now)
    event = session.get(Event, row.event_id, with_for_update=True)
    assert event is not None
    earlier = session.scalars(select(Note.text).where(Note.event_id == event.id))
    if note_is_new(params.get("note"), earlier):
        event_ops.add_note(session, catalog, event, user, params["note"])
        record["updated_at"] = iso(now)
        changed.append("note")
    if changed:
        row.record = record
        row.status = record["status"]
        row.updated_at = now
        event.details = {**(event.details or {}), "itsm": record}
        event.last_time = now
        event.updated_at = now
    if record["status"] in FINAL_STATUSES and event.status != "Closed":
        event_ops.close(session, catalog, event, user)
    return record


def submit(params: dict[str, Any], account: str) -> tuple[int, dict[str, Any]]:
    """Create a request or update the one the event matches; (HTTP status, record)."""
    catalog = get_catalog()
    now = utcnow()
    incoming = facts_of(params, account, catalog.devices)
    with session_scope() as session:
        _serialise(session, incoming)
        match = find_match(_candidates(session, incoming, now), incoming, now)
        if match is not None:
            session.refresh(match, with_for_update=True)
            return 200, _update(session, catalog, match, params, account, now)
        record = _create(session, catalog, params, incoming, now)
    metrics.EVENTS_ACCEPTED.labels(source="itsm-events").inc()
    return 201, record


async def _params(request: Request) -> dict[str, Any]:
    """The parameters: the query string, and a JSON object body when one is sent."""
    merged: dict[str, Any] = {}
    has_body = (
        request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    )
    if has_body:
        doc, _ = await read_clean_json(request, SINGLE_LIMIT)
        if not isinstance(doc, dict):
            raise ApiError(
                422, "invalid request", "the body must be a JSON object of parameters", "body"
            )
        merged.update(doc)
    for name in request.query_params:
        if name == "api_key":
            continue
        values = request.query_params.getlist(name)
        if len(set(values)) > 1:
            raise ApiError(422, "invalid parameter", f"{name}: given more than once", name)
        if name in merged and str(merged[name]) != values[0]:
            raise ApiError(422, "invalid parameter", f"{name}: differs in query and body", name)
        merged[name] = values[0]
    check_clean(merged, "query")
    return merged


async def _post(request: Request, principal: Principal) -> JSONResponse:
    raw = await _params(request)
    try:
        params = parse_params(raw)
        if params.get("status") in FINAL_STATUSES:  # it closes the request's event
            require_event_action(principal, "close", f"status {params['status']}")
        status, record = await run_in_threadpool(submit, params, principal.name)
    except ItsmError as exc:
        raise ApiError(422, "invalid parameter", str(exc), exc.field) from exc
    headers = {}
    ignored = ignored_on_update(params, record) if status == 200 else []
    if ignored:
        headers["X-Incman-Ignored"] = ",".join(ignored)
    return JSONResponse(record, status_code=status, headers=headers)


@router.post(
    "/events",
    openapi_extra=EVENTS_OPENAPI,
    status_code=201,
    summary="ITSM Events API: create a request (201) or update the matched one (200)",
)
async def post_events(
    request: Request, principal: Principal = Depends(require("ingest"))
) -> JSONResponse:
    return await _post(request, principal)


@router.post(
    "/v1/events",
    openapi_extra=EVENTS_OPENAPI,
    status_code=201,
    summary="ITSM Events API (versioned path): as POST /events",
)
async def post_v1_events(
    request: Request, principal: Principal = Depends(require("ingest"))
) -> JSONResponse:
    return await _post(request, principal)
