"""PagerDuty Events API v2 (`POST /v2/enqueue`): validation and the event of a trigger.

A trigger looks like `{"routing_key": "...", "event_action": "trigger", "dedup_key": "...",
"payload": {"summary": "...", "source": "db01", "severity": "critical", "component": "...",
"group": "...", "class": "...", "custom_details": {...}}}`; acknowledge and resolve need
only `event_action` and `dedup_key`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = {"critical": 5, "error": 4, "warning": 3, "info": 2}
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024


@dataclass(frozen=True)
class PagerDutyEvent:
    """A valid enqueue request: the action, its dedup key and (for a trigger) the event."""

    action: str
    dedup_key: str
    event: dict[str, Any] | None = None


class InvalidEvent(ValueError):
    """Every reason the request is invalid (PagerDuty answers them all at once)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _text(
    raw: dict[str, Any], key: str, where: str, errors: list[str], required: bool, limit: int = 255
) -> str:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(f"'{where}{key}' is missing or blank")
        return ""
    if not isinstance(value, str):
        errors.append(f"'{where}{key}' must be a string")
        return ""
    if len(value) > limit:
        errors.append(f"'{where}{key}' is longer than {limit} characters")
        return ""
    return value


def _trigger_event(
    payload: Any, doc: dict[str, Any], dedup_key: str, errors: list[str]
) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        errors.append("'payload' is missing or not an object")
        return None
    summary = _text(payload, "summary", "payload.", errors, True, MAX_SUMMARY)
    source = _text(payload, "source", "payload.", errors, True)
    severity = payload.get("severity")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        errors.append("'payload.severity' must be one of " + ", ".join(SEVERITIES))
    component = _text(payload, "component", "payload.", errors, False)
    group = _text(payload, "group", "payload.", errors, False)
    klass = _text(payload, "class", "payload.", errors, False, 200)
    timestamp = _text(payload, "timestamp", "payload.", errors, False)
    if errors:
        return None
    custom = payload.get("custom_details")
    details: dict[str, Any] = {"dedup_key": dedup_key}
    if custom is not None:
        details["custom_details"] = custom if isinstance(custom, dict) else {"value": custom}
    for key, value in (("group", group), ("class", klass), ("timestamp", timestamp)):
        if value:
            details[key] = value
    for key in ("client", "client_url", "links", "images"):
        if doc.get(key) is not None:
            details[key] = doc[key]
    return {
        "device": source,
        "component": component,
        "eventClass": "/PagerDuty" + (f"/{klass}" if klass else ""),
        "eventKey": dedup_key,
        "severity": SEVERITIES[str(severity)],
        "summary": summary,
        "agent": "pagerduty-events-v2",
        "source": doc["client"] if isinstance(doc.get("client"), str) else "",
        "dedupid": dedup_key,
        "details": details,
    }


def parse_enqueue(doc: Any) -> PagerDutyEvent:
    """A valid enqueue request, or InvalidEvent with every reason."""
    if not isinstance(doc, dict):
        raise InvalidEvent(["the event must be a JSON object"])
    errors: list[str] = []
    action = doc.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or invalid (trigger, acknowledge, resolve)")
    if doc.get("routing_key") is not None and not isinstance(doc["routing_key"], str):
        errors.append("'routing_key' must be a string")
    dedup_key = _text(
        doc, "dedup_key", "", errors, action in ("acknowledge", "resolve"), MAX_DEDUP_KEY
    )
    if errors:
        raise InvalidEvent(errors)
    if action != "trigger":
        return PagerDutyEvent(str(action), dedup_key)
    dedup_key = dedup_key or uuid.uuid4().hex
    event = _trigger_event(doc.get("payload"), doc, dedup_key, errors)
    if event is None:
        raise InvalidEvent(errors)
    return PagerDutyEvent("trigger", dedup_key, event)
