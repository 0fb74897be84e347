"""`POST /api/v1/alertmanager`: the Prometheus Alertmanager webhook (version 4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from incman.api.auth import Principal, require
from incman.api.body import ApiError
from incman.api.clean_body import read_clean_json
from incman.api.events import store_each
from incman.api.ratelimit import limit_rate
from incman.domain.event import EventError, EventIn, normalise_event
from incman.domain.formats.alertmanager import MAX_ALERTS, AlertError, alert_event, webhook_alerts

router = APIRouter(prefix="/api/v1", tags=["alertmanager"], dependencies=[Depends(limit_rate)])

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
WEBHOOK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["alerts"],
                    "properties": {
                        "version": {"type": "string", "enum": ["4"]},
                        "status": {"type": "string", "enum": ["firing", "resolved"]},
                        "receiver": {"type": "string"},
                        "groupKey": {"type": "string"},
                        "externalURL": {"type": "string"},
                        "truncatedAlerts": {"type": "integer"},
                        "groupLabels": _STRINGS,
                        "commonLabels": _STRINGS,
                        "commonAnnotations": _STRINGS,
                        "alerts": {
                            "type": "array",
                            "maxItems": MAX_ALERTS,
                            "items": {
                                "type": "object",
                                "required": ["labels"],
                                "properties": {
                                    "status": {"type": "string", "enum": ["firing", "resolved"]},
                                    "labels": _STRINGS,
                                    "annotations": _STRINGS,
                                    "startsAt": {"type": "string"},
                                    "endsAt": {"type": "string"},
                                    "generatorURL": {"type": "string"},
                                    "fingerprint": {"type": "string"},
                                },
                            },
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/alertmanager",
    openapi_extra=WEBHOOK_BODY,
    summary="Alertmanager webhook v4: each alert an event, resolved alerts clear",
)
async def alertmanager_webhook(
    request: Request, _: Principal = Depends(require("ingest"))
) -> JSONResponse:
    doc, _size = await read_clean_json(request)
    try:
        alerts = webhook_alerts(doc)
    except AlertError as exc:
        raise ApiError(422, "invalid webhook message", exc.reason, exc.field) from exc
    results: list[dict[str, Any]] = []
    valid: list[tuple[int, EventIn]] = []
    for index, alert in enumerate(alerts):
        try:
            valid.append((index, normalise_event(alert_event(alert, doc))))
        except (AlertError, EventError) as exc:
            results.append(
                {
                    "index": index,
                    "ok": False,
                    "error": str(exc),
                    "field": f"alerts[{index}].{exc.field}",
                }
            )
    done, failed = await store_each(valid, "alertmanager")
    results += [{"index": i, "ok": True, **accepted.to_api()} for i, accepted in done]
    results += [{"index": i, "ok": False, "error": error} for i, error in failed]
    results.sort(key=lambda r: r["index"])
    return JSONResponse({"results": results})
