"""Event management (seed 003): batch annotate and status, one answer with per-item success.

Each item is its own transaction: a bad item fails alone and leaves nothing half-written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from incman.api.auth import Principal, require
from incman.api.body import DATABASE_DOWN, ApiError
from incman.api.clean_body import read_clean_json
from incman.api.ratelimit import limit_rate
from incman.domain.formats.event_management import (
    MAX_ITEMS,
    AnnotationItem,
    ItemError,
    StatusItem,
    batch_items,
    item_echo,
    parse_annotation,
    parse_status_item,
    status_steps,
)
from incman.ingest import event_ops
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.models import AuditEntry, Event, Note, Occurrence, utcnow

router = APIRouter(
    prefix="/v1/event-management", tags=["event management"], dependencies=[Depends(limit_rate)]
)

_ADDRESS = {"eventId": {"type": "string"}, "occurrenceId": {"type": "string"}}
ANNOTATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["annotations"],
                    "properties": {
                        "annotations": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_ITEMS,
                            "items": {
                                "type": "object",
                                "required": ["eventId", "occurrenceId"],
                                "properties": {
                                    **_ADDRESS,
                                    "annotationId": {"type": "string"},
                                    "annotation": {"type": "string"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}
STATUS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["statuses"],
                    "properties": {
                        "statuses": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_ITEMS,
                            "items": {
                                "type": "object",
                                "required": ["eventId", "occurrenceId"],
                                "properties": {
                                    **_ADDRESS,
                                    "acknowledged": {"type": "boolean"},
                                    "statusWrapper": {
                                        "type": "object",
                                        "properties": {"status": {"type": "string"}},
                                    },
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def _event_at(session: Session, event_id: str, occurrence_id: str) -> Event:
    """The addressed event, locked; the occurrence must be one of its own."""
    occ = session.get(Occurrence, occurrence_id)
    if occ is None or occ.event_id != event_id:
        raise ItemError("occurrenceId", f"no occurrence {occurrence_id} of event {event_id}")
    ev = session.get(Event, event_id, with_for_update=True)
    if ev is None:
        raise ItemError("eventId", f"no event {event_id}")
    return ev


def _annotate(item: AnnotationItem, user: str) -> dict[str, Any]:
    with session_scope() as session:
        ev = _event_at(session, item.event_id, item.occurrence_id)
        if item.annotation_id is None:
            note = event_ops.add_note(
                session, get_catalog(), ev, user, item.text, occurrence_id=item.occurrence_id
            )
            return {"annotationId": note.id}
        note_row = session.get(Note, item.annotation_id)
        if note_row is None or note_row.event_id != ev.id:
            raise ItemError("annotationId", f"no annotation {item.annotation_id} on event {ev.id}")
        # The replaced text is kept on the event; incidents keep the text they were sent.
        note_row.text = item.text
        note_row.updated_at = utcnow()
        session.add(
            AuditEntry(
                actor=user,
                action="annotation-update",
                target=f"event:{ev.id}",
                detail={"annotationId": note_row.id},
            )
        )
        return {}


def _set_plain(session: Session, ev: Event, status: str, user: str) -> None:
    """Status changes that queue no incident action (no notification option follows them)."""
    now = utcnow()
    ev.status = status
    ev.updated_at = now
    if status == "New":
        ev.acknowledged_by = None
        ev.acknowledgement_time = None
    session.add(
        AuditEntry(
            actor=user, action=f"status-{status.lower()}", target=f"event:{ev.id}", detail={}
        )
    )


def _set_status(item: StatusItem, user: str) -> dict[str, Any]:
    ops: dict[str, Callable[..., Any]] = {
        "acknowledge": event_ops.acknowledge,
        "close": event_ops.close,
        "reopen": event_ops.reopen,
    }
    with session_scope() as session:
        ev = _event_at(session, item.event_id, item.occurrence_id)
        catalog = get_catalog()
        for step in status_steps(ev.status, item.target):
            if step in ops:
                ops[step](session, catalog, ev, user)
            else:
                _set_plain(session, ev, "New" if step == "set_new" else "Suppressed", user)
    return {}


def _run_items(
    raws: list[Any],
    parse: Callable[[Any], Any],
    do: Callable[[Any, str], dict[str, Any]],
    user: str,
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for raw in raws:
        answer = item_echo(raw)
        try:
            answer.update(do(parse(raw), user))
            answer["success"] = True
        except ItemError as exc:
            answer.update({"success": False, "error": str(exc)})
        except event_ops.EventStateError as exc:
            answer.update({"success": False, "error": f"status: {exc}"})
        except DATABASE_DOWN:
            raise
        except SQLAlchemyError as exc:
            answer.update({"success": False, "error": f"could not store: {exc.__class__.__name__}"})
        answers.append(answer)
    return answers


async def _batch(
    request: Request,
    key: str,
    answer_key: str,
    parse: Callable[[Any], Any],
    do: Callable[[Any, str], dict[str, Any]],
    principal: Principal,
) -> JSONResponse:
    doc, _ = await read_clean_json(request)
    try:
        raws = batch_items(doc, key)
    except ItemError as exc:
        raise ApiError(422, "invalid request", exc.reason, exc.field) from exc
    answers = await run_in_threadpool(_run_items, raws, parse, do, principal.name)
    return JSONResponse({answer_key: answers})


@router.post(
    "/annotate",
    openapi_extra=ANNOTATE_BODY,
    summary="Create (no annotationId) or replace (annotationId) event annotations",
)
async def annotate(
    request: Request, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    return await _batch(
        request, "annotations", "annotationResponses", parse_annotation, _annotate, principal
    )


@router.post(
    "/status",
    openapi_extra=STATUS_BODY,
    summary="Set event status by acknowledged or statusWrapper.status",
)
async def set_status(
    request: Request, principal: Principal = Depends(require("operator"))
) -> JSONResponse:
    return await _batch(
        request, "statuses", "statusResponses", parse_status_item, _set_status, principal
    )
