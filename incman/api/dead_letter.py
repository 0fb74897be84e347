"""Dead letter over HTTP: list the actions that failed for good and replay them (operator+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from incman.api.auth import Principal, require
from incman.api.body import ApiError, read_json
from incman.outbox.dead_letter import list_dead, replay, replay_all

router = APIRouter(prefix="/api/v1", tags=["dead letter"])
MAX_IDS = 10_000
REPLAY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["ids"],
                            "properties": {
                                "ids": {
                                    "type": "array",
                                    "items": {"type": "integer"},
                                    "minItems": 1,
                                    "maxItems": MAX_IDS,
                                }
                            },
                        },
                        {
                            "type": "object",
                            "required": ["all"],
                            "properties": {"all": {"type": "boolean", "enum": [True]}},
                        },
                    ]
                }
            }
        },
    }
}


@router.get("/dead-letter", summary="Actions that failed permanently or ran out of retries")
async def get_dead_letter(
    limit: int = Query(100, ge=1, le=1000),
    cursor: int | None = Query(None, ge=1),
    notificationId: str | None = None,
    principal: Principal = Depends(require("operator")),
) -> dict[str, Any]:
    """`lastError` says why without the remote's words; managers and admins also get
    `errorDetail`, the whole text with the remote's answer (trimmed)."""
    detail = principal.has_role("manager")
    return await run_in_threadpool(list_dead, limit, cursor, notificationId, detail)


def parse_replay_body(body: Any) -> list[int] | None:
    """The ids to replay, or None for all of them; ApiError (422) with the reason."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid request", 'the body must be {"ids": [...]} or {"all": true}')
    unknown = sorted(set(body) - {"ids", "all"})
    if unknown:
        raise ApiError(422, "invalid request", f"unknown field {unknown[0]!r}", unknown[0])
    if "all" in body:
        if body["all"] is not True:
            raise ApiError(422, "invalid request", "all: must be true", "all")
        if "ids" in body:
            raise ApiError(422, "invalid request", "give ids or all, not both", "ids")
        return None
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        raise ApiError(
            422, "invalid request", "ids: a non-empty list of action ids is required", "ids"
        )
    if len(ids) > MAX_IDS:
        raise ApiError(422, "invalid request", f"ids: at most {MAX_IDS} per call", "ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        raise ApiError(422, "invalid request", "ids: action ids are positive integers", "ids")
    return ids


@router.post("/dead-letter/replay", summary="Send dead actions again", openapi_extra=REPLAY_BODY)
async def post_replay(
    request: Request, principal: Principal = Depends(require("operator"))
) -> dict[str, Any]:
    body, _ = await read_json(request)
    ids = parse_replay_body(body)
    actor = f"api:{principal.name}"
    if ids is None:
        result = await run_in_threadpool(replay_all, actor)
    else:
        result = await run_in_threadpool(replay, ids, actor)
    return result.to_api()
