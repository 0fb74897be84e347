"""Monitoring-system incident objects (seed 002) read back in the seed's own shape.

The fields the object was sent with, brought up to date with what happened to its event since
(acknowledged, commented, cleared or closed in incman)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The seed's fields of an incident object, in its order.
SEED_FIELDS = (
    "id",
    "entityId",
    "data",
    "acknowledgedBy",
    "acknowledgementTimestamp",
    "clearTimestamp",
    "comment",
    "commentedBy",
    "commentTimestamp",
    "entityType",
    "localTimestamp",
    "parentChainId",
    "state",
    "text",
    "timestamp",
    "type",
    "branchId",
    "reason",
    "removed",
)


@dataclass(frozen=True)
class EventState:
    """What the incident's event says now (from storage)."""

    event_id: str
    status: str
    device: str
    event_key: str
    summary: str
    details: Mapping[str, Any]
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    cleared_at: datetime | None = None
    last_note: tuple[str, str, datetime] | None = None  # author, text, when
    closed: tuple[str, datetime] | None = None  # by whom, when (the last close)


def _epoch(stamp: datetime | None) -> int | None:
    return int(stamp.timestamp()) if stamp is not None else None


def _acknowledgement(sent: Mapping[str, Any], ev: EventState) -> dict[str, Any]:
    if not ev.acknowledged_by:
        return {"acknowledgedBy": None, "acknowledgementTimestamp": None}
    stamp = sent.get("acknowledgementTimestamp")
    if sent.get("acknowledgedBy") != ev.acknowledged_by or stamp is None:
        stamp = _epoch(ev.acknowledged_at)
    return {"acknowledgedBy": ev.acknowledged_by, "acknowledgementTimestamp": stamp}


def _comment(sent: Mapping[str, Any], ev: EventState) -> dict[str, Any]:
    if ev.last_note is None:
        return {"comment": None, "commentedBy": None, "commentTimestamp": None}
    author, text, when = ev.last_note
    stamp = sent.get("commentTimestamp")
    if sent.get("comment") != text or stamp is None:
        stamp = _epoch(when)
    return {"comment": text, "commentedBy": author or None, "commentTimestamp": stamp}


def _removed(sent: Mapping[str, Any], ev: EventState) -> Any:
    if sent.get("removed") is not None:
        return sent["removed"]
    if ev.status == "Closed" and ev.closed is not None:
        return {"userId": ev.closed[0], "timestamp": _epoch(ev.closed[1])}
    return None


def incident_record(ev: EventState) -> dict[str, Any]:
    """The incident object in the seed's shape (every field, null when unknown), plus the
    `eventId` and `status` of its incman event."""
    sent: Mapping[str, Any] = ev.details.get("incident") or {}
    reason = dict(ev.details.get("reason") or {}) or None
    out: dict[str, Any] = {name: sent.get(name) for name in SEED_FIELDS}
    out.update(
        id=sent.get("id") or ev.event_key,
        entityId=sent.get("entityId") or ev.device,
        text=sent.get("text") or ev.summary,
        reason=reason,
        removed=_removed(sent, ev),
        clearTimestamp=(sent.get("clearTimestamp") or _epoch(ev.cleared_at))
        if ev.cleared_at is not None
        else None,
    )
    out.update(_acknowledgement(sent, ev))
    out.update(_comment(sent, ev))
    out.update(eventId=ev.event_id, status=ev.status)
    return out
