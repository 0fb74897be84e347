"""Monitoring-system incident objects (seed 002) as incman events.

entityId → device, text → summary, state → severity (a configurable map), clearTimestamp →
a clear, acknowledgedBy → Acknowledged, comment → a note, removed → Closed; the reason
code and its meaning from the seed's table go into `details`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from incman.domain.event import EventError, parse_severity

EVENT_CLASS = "/EntityIncident"
MAX_ITEMS = 1000
# The seed: incidents are cleared when the entity's state is set to 3.
DEFAULT_SEVERITY_MAP = {1: 5, 2: 4, 3: 0, 4: 3}
DEFAULT_SEVERITY = 3
REASONS: dict[int | None, str] = {
    None: "No reason for a state change. Used for the Created state.",
    1: "Deprecated. Now treated as code 10. If parent's state priority is less than that of a "
    "current object, propagate the current object state.",
    2: "Deprecated. Now treated as code 10. If parent's state priority is greater than that of "
    "a current object, propagate the sibling with greatest priority.",
    3: "No suitable condition.",
    4: "Sensor error.",
    5: "No children left.",
    6: "No data from agent.",
    7: "Agent down.",
    8: "Monitoring is disabled.",
    9: "Agent task removed.",
    10: "State change in the child object.",
    11: "No data from agent.",
    12: "External change.",
    13: "Manual change.",
    14: "Periodic event was triggered on an object with no data.",
    15: "Data Expiration.",
    16: "Change state on the incident clearing.",
}
TYPES = {1: "entity changed state", 2: "incident generation condition was met"}
ENTITY_TYPES = {1: "object", 2: "link"}


class IncidentError(ValueError):
    """An incident object that cannot become an event: field and reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class SeverityMap:
    """Entity state → incman severity (CONFIG: `entity_incidents.severity_map`)."""

    states: dict[int, int]
    default: int = DEFAULT_SEVERITY

    def severity(self, state: int | None) -> int:
        return self.default if state is None else self.states.get(state, self.default)


def parse_severity_map(section: Any) -> SeverityMap:
    """The `entity_incidents:` section of the configuration file (None → the defaults)."""
    if section is None:
        return SeverityMap(dict(DEFAULT_SEVERITY_MAP))
    if not isinstance(section, dict):
        raise ValueError("entity_incidents: must be a mapping")
    raw = section.get("severity_map", DEFAULT_SEVERITY_MAP)
    if not isinstance(raw, dict):
        raise ValueError("entity_incidents.severity_map: must be a mapping state → severity")
    states: dict[int, int] = {}
    try:
        for state, sev in raw.items():
            if not str(state).strip().lstrip("-").isdigit():
                raise ValueError(f"entity_incidents.severity_map: state {state!r} is not a number")
            states[int(state)] = parse_severity(sev)
        default = parse_severity(section.get("default_severity", DEFAULT_SEVERITY))
    except EventError as exc:
        raise ValueError(f"entity_incidents: {exc}") from exc
    return SeverityMap(states, default)


@dataclass(frozen=True)
class EntityIncident:
    """What one incident object asks of incman."""

    event: dict[str, Any]
    cleared: bool
    acknowledged_by: str | None
    comment: str | None
    commented_by: str | None
    removed_by: str | None
    removed: bool


def _ident(raw: dict[str, Any], key: str, required: bool) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise IncidentError(key, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise IncidentError(key, "must be a string")
    return str(value)


def _int(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise IncidentError(key, "must be an integer")
    return int(value)


def reason_details(raw: Any) -> dict[str, Any]:
    """The reason with its code's meaning (codes 1 and 2 are treated as 10)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise IncidentError("reason", "must be an object")
    code = raw.get("code")
    if code in ("-", ""):
        code = None
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise IncidentError("reason.code", "must be an integer (or '-')")
    out: dict[str, Any] = {
        "code": code,
        "meaning": REASONS.get(code, f"Unknown reason code {code}."),
    }
    if code in (1, 2):
        out["treatedAs"] = 10
    for key in ("rootCause", "branch", "data"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    return out


_TIMESTAMPS = (
    "timestamp",
    "localTimestamp",
    "acknowledgementTimestamp",
    "clearTimestamp",
    "commentTimestamp",
)


def _text_field(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise IncidentError(key, "must be a string")
    return value


def _incident_fields(raw: dict[str, Any], ident: str, entity: str) -> dict[str, Any]:
    """The object's own fields as kept on the event (`details.incident`), so that it can be
    read back in the seed's shape."""
    state = _int(raw, "state")
    kind, entity_type = _int(raw, "type"), _int(raw, "entityType")
    removed = raw.get("removed")
    if removed is not None and not isinstance(removed, dict):
        raise IncidentError("removed", "must be an object")
    incident: dict[str, Any] = {"id": ident, "entityId": entity, "state": state}
    if kind is not None:
        incident.update(type=kind, typeName=TYPES.get(kind, "unknown"))
    if entity_type is not None:
        incident.update(
            entityType=entity_type, entityTypeName=ENTITY_TYPES.get(entity_type, "unknown")
        )
    for key in _TIMESTAMPS:
        if _int(raw, key) is not None:
            incident[key] = _int(raw, key)
    for key in ("text", "comment"):
        if _text_field(raw, key) is not None:
            incident[key] = raw[key]
    for key in ("acknowledgedBy", "commentedBy"):
        if _ident(raw, key, False) is not None:
            incident[key] = _ident(raw, key, False)
    for key in ("branchId", "parentChainId", "data"):
        if raw.get(key) is not None:
            incident[key] = raw[key]
    if removed is not None:
        incident["removed"] = removed
    return incident


def parse_incident(raw: Any, severities: SeverityMap) -> EntityIncident:
    """One incident object as an event and the operations it asks for."""
    if not isinstance(raw, dict):
        raise IncidentError("incident", "must be a JSON object")
    ident = _ident(raw, "id", True)
    entity = _ident(raw, "entityId", True)
    assert ident is not None and entity is not None
    incident = _incident_fields(raw, ident, entity)
    text = incident.get("text")
    comment = incident.get("comment")
    removed = incident.get("removed")
    severity = severities.severity(incident["state"])
    cleared = bool(incident.get("clearTimestamp")) or severity == 0
    event = {
        "device": entity,
        "eventClass": EVENT_CLASS,
        "eventKey": ident,
        "severity": 0 if cleared else severity,
        "summary": text.strip() if text and text.strip() else f"Incident {ident} on {entity}",
        "agent": "entity-incidents",
        "dedupid": f"{entity}|{EVENT_CLASS}|{ident}",
        "details": {"incident": incident, "reason": reason_details(raw.get("reason"))},
    }
    return EntityIncident(
        event=event,
        cleared=cleared,
        acknowledged_by=incident.get("acknowledgedBy"),
        comment=comment if comment and comment.strip() else None,
        commented_by=incident.get("commentedBy"),
        removed_by=_ident(removed, "userId", False) if removed else None,
        removed=removed is not None,
    )
