"""Send events from Python code that reaches the database.

Validate, store; the actions go out once the transaction commits.

Events are dicts in the API's camelCase shape (`eventClass`, `eventKey`, ...); unknown names go
into `details`. Storing is one committed transaction; the actions are sent after it, so an
event is durable once these functions return, whatever happens to the broker."""

from __future__ import annotations

from typing import Any

from incman.domain.event import EventError, EventIn, normalise_event
from incman.ingest.accept import IngestBatch, accept
from incman.store import metrics
from incman.store.catalog import get_catalog
from incman.store.db import session_scope

# Python-style keyword names accepted by send_event, and their API names.
_API_NAMES = {
    "event_class": "eventClass",
    "event_key": "eventKey",
    "event_class_key": "eventClassKey",
}


def _api_shape(fields: dict[str, Any]) -> dict[str, Any]:
    return {_API_NAMES.get(name, name): value for name, value in fields.items()}


def store(events: list[EventIn], source: str) -> IngestBatch:
    """Accept validated events in one committed transaction (their actions are sent after)."""
    with session_scope() as session:
        batch = accept(session, events, get_catalog())
    metrics.EVENTS_ACCEPTED.labels(source=source).inc(len(events))
    return batch


def store_answers(events: list[EventIn], source: str) -> list[dict[str, Any]]:
    """Accept validated events in one committed transaction; the API's answers.

    A database error propagates (nothing is stored); a broker error does not (the actions
    stay pending in the outbox and the reconciler sends them)."""
    if not events:
        return []
    batch = store(events, source)
    return [accepted.to_api() for accepted in batch.accepted]


def send_events(events: list[dict[str, Any]], source: str = "producer") -> list[dict[str, Any]]:
    """Store many events; one result per item, in order, as in the API's batch answer:
    `{"index", "ok": True, "eventId", "dedupid", "count", "status", "created"}` or
    `{"index", "ok": False, "error", "field"}` for an invalid item (nothing stored for it)."""
    if not isinstance(events, list):
        raise EventError("events", "must be a list of event objects")
    results: dict[int, dict[str, Any]] = {}
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(events):
        try:
            valid.append((index, normalise_event(raw)))
        except EventError as exc:
            results[index] = {"index": index, "ok": False, "error": str(exc), "field": exc.field}
    stored = store_answers([ev for _, ev in valid], source)
    for (index, _), answer in zip(valid, stored, strict=True):
        results[index] = {"index": index, "ok": True, **answer}
    return [results[i] for i in range(len(events))]


def send_event(**fields: Any) -> dict[str, Any]:
    """Store one event, e.g. `send_event(device="db01", severity="Critical", summary="Down",
    event_class="/Status")`; returns the API's answer (`eventId`, `dedupid`, `count`,
    `status`, `created`). An invalid event raises EventError naming the field."""
    event = normalise_event(_api_shape(fields))
    return store_answers([event], "producer")[0]
