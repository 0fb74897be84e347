"""The console's other pages: incidents, the dead letter and the configuration.

Managers may replay and discard from the dead letter; the configuration is read-only, its
secrets masked."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from incman.api.config_objects import notification_view, trigger_view
from incman.api.console import data
from incman.api.console.session import Session
from incman.api.console.web import ConsoleError, need_role, read_form, redirect, render, signed_in
from incman.outbox.dead_letter import discard, list_dead, replay
from incman.store.catalog import catalog_cache, get_catalog

router = APIRouter(include_in_schema=False)


def _int(raw: str, default: int = 1) -> int:
    return int(raw) if raw.isdigit() and len(raw) < 10 else default


@router.get("/console/incidents")
async def incidents_page(request: Request, who: Session = Depends(signed_in)) -> HTMLResponse:
    params = request.query_params
    state = params.get("state", "")
    notification = params.get("notification", "")[:128]
    found = await run_in_threadpool(
        data.list_incidents, state, notification, _int(params.get("page", ""))
    )
    return render(
        request,
        who,
        "incidents.html",
        found=found,
        state=state,
        notification=notification,
        states=data.INCIDENT_STATES,
        notifications=sorted(get_catalog().notifications),
    )


@router.get("/console/incidents/{ident}")
async def incident_page(
    ident: str, request: Request, who: Session = Depends(signed_in)
) -> HTMLResponse:
    manager = who.principal.has_role("manager")  # the remote's error text: managers only
    found = await run_in_threadpool(data.incident_detail, ident, manager)
    if found is None:
        raise ConsoleError(404, "Incident not found", f"There is no incident {ident}.")
    return render(request, who, "incident.html", **found)


@router.get("/console/dead-letter")
async def dead_letter_page(request: Request, who: Session = Depends(signed_in)) -> HTMLResponse:
    need_role(who, "operator", "The dead letter")
    cursor = request.query_params.get("cursor", "")
    manager = who.principal.has_role("manager")  # the remote's error text: managers only
    found = await run_in_threadpool(list_dead, 100, _int(cursor, 0) or None, None, manager)
    return render(request, who, "dead_letter.html", found=found)


@router.post("/console/dead-letter")
async def dead_letter_act(request: Request, who: Session = Depends(signed_in)) -> Response:
    """Replay or discard the selected dead actions (managers and admins)."""
    form = await read_form(request, who.csrf)
    need_role(who, "manager", "Replaying or discarding dead actions")
    ids = [int(i) for i in form.all("action_id") if i.isdigit() and len(i) < 19]
    op = form.get("op")
    if op not in ("replay", "discard"):
        raise ConsoleError(400, "Unknown action", f"{op!r} is not replay or discard.")
    if not ids:
        return redirect("/console/dead-letter", "warn", ["Select at least one action first."])
    func = replay if op == "replay" else discard
    result = await run_in_threadpool(func, ids, f"console:{who.principal.name}")
    word = "replayed" if op == "replay" else "discarded"
    lines = [f"{len(result.replayed)} action(s) {word}: {', '.join(map(str, result.replayed))}"]
    if result.not_dead or result.missing:
        lines.append(
            f"left alone (no longer dead or gone): "
            f"{', '.join(map(str, result.not_dead + result.missing))}"
        )
    level = "ok" if not (result.not_dead or result.missing) else "warn"
    return redirect("/console/dead-letter", level if result.replayed else "error", lines)


@router.get("/console/config")
async def config_page(request: Request, who: Session = Depends(signed_in)) -> HTMLResponse:
    catalog_cache.invalidate()
    catalog = await run_in_threadpool(get_catalog)
    triggers = [trigger_view(t) for t in sorted(catalog.triggers.values(), key=lambda t: t.id)]
    notifications = [
        notification_view(n) for n in sorted(catalog.notifications.values(), key=lambda n: n.id)
    ]
    users = [
        {
            "name": u.name,
            "role": u.role,
            "groups": list(u.groups),
            "password": bool(u.password_hash),
        }
        for u in sorted(catalog.users.values(), key=lambda u: u.name)
        if who.principal.has_role("manager")  # who may sign in is for managers to see
    ]
    return render(
        request,
        who,
        "config.html",
        triggers=triggers,
        notifications=notifications,
        devices=sorted(catalog.devices.values(), key=lambda d: str(d.get("id"))),
        users=users,
        suppression=catalog.suppression,
    )
