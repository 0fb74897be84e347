"""`POST /v2/enqueue`: PagerDuty Events API v2, so any tool that can page can send to incman.

trigger → an event whose dedupid is the dedup_key (repeats fold), acknowledge →
Acknowledged (role operator, as everywhere), resolve → a clear of the open event with that
dedup_key. The API key may
come as the `routing_key` when no header carries one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from incman.api.auth import Principal, authenticate, presented_key, require_event_action
from incman.api.body import SINGLE_LIMIT, ApiError, read_json
from incman.api.ratelimit import caller_identity, check_rate
from incman.domain.event import EventError, EventIn, normalise_event
from incman.domain.formats.pagerduty import (
    ACTIONS,
    MAX_DEDUP_KEY,
    SEVERITIES,
    InvalidEvent,
    parse_enqueue,
)
from incman.domain.text import bad_text_path
from incman.ingest import event_ops
from incman.ingest.accept import accept
from incman.ingest.group_commit import committer
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.models import OPEN_EVENT_STATUSES, Event

router = APIRouter(tags=["pagerduty"])

ENQUEUE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["event_action"],
                    "properties": {
                        "routing_key": {"type": "string"},
                        "event_action": {"type": "string", "enum": list(ACTIONS)},
                        "dedup_key": {"type": "string", "maxLength": MAX_DEDUP_KEY},
                        "payload": {
                            "type": "object",
                            "required": ["summary", "source", "severity"],
                            "properties": {
                                "summary": {"type": "string", "maxLength": 1024},
                                "source": {"type": "string"},
                                "severity": {"type": "string", "enum": list(SEVERITIES)},
                                "timestamp": {"type": "string"},
                                "component": {"type": "string"},
                                "group": {"type": "string"},
                                "class": {"type": "string"},
                                "custom_details": {"type": "object"},
                            },
                        },
                        "client": {"type": "string"},
                        "client_url": {"type": "string"},
                        "links": {"type": "array"},
                        "images": {"type": "array"},
                    },
                }
            }
        },
    }
}


def _invalid(errors: list[str]) -> JSONResponse:
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status_code=400,
    )


def _open_events(session: Any, dedup_key: str) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.dedupid == dedup_key, Event.status.in_(OPEN_EVENT_STATUSES))
            .with_for_update()
        )
    )


def _acknowledge(dedup_key: str, user: str) -> list[str]:
    with session_scope() as session:
        events = _open_events(session, dedup_key)
        for ev in events:
            if ev.status != "Acknowledged":
                event_ops.acknowledge(session, get_catalog(), ev, user)
        return [ev.id for ev in events]


def _resolve(dedup_key: str) -> list[str]:
    """A clear with the open event's own device, component, eventClass and eventKey."""
    with session_scope() as session:
        events = _open_events(session, dedup_key)
        for ev in events:
            clear = EventIn(
                device=ev.device,
                component=ev.component,
                event_class=ev.event_class,
                event_key=ev.event_key,
                severity=0,
                summary=f"Resolved: {ev.summary}",
                agent="pagerduty-events-v2",
                dedupid=dedup_key,
            )
            accept(session, [clear], get_catalog())
        return [ev.id for ev in events]


def _caller(request: Request, doc: Any) -> Principal:
    key = presented_key(request)
    routing_key = doc.get("routing_key") if isinstance(doc, dict) else None
    if not key and isinstance(routing_key, str) and routing_key:
        key = routing_key
    principal = authenticate(request, key=key)
    if not principal.has_role("ingest"):
        raise HTTPException(
            403, f"role ingest or higher is required ({principal.name} is {principal.role})"
        )
    check_rate(caller_identity(request, key))
    return principal


@router.post(
    "/v2/enqueue",
    openapi_extra=ENQUEUE_BODY,
    status_code=202,
    summary="PagerDuty Events API v2: trigger, acknowledge or resolve by dedup_key",
)
async def enqueue_event(request: Request) -> JSONResponse:
    try:
        doc, _ = await read_json(request, SINGLE_LIMIT)
    except ApiError as exc:
        if exc.status != 400:
            raise
        return _invalid([exc.reason])
    principal = _caller(request, doc)
    bad = bad_text_path(doc, "event")
    if bad:
        return _invalid([f"'{bad}' holds NUL characters or unpaired surrogates"])
    try:
        event = parse_enqueue(doc)
        ev_in = normalise_event(event.event) if event.event is not None else None
    except InvalidEvent as exc:
        return _invalid(exc.errors)
    except EventError as exc:
        return _invalid([f"event: {exc}"])
    if event.action == "acknowledge":
        require_event_action(principal, "acknowledge", "event_action acknowledge")
    if ev_in is not None:
        event_ids = [(await committer("pagerduty").submit([ev_in]))[0].event_id]
    elif event.action == "acknowledge":
        event_ids = await run_in_threadpool(_acknowledge, event.dedup_key, principal.name)
    else:
        event_ids = await run_in_threadpool(_resolve, event.dedup_key)
    return JSONResponse(
        {
            "status": "success",
            "message": "Event processed",
            "dedup_key": event.dedup_key,
            "eventIds": event_ids,
        },
        status_code=202,
    )
