"""ITSM Events API requests (seed 004) in storage.

Create a request with its incman event, update the open one an event matches within 24 h, and
wake `waiting_for` requests at their `waiting_until` (beat). The decisions are
incman.domain.formats.itsm_*; this is the I/O."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from incman.domain.event import EventError, normalise_event
from incman.domain.formats.itsm_directory import Template, apply_template
from incman.domain.formats.itsm_match import (
    MATCH_WINDOW,
    Facts,
    facts_of,
    find_match,
    note_is_new,
)
from incman.domain.formats.itsm_record import (
    WAITING,
    apply_update,
    event_fields,
    new_record,
    resume_waiting,
)
from incman.domain.formats.itsm_request import FINAL_STATUSES, ItsmError, iso, parse_iso
from incman.ingest import event_ops
from incman.ingest.accept import accept
from incman.store import metrics
from incman.store.catalog import Catalog, get_catalog
from incman.store.db import session_scope
from incman.store.itsm_models import ItsmRequest
from incman.store.models import OPEN_EVENT_STATUSES, Event, Note, utcnow

log = logging.getLogger(__name__)

WAKE_BATCH = 500


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


def _store_record(row: ItsmRequest, record: dict[str, Any], now: datetime) -> None:
    """The record on its row, with the columns the queries use."""
    row.record = record
    row.status = record["status"]
    until = record.get("waiting_until")
    row.waiting_until = parse_iso(until) if until and record["status"] == WAITING else None
    row.updated_at = now


def _create(
    session: Session,
    catalog: Catalog,
    params: dict[str, Any],
    template: Template | None,
    incoming: Facts,
    now: datetime,
) -> dict[str, Any]:
    record = new_record(params, incoming.account, catalog.devices, now, catalog.itsm, template)
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
        # A request without a CI or service instance has no device: accepted as such.
        ev_in = normalise_event(event_fields(record, incoming.note), require_device=False)
    except EventError as exc:
        raise ItsmError(exc.field, exc.reason) from exc
    batch = accept(session, [ev_in], catalog)
    row.event_id = batch.accepted[0].event_id
    record["eventId"] = row.event_id
    _store_record(row, record, now)
    event = session.get(Event, row.event_id)
    assert event is not None
    if incoming.note:
        event_ops.add_note(session, catalog, event, incoming.account, incoming.note)
    if record["status"] in FINAL_STATUSES:
        event_ops.close(session, catalog, event, incoming.account)
    return record


def _touch_event(event: Event, record: dict[str, Any], now: datetime) -> None:
    event.details = {**(event.details or {}), "itsm": record}
    event.last_time = now
    event.updated_at = now


def _update(
    session: Session,
    catalog: Catalog,
    row: ItsmRequest,
    params: dict[str, Any],
    user: str,
    now: datetime,
) -> dict[str, Any]:
    record, changed = apply_update(row.record, params, user, now, catalog.itsm)
    event = session.get(Event, row.event_id, with_for_update=True)
    assert event is not None
    earlier = session.scalars(select(Note.text).where(Note.event_id == event.id))
    if note_is_new(params.get("note"), earlier):
        event_ops.add_note(session, catalog, event, user, params["note"])
        record["updated_at"] = iso(now)
        changed.append("note")
    if changed:
        _store_record(row, record, now)
        _touch_event(event, record, now)
    if record["status"] in FINAL_STATUSES and event.status != "Closed":
        event_ops.close(session, catalog, event, user)
    return record


def submit(params: dict[str, Any], account: str) -> tuple[int, dict[str, Any]]:
    """Create a request or update the one the event matches; (HTTP status, record). A
    template's values count for matching and creation; an update takes only the call's."""
    catalog = get_catalog()
    now = utcnow()
    merged, template = apply_template(params, catalog.itsm)
    incoming = facts_of(merged, account, catalog.devices)
    with session_scope() as session:
        _serialise(session, incoming)
        match = find_match(_candidates(session, incoming, now), incoming, now)
        if match is not None:
            session.refresh(match, with_for_update=True)
            return 200, _update(session, catalog, match, params, account, now)
        record = _create(session, catalog, merged, template, incoming, now)
    metrics.EVENTS_ACCEPTED.labels(source="itsm-events").inc()
    return 201, record


def wake_waiting_requests(now: datetime | None = None, batch: int = WAKE_BATCH) -> int:
    """Beat's wake-up: every `waiting_for` request whose `waiting_until` has come goes back
    to `assigned`, in batches of one transaction each. Returns how many did."""
    now = now or utcnow()
    woken = 0
    while True:
        with session_scope() as session:
            rows = list(
                session.scalars(
                    select(ItsmRequest)
                    .where(ItsmRequest.status == WAITING, ItsmRequest.waiting_until <= now)
                    .order_by(ItsmRequest.waiting_until)
                    .limit(batch)
                    .with_for_update(skip_locked=session.get_bind().dialect.name != "sqlite")
                )
            )
            for row in rows:
                record = resume_waiting(row.record, now)
                if record is None:  # the record says otherwise: keep the column in step
                    row.waiting_until = None
                    continue
                _store_record(row, record, now)
                event = session.get(Event, row.event_id) if row.event_id else None
                if event is not None:
                    _touch_event(event, record, now)
                woken += 1
        if len(rows) < batch:
            break
    if woken:
        log.info("%d ITSM requests back to assigned after waiting_until", woken)
    return woken
