"""Triggers and notifications over the API (role manager).

What the configuration file declares is read-only here (409); what the API creates lives
in the database. Plugin secrets are write-only: masked in answers, kept when an edit leaves
them out or sends the mask back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from incman.api.auth import Principal, require
from incman.api.body import SINGLE_LIMIT, ApiError, not_found
from incman.api.clean_body import read_clean_json
from incman.api.notification_rows import (
    invalid,
    merged_config,
    parsed_notification,
    stored_definition,
)
from incman.domain.secret import mask_config
from incman.ingest.manual import usable_notifications
from incman.store.catalog import (
    Catalog,
    CatalogError,
    NotificationDef,
    TriggerDef,
    catalog_cache,
    get_catalog,
    parse_trigger,
)
from incman.store.db import session_scope
from incman.store.models import AuditEntry, Notification, Trigger, utcnow

router = APIRouter(prefix="/api/v1", tags=["configuration"])

TRIGGER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128},
        "enabled": {"type": "boolean"},
        "when": {"type": "object"},
    },
}
NOTIFICATION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128},
        "integration": {"type": "string"},
        "enabled": {"type": "boolean"},
        "triggers": {"type": "array", "items": {"type": "string"}},
        "subscribers": {"type": "array", "items": {"type": "string"}},
        "cycletime": {"type": "integer", "minimum": 1},
        "options": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "config": {"type": "object"},
        "field_mapping": {"type": "string"},
        "suppression": {"type": "object"},
    },
}


def _body(schema: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {**schema, "required": list(required)}}},
        }
    }


def _fresh() -> Catalog:
    catalog_cache.invalidate()
    return get_catalog()


def secret_keys(integration: str, *configs: dict[str, Any]) -> frozenset[str]:
    """Keys of these configs kept write-only: the plugin's declared secrets and any key it
    does not declare (incman.integrations.registry.masked_keys)."""
    from incman.integrations.registry import masked_keys

    return masked_keys(integration, *configs)


def trigger_view(trig: TriggerDef) -> dict[str, Any]:
    return {
        "id": trig.id,
        "enabled": trig.enabled,
        "when": trig.when,
        "source": trig.source,
        "readOnly": trig.source == "file",
    }


def notification_view(notif: NotificationDef) -> dict[str, Any]:
    out = notif.to_dict()
    out["config"] = mask_config(notif.config, secret_keys(notif.integration, notif.config))
    out["readOnly"] = notif.source == "file"
    return out


async def _object(request: Request, path_id: str | None = None) -> dict[str, Any]:
    doc, _ = await read_clean_json(request, SINGLE_LIMIT)
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid object", "the body must be a JSON object")
    if path_id is not None:
        if doc.get("id", path_id) != path_id:
            raise ApiError(
                422,
                "invalid object",
                f"id: {doc.get('id')!r} differs from the path's {path_id!r}",
                "id",
            )
        doc = {**doc, "id": path_id}
    return doc


def _read_only(kind: str, ident: str) -> HTTPException:
    return HTTPException(
        409,
        f"{kind} {ident} is declared in the configuration file and is "
        "read-only over the API; change the file instead",
    )


def _saved(
    save: Callable[..., tuple[int, dict[str, Any]]],
    doc: dict[str, Any],
    principal: Principal,
    create_only: bool,
) -> tuple[int, dict[str, Any]]:
    """Save; two creators of one id at once: the second gets 409."""
    try:
        return save(doc, principal, create_only)
    except IntegrityError as exc:
        raise HTTPException(
            409, f"{doc.get('id')} was created at the same time; read it and retry"
        ) from exc


def _check_id(doc: dict[str, Any], kind: str) -> None:
    ident = doc.get("id")
    if isinstance(ident, str) and (len(ident) > 128 or "/" in ident or not ident.isprintable()):
        raise ApiError(422, f"invalid {kind}", "id: at most 128 printable characters, no '/'", "id")


def _audit(session: Any, principal: Principal, action: str, target: str) -> None:
    session.add(AuditEntry(actor=principal.name, action=action, target=target, detail={}))


# -- triggers ------------------------------------------------------------------------------


def _save_trigger(
    doc: dict[str, Any], principal: Principal, create_only: bool
) -> tuple[int, dict[str, Any]]:
    _check_id(doc, "trigger")
    try:
        trig = parse_trigger(doc, "", source="api")
    except CatalogError as exc:
        raise invalid("trigger", exc) from exc
    existing = _fresh().triggers.get(trig.id)
    if existing is not None and existing.source == "file":
        raise _read_only("trigger", trig.id)
    with session_scope() as session:
        row = session.get(Trigger, trig.id, with_for_update=True)
        if row is not None and create_only:
            raise HTTPException(409, f"trigger {trig.id} exists; PUT replaces it")
        status = 200 if row is not None else 201
        if row is None:
            row = Trigger(id=trig.id)
            session.add(row)
        row.enabled, row.when, row.updated_at = trig.enabled, trig.when, utcnow()
        _audit(session, principal, "trigger-save", f"trigger:{trig.id}")
    catalog_cache.invalidate()
    return status, trigger_view(trig)


def _delete_trigger(ident: str, principal: Principal) -> None:
    catalog = _fresh()
    trig = catalog.triggers.get(ident)
    if trig is None:
        raise not_found(f"trigger {ident}")
    if trig.source == "file":
        raise _read_only("trigger", ident)
    users = sorted(n.id for n in catalog.notifications.values() if ident in n.triggers)
    if users:
        raise HTTPException(409, f"trigger {ident} is used by notifications {', '.join(users)}")
    with session_scope() as session:
        row = session.get(Trigger, ident)
        if row is not None:
            session.delete(row)
            _audit(session, principal, "trigger-delete", f"trigger:{ident}")
    catalog_cache.invalidate()


@router.get("/triggers", summary="Triggers: the configuration file's (read-only) and the API's")
async def list_triggers(_: Principal = Depends(require("manager"))) -> dict[str, Any]:
    catalog = await run_in_threadpool(_fresh)
    items = [trigger_view(t) for t in sorted(catalog.triggers.values(), key=lambda t: t.id)]
    return {"items": items, "total": len(items)}


@router.get("/triggers/{trigger_id}", summary="One trigger")
async def get_trigger(
    trigger_id: str, _: Principal = Depends(require("manager"))
) -> dict[str, Any]:
    trig = (await run_in_threadpool(_fresh)).triggers.get(trigger_id)
    if trig is None:
        raise not_found(f"trigger {trigger_id}")
    return trigger_view(trig)


@router.post(
    "/triggers",
    status_code=201,
    openapi_extra=_body(TRIGGER_SCHEMA, ("id",)),
    summary="Create a trigger (409 when the id exists)",
)
async def create_trigger(
    request: Request, principal: Principal = Depends(require("manager"))
) -> JSONResponse:
    status, out = await run_in_threadpool(
        _saved, _save_trigger, await _object(request), principal, True
    )
    return JSONResponse(out, status_code=status)


@router.put(
    "/triggers/{trigger_id}",
    openapi_extra=_body(TRIGGER_SCHEMA),
    summary="Create or replace a trigger (201 created, 200 replaced)",
)
async def put_trigger(
    trigger_id: str, request: Request, principal: Principal = Depends(require("manager"))
) -> JSONResponse:
    doc = await _object(request, trigger_id)
    status, out = await run_in_threadpool(_saved, _save_trigger, doc, principal, False)
    return JSONResponse(out, status_code=status)


@router.delete("/triggers/{trigger_id}", status_code=204, summary="Delete a trigger")
async def delete_trigger(
    trigger_id: str, principal: Principal = Depends(require("manager"))
) -> Response:
    await run_in_threadpool(_delete_trigger, trigger_id, principal)
    return Response(status_code=204)


# -- notifications -------------------------------------------------------------------------


def _save_notification(
    doc: dict[str, Any], principal: Principal, create_only: bool
) -> tuple[int, dict[str, Any]]:
    _check_id(doc, "notification")
    catalog = _fresh()
    ident = doc.get("id")
    existing = catalog.notifications.get(ident) if isinstance(ident, str) else None
    if existing is not None and existing.source == "file":
        raise _read_only("notification", str(ident))
    with session_scope() as session:
        row = (
            session.get(Notification, ident, with_for_update=True)
            if isinstance(ident, str)
            else None
        )
        if row is not None and create_only:
            raise HTTPException(409, f"notification {ident} exists; PUT replaces it")
        notif = parsed_notification(doc, merged_config(doc, row), catalog)
        definition = stored_definition(notif)
        status = 200 if row is not None else 201
        if row is None:
            row = Notification(id=notif.id)
            session.add(row)
        row.integration, row.enabled = notif.integration, notif.enabled
        row.definition, row.updated_at = definition, utcnow()
        _audit(session, principal, "notification-save", f"notification:{notif.id}")
    catalog_cache.invalidate()
    return status, notification_view(notif)


def _delete_notification(ident: str, principal: Principal) -> None:
    notif = _fresh().notifications.get(ident)
    if notif is None:
        raise not_found(f"notification {ident}")
    if notif.source == "file":
        raise _read_only("notification", ident)
    with session_scope() as session:
        row = session.get(Notification, ident)
        if row is not None:
            session.delete(row)
            _audit(session, principal, "notification-delete", f"notification:{ident}")
    catalog_cache.invalidate()


@router.get("/notifications", summary="Notifications (manual=true: those this key may use by hand)")
async def list_notifications(
    manual: bool = Query(False), principal: Principal = Depends(require("operator"))
) -> dict[str, Any]:
    if not manual and not principal.has_role("manager"):
        raise HTTPException(
            403,
            f"role manager or higher is required ({principal.name} is "
            f"{principal.role}; manual=true lists what it may use)",
        )
    catalog = await run_in_threadpool(_fresh)
    notifs = (
        usable_notifications(catalog, principal.name, principal.role, principal.groups)
        if manual
        else list(catalog.notifications.values())
    )
    notifs.sort(key=lambda n: n.id)
    items = [notification_view(n) for n in notifs]
    return {"items": items, "total": len(items)}


@router.get("/notifications/{notification_id}", summary="One notification (secrets masked)")
async def get_notification(
    notification_id: str, _: Principal = Depends(require("manager"))
) -> dict[str, Any]:
    notif = (await run_in_threadpool(_fresh)).notifications.get(notification_id)
    if notif is None:
        raise not_found(f"notification {notification_id}")
    return notification_view(notif)


@router.post(
    "/notifications",
    status_code=201,
    openapi_extra=_body(NOTIFICATION_SCHEMA, ("id", "integration")),
    summary="Create a notification (409 when the id exists)",
)
async def create_notification(
    request: Request, principal: Principal = Depends(require("manager"))
) -> JSONResponse:
    doc = await _object(request)
    status, out = await run_in_threadpool(_saved, _save_notification, doc, principal, True)
    return JSONResponse(out, status_code=status)


@router.put(
    "/notifications/{notification_id}",
    openapi_extra=_body(NOTIFICATION_SCHEMA, ("integration",)),
    summary="Create or replace a notification; secrets left out are kept",
)
async def put_notification(
    notification_id: str, request: Request, principal: Principal = Depends(require("manager"))
) -> JSONResponse:
    doc = await _object(request, notification_id)
    status, out = await run_in_threadpool(_saved, _save_notification, doc, principal, False)
    return JSONResponse(out, status_code=status)


@router.delete("/notifications/{notification_id}", status_code=204, summary="Delete a notification")
async def delete_notification(
    notification_id: str, principal: Principal = Depends(require("manager"))
) -> Response:
    await run_in_threadpool(_delete_notification, notification_id, principal)
    return Response(status_code=204)
