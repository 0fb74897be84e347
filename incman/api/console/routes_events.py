"""The events pages: the list, one event, one device, and the operator's actions on events.

The list has filters, sorting and pages, and is refreshed in place; the operator's actions
apply to the selected events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from incman.api.console import data, operate
from incman.api.console.session import Session
from incman.api.console.web import (
    ConsoleError,
    need_role,
    read_form,
    redirect,
    render,
    signed_in,
)
from incman.domain.event import SEVERITY_NAMES
from incman.ingest.manual import usable_notifications
from incman.store.catalog import get_catalog

router = APIRouter(include_in_schema=False)


@router.get("/console")
@router.get("/console/")
async def console_home() -> Response:
    return RedirectResponse("/console/events", status_code=303)


def _menu(who: Session) -> list[str]:
    """The notifications this user may use by hand (Create Incident), hidden ones left out."""
    p = who.principal
    return sorted(n.id for n in usable_notifications(get_catalog(), p.name, p.role, p.groups))


def _events_context(request: Request, who: Session) -> dict[str, Any]:
    q = data.EventQuery.from_params(request.query_params)
    found = data.list_events(q)
    return {
        "q": q,
        "found": found,
        "statuses": data.STATUSES,
        "sorts": data.SORTS,
        "page_sizes": data.PAGE_SIZES,
        "severities": list(enumerate(SEVERITY_NAMES)),
        "menu": _menu(who) if who.principal.has_role("operator") else [],
        "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }


@router.get("/console/events")
async def events_page(request: Request, who: Session = Depends(signed_in)) -> HTMLResponse:
    context = await run_in_threadpool(_events_context, request, who)
    return render(request, who, "events.html", **context)


@router.get("/console/events/rows")
async def events_rows(request: Request, who: Session = Depends(signed_in)) -> HTMLResponse:
    """The table alone, for refreshing the list without reloading the page."""
    context = await run_in_threadpool(_events_context, request, who)
    context["back"] = "/console/events" + (f"?{request.url.query}" if request.url.query else "")
    response = render(request, who, "events_live.html", fragment=True, **context)
    response.headers["X-Incman-Fragment"] = "events"
    return response


@router.get("/console/events/{event_id}")
async def event_page(
    event_id: str, request: Request, who: Session = Depends(signed_in)
) -> HTMLResponse:
    manager = who.principal.has_role("manager")  # the remote's error text: managers only
    found = await run_in_threadpool(data.event_detail, event_id, manager)
    if found is None:
        raise ConsoleError(404, "Event not found", f"There is no event {event_id}.")
    menu = _menu(who) if who.principal.has_role("operator") else []
    return render(request, who, "event.html", menu=menu, back=request.url.path, **found)


@router.get("/console/devices/{device:path}")
async def device_page(
    device: str, request: Request, who: Session = Depends(signed_in)
) -> HTMLResponse:
    record = get_catalog().devices.get(device)
    summary = await run_in_threadpool(data.device_summary, device)
    if record is None and not summary["total"]:
        raise ConsoleError(404, "Device not found", f"No event and no inventory for {device}.")
    return render(request, who, "device.html", device=device, record=record, summary=summary)


async def _form(request: Request, who: Session) -> tuple[Any, list[str], str]:
    form = await read_form(request, who.csrf)
    back = form.get("back", "/console/events")
    return form, list(dict.fromkeys(form.all("event_id"))), back


def _nothing_selected(back: str) -> Response:
    return redirect(back, "warn", ["Select at least one event first."])


@router.post("/console/events/act")
async def act(request: Request, who: Session = Depends(signed_in)) -> Response:
    """Acknowledge, Close or Re-open the selected events."""
    form, ids, back = await _form(request, who)
    need_role(who, "operator", "Acting on events")
    op = form.get("op")
    if op not in operate.OPS:
        raise ConsoleError(400, "Unknown action", f"{op!r} is not acknowledge, close or reopen.")
    if not ids:
        return _nothing_selected(back)
    out = await run_in_threadpool(operate.act_on_events, ids, op, who.principal)
    return redirect(back, out.level, out.lines())


@router.post("/console/events/note")
async def note(request: Request, who: Session = Depends(signed_in)) -> Response:
    form, ids, back = await _form(request, who)
    need_role(who, "operator", "Adding notes")
    text = form.get("note_text").strip()
    if not ids:
        return _nothing_selected(back)
    if not text or len(text) > 65536:
        return redirect(back, "error", ["A note needs text (at most 65,536 characters)."])
    out = await run_in_threadpool(operate.add_notes, ids, text, who.principal)
    return redirect(back, out.level, out.lines())


@router.post("/console/incidents/create")
async def create_incident(request: Request, who: Session = Depends(signed_in)) -> Response:
    """Create Incident with the notification chosen in the menu."""
    form, ids, back = await _form(request, who)
    need_role(who, "operator", "Creating incidents")
    if not ids:
        return _nothing_selected(back)
    out = await run_in_threadpool(
        operate.create_incidents, ids, form.get("notification"), who.principal
    )
    return redirect(back, out.level, out.lines())


@router.post("/console/incidents/associate")
async def associate_incident(request: Request, who: Session = Depends(signed_in)) -> Response:
    """Assign New Incident Number: associate the events with a typed incident number."""
    form, ids, back = await _form(request, who)
    need_role(who, "operator", "Associating incidents")
    number = form.get("incident_number").strip()
    if not ids:
        return _nothing_selected(back)
    if not number:
        return redirect(back, "error", ["Type the incident number to associate."])
    out = await run_in_threadpool(
        operate.associate, ids, form.get("assoc_notification"), number, who.principal
    )
    return redirect(back, out.level, out.lines())
