"""Seed 002 incident objects read back in the seed's own shape, brought up to date with
what happened to their event."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from incman.domain.formats.entity_incident import SeverityMap, parse_incident
from incman.domain.formats.entity_incident_record import SEED_FIELDS, EventState, incident_record

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
EPOCH = int(T0.timestamp())
SENT: dict[str, Any] = {
    "id": "i-1",
    "entityId": "router-7",
    "text": "Interface down",
    "state": 1,
    "type": 2,
    "entityType": 2,
    "parentChainId": "chain-4",
    "branchId": "b-2",
    "data": "ifIndex=3",
    "timestamp": 1763872000,
    "localTimestamp": 1763875600,
    "acknowledgedBy": "u-7",
    "acknowledgementTimestamp": 1763872100,
    "comment": "on it",
    "commentedBy": "u-7",
    "commentTimestamp": 1763872200,
    "reason": {"code": 7},
}


def state(**changes: Any) -> EventState:
    details = parse_incident(SENT, SeverityMap({1: 5})).event["details"]
    base: dict[str, Any] = {
        "event_id": "ev-1",
        "status": "Acknowledged",
        "device": "router-7",
        "event_key": "i-1",
        "summary": "Interface down",
        "details": details,
        "acknowledged_by": "u-7",
        "acknowledged_at": T0,
        "last_note": ("u-7", "on it", T0),
    }
    return EventState(**{**base, **changes})


def test_every_seed_field_comes_back_as_sent() -> None:
    out = incident_record(state())
    assert list(out)[: len(SEED_FIELDS)] == list(SEED_FIELDS)
    for key in SEED_FIELDS:
        if key != "reason":
            assert out[key] == SENT.get(key), key
    assert out["reason"]["code"] == 7 and out["reason"]["meaning"] == "Agent down."
    assert (out["eventId"], out["status"]) == ("ev-1", "Acknowledged")


def test_what_happened_in_incman_since_shows() -> None:
    out = incident_record(
        state(
            status="Closed",
            acknowledged_by="oncall1",
            last_note=("oncall1", "replaced the cable", T0),
            cleared_at=T0,
            closed=("oncall1", T0),
        )
    )
    assert (out["acknowledgedBy"], out["acknowledgementTimestamp"]) == ("oncall1", EPOCH)
    assert (out["comment"], out["commentedBy"], out["commentTimestamp"]) == (
        "replaced the cable",
        "oncall1",
        EPOCH,
    )
    assert out["clearTimestamp"] == EPOCH
    assert out["removed"] == {"userId": "oncall1", "timestamp": EPOCH}


def test_an_event_reopened_and_unacknowledged_shows_nothing_stale() -> None:
    out = incident_record(state(status="New", acknowledged_by=None, last_note=None))
    assert out["acknowledgedBy"] is None and out["acknowledgementTimestamp"] is None
    assert out["comment"] is None and out["commentedBy"] is None
    assert out["clearTimestamp"] is None and out["removed"] is None


def test_a_minimal_object_has_every_field_with_nulls() -> None:
    details = parse_incident({"id": "i-2", "entityId": "sw-1"}, SeverityMap({})).event["details"]
    out = incident_record(EventState("ev-2", "New", "sw-1", "i-2", "Incident i-2 on sw-1", details))
    assert set(out) == {*SEED_FIELDS, "eventId", "status"}
    assert (out["id"], out["entityId"], out["text"]) == ("i-2", "sw-1", "Incident i-2 on sw-1")
    for key in ("data", "parentChainId", "branchId", "type", "removed", "comment"):
        assert out[key] is None
