"""One-click links from tickets: GET shows a confirmation page, POST does the action."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from incman.ingest import event_ops
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.links import LinkError, verify_action
from incman.store.models import Event

router = APIRouter(tags=["links"])
LABELS = {"acknowledge": "Acknowledge", "close": "Close", "reopen": "Re-open"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}"
        f"</title><h1>{html.escape(title)}</h1>{body}",
        status_code=status,
    )


def _summary(event_id: str) -> str | None:
    with session_scope() as session:
        ev = session.get(Event, event_id)
        return None if ev is None else f"{ev.device}: {ev.summary} ({ev.status})"


@router.get(
    "/links/{token}",
    response_class=HTMLResponse,
    summary="Confirmation page of a one-click link (changes nothing)",
)
async def confirm_link(token: str) -> HTMLResponse:
    try:
        action, event_id = verify_action(token)
    except LinkError as exc:
        return _page("Link refused", f"<p>{html.escape(str(exc))}</p>", 403)
    summary = await run_in_threadpool(_summary, event_id)
    if summary is None:
        return _page("Event not found", "<p>The event no longer exists.</p>", 404)
    label = LABELS[action]
    return _page(
        f"{label} this event?",
        f"<p>{html.escape(summary)}</p><form method=post>"
        f"<button type=submit>{label}</button></form>",
    )


def _act(action: str, event_id: str) -> str | None:
    with session_scope() as session:
        ev = session.get(Event, event_id, with_for_update=True)
        if ev is None:
            return None
        func = {
            "acknowledge": event_ops.acknowledge,
            "close": event_ops.close,
            "reopen": event_ops.reopen,
        }[action]
        func(session, get_catalog(), ev, "link")
        return ev.status


@router.post("/links/{token}", response_class=HTMLResponse, summary="Do what a one-click link says")
async def follow_link(token: str) -> HTMLResponse:
    try:
        action, event_id = verify_action(token)
    except LinkError as exc:
        return _page("Link refused", f"<p>{html.escape(str(exc))}</p>", 403)
    try:
        status = await run_in_threadpool(_act, action, event_id)
    except event_ops.EventStateError as exc:
        return _page("Not done", f"<p>{html.escape(str(exc))}</p>", 409)
    if status is None:
        return _page("Event not found", "<p>The event no longer exists.</p>", 404)
    response = _page("Done", f"<p>The event is now {html.escape(status)}.</p>")
    return response
