"""Rows as the API shows them (camelCase, ISO-8601 UTC), around the one event document."""

from __future__ import annotations

from typing import Any

from incman.domain.event import iso, severity_name
from incman.store.documents import event_document_from_row
from incman.store.models import Event, EventIncident, Incident, Note, Occurrence


def incident_to_api(inc: Incident, event_ids: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": inc.id,
        "notificationId": inc.notification_id,
        "integration": inc.integration,
        "number": inc.number,
        "remoteId": inc.remote_id,
        "url": inc.url,
        "state": inc.state,
        "remoteState": inc.remote_state,
        "correlationKey": inc.correlation_key,
        "dedupid": inc.dedupid,
        "manual": inc.manual,
        "createdAt": iso(inc.created_at),
        "updatedAt": iso(inc.updated_at),
    }
    if event_ids is not None:
        out["eventIds"] = event_ids
    return out


def event_to_api(ev: Event, links: list[tuple[EventIncident, Incident]]) -> dict[str, Any]:
    out = event_document_from_row(ev)
    out.update(
        {
            "severityName": severity_name(ev.severity),
            "acknowledgedBy": ev.acknowledged_by,
            "acknowledgementTimestamp": iso(ev.acknowledgement_time),
            "clearTimestamp": iso(ev.clear_time),
            "suppressedBy": ev.suppressed_by,
            "incident": None,
            "incidentUrl": None,
            "notificationId": None,
            "incidentCreatedAt": None,
            "incidents": [],
        }
    )
    for link, inc in links:
        item = {
            "incident": inc.number,
            "incidentUrl": inc.url,
            "notificationId": link.notification_id,
            "incidentCreatedAt": iso(link.associated_at),
            "state": inc.state,
            "id": inc.id,
        }
        out["incidents"].append(item)
    if out["incidents"]:
        first = out["incidents"][0]
        for key in ("incident", "incidentUrl", "notificationId", "incidentCreatedAt"):
            out[key] = first[key]
    return out


def occurrence_to_api(occ: Occurrence) -> dict[str, Any]:
    return {
        "occurrenceId": occ.id,
        "seq": occ.seq,
        "receivedAt": iso(occ.received_at),
        "severity": occ.severity,
        "summary": occ.summary,
    }


def note_to_api(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "eventId": note.event_id,
        "occurrenceId": note.occurrence_id,
        "author": note.author,
        "text": note.text,
        "createdAt": iso(note.created_at),
        "updatedAt": iso(note.updated_at),
    }
