"""Event normalisation: validation, severity names, the dedupid and the clear key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from incman.domain.text import bad_text, bad_text_path, nesting_depth

SEVERITY_NAMES = ("Clear", "Debug", "Info", "Warning", "Error", "Critical")
_SEVERITY_BY_NAME = {name.lower(): n for n, name in enumerate(SEVERITY_NAMES)}
EVENT_STATUSES = ("New", "Acknowledged", "Suppressed", "Closed", "Cleared", "Aged")
OPEN_STATUSES = ("New", "Acknowledged", "Suppressed")
SELF_MONITORING_PREFIX = "/App/Incman"
FAILURE_CLASS = "/App/Incman/Failure"
SUPPRESSION_CLASS = "/App/Incman/Suppression"

# API name → (attribute, max length)
_TEXT_FIELDS = {
    "device": 255,
    "component": 255,
    "eventClass": 255,
    "eventKey": 255,
    "eventClassKey": 255,
    "agent": 255,
    "source": 255,
    "summary": 4096,
    "message": 65536,
    "dedupid": 512,
}
_KNOWN = set(_TEXT_FIELDS) | {"severity", "details"}
MAX_DETAILS_DEPTH = 32  # levels of objects and lists in `details`
MAX_DETAILS_BYTES = 256 * 1024  # `details` as JSON text


class EventError(ValueError):
    """An invalid event: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class EventIn:
    """A validated incoming event (API field names in snake case)."""

    device: str
    severity: int
    summary: str
    component: str = ""
    event_class: str = ""
    event_key: str = ""
    event_class_key: str = ""
    message: str = ""
    agent: str = ""
    source: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    dedupid: str = ""

    @property
    def is_clear(self) -> bool:
        return self.severity == 0

    def clear_key(self) -> tuple[str, str, str, str]:
        return (self.device, self.component, self.event_class, self.event_key)


def parse_severity(value: Any) -> int:
    """0–5 or a severity name in any case."""
    if isinstance(value, bool):
        raise EventError("severity", "must be an integer 0-5 or a severity name")
    if isinstance(value, int):
        if 0 <= value <= 5:
            return value
        raise EventError("severity", f"{value} is out of range 0-5")
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_severity(int(text))
        if text.lower() in _SEVERITY_BY_NAME:
            return _SEVERITY_BY_NAME[text.lower()]
        names = ", ".join(SEVERITY_NAMES)
        raise EventError("severity", f"unknown severity {value!r} (use 0-5 or {names})")
    raise EventError("severity", "must be an integer 0-5 or a severity name")


def severity_name(severity: int) -> str:
    return SEVERITY_NAMES[severity] if 0 <= severity <= 5 else str(severity)


def parse_status(value: Any) -> str:
    """An event status in any case, written back exactly as the API spells it."""
    if isinstance(value, str):
        for status in EVENT_STATUSES:
            if status.lower() == value.strip().lower():
                return status
    raise EventError("status", f"unknown status {value!r} (use {', '.join(EVENT_STATUSES)})")


def make_dedupid(ev: EventIn) -> str:
    """The default dedupid: device|component|eventClass|eventKey|severity."""
    return "|".join((ev.device, ev.component, ev.event_class, ev.event_key, str(ev.severity)))


@dataclass(frozen=True)
class Checked:
    """What the caller already checked of the whole document an event came in (the API, on
    the raw body): its checks then need not run again per event."""

    clean_text: bool = False  # no string in it can hold NUL or a lone surrogate
    depth: int | None = None  # its nesting depth (an event's `details` is at least 1 less)
    size: int | None = None  # its length as JSON (a `details` is shorter)


UNCHECKED = Checked()


def _text(raw: dict[str, Any], name: str, checked: Checked, required: bool = False) -> str:
    value = raw.get(name)
    if value.__class__ is str:
        text: str = value
    elif value is None:
        if required:
            raise EventError(name, "is required")
        return ""
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EventError(name, "must be a string")
    else:
        text = str(value)
    if not checked.clean_text and bad_text(text):
        raise EventError(name, "NUL characters and unpaired surrogates are not allowed")
    if required and not text.strip():
        raise EventError(name, "must not be empty")
    if len(text) > _TEXT_FIELDS[name]:
        raise EventError(name, f"is longer than {_TEXT_FIELDS[name]} characters")
    return text


def _check_details(details: dict[str, Any], checked: Checked) -> None:
    """Bounded nesting and size, so every reader (the API's answers, field mapping, the
    database's JSON functions) can walk `details`; no NUL or lone surrogate in it."""
    if not details:
        return
    shallow = checked.depth is not None and checked.depth - 1 <= MAX_DETAILS_DEPTH
    if not shallow and nesting_depth(details, MAX_DETAILS_DEPTH) > MAX_DETAILS_DEPTH:
        raise EventError("details", f"nested deeper than {MAX_DETAILS_DEPTH} levels")
    if checked.size is None or checked.size > MAX_DETAILS_BYTES:
        try:
            size = len(json.dumps(details, ensure_ascii=False, allow_nan=False))
        except ValueError as exc:  # NaN or Infinity (from a producer that is not the API)
            raise EventError("details", f"not valid JSON: {exc}") from exc
        if size > MAX_DETAILS_BYTES:
            raise EventError("details", f"larger than {MAX_DETAILS_BYTES} characters as JSON")
    if not checked.clean_text:
        found = bad_text_path(details, "details")
        if found:
            raise EventError(found, "NUL characters and unpaired surrogates are not allowed")


def normalise_event(raw: Any, require_device: bool = True, checked: Checked = UNCHECKED) -> EventIn:
    """Validate one incoming event (camelCase keys); unknown keys go into `details`.

    `require_device=False` is for formats whose objects may have no device (an ITSM request
    without a CI or service instance): such an event is stored with an empty device.
    `checked`: what the caller already checked of the document the event came in."""
    if not isinstance(raw, dict):
        raise EventError("event", "must be a JSON object")
    if "severity" not in raw or raw["severity"] is None:
        raise EventError("severity", "is required")
    details = raw.get("details")
    details = {} if details is None else details
    if not isinstance(details, dict):
        raise EventError("details", "must be an object")
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    if extra:
        details = {**details, **extra}
    _check_details(details, checked)
    ev = EventIn(
        device=_text(raw, "device", checked, required=require_device),
        severity=parse_severity(raw["severity"]),
        summary=_text(raw, "summary", checked, required=True),
        component=_text(raw, "component", checked),
        event_class=_text(raw, "eventClass", checked),
        event_key=_text(raw, "eventKey", checked),
        event_class_key=_text(raw, "eventClassKey", checked),
        message=_text(raw, "message", checked),
        agent=_text(raw, "agent", checked),
        source=_text(raw, "source", checked),
        details=details,
    )
    ev.dedupid = _text(raw, "dedupid", checked) or make_dedupid(ev)
    return ev


def is_self_monitoring(event_class: str) -> bool:
    """incman's own events never trigger notifications (no event loops)."""
    return event_class == SELF_MONITORING_PREFIX or event_class.startswith(
        SELF_MONITORING_PREFIX + "/"
    )


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it: ISO-8601 UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def event_document(
    ev: EventIn,
    *,
    event_id: str,
    status: str,
    count: int,
    first_time: datetime | None,
    last_time: datetime | None,
) -> dict[str, Any]:
    """The one event document: what triggers match (with `dev` beside it), what field
    mapping sees as `evt`, and the core of the API's event."""
    return {
        "eventId": event_id,
        "dedupid": ev.dedupid,
        "device": ev.device,
        "component": ev.component,
        "eventClass": ev.event_class,
        "eventKey": ev.event_key,
        "eventClassKey": ev.event_class_key,
        "severity": ev.severity,
        "summary": ev.summary,
        "message": ev.message,
        "status": status,
        "count": count,
        "firstTime": iso(first_time),
        "lastTime": iso(last_time),
        "agent": ev.agent,
        "source": ev.source,
        "details": ev.details,
    }
