"""ITSM Events API (seed 004): `POST /events` and `POST /v1/events`.

Each creates a request (201) or updates the open one the event matches within 24 h (200); each
request is an incman event."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from incman.api.auth import Principal, require, require_event_action
from incman.api.body import SINGLE_LIMIT, ApiError
from incman.api.clean_body import check_clean, read_clean_json
from incman.api.ratelimit import limit_rate
from incman.domain.formats.itsm_match import ignored_on_update
from incman.domain.formats.itsm_request import (
    ALIASES,
    CHOICES,
    FINAL_STATUSES,
    ID_PARAMETERS,
    PARAMETERS,
    TEXT_LIMITS,
    TIME_PARAMETERS,
    ItsmError,
    parse_params,
)
from incman.ingest.itsm_requests import submit

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
