"""Event management (seed 003): the annotate and status batch items, and what a status asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 1000
MAX_ANNOTATION = 65536

# The seed's status names (and the EM_ spellings) → incman event status.
STATUS_TARGETS = {
    "STATUS_DEFAULT": "New",
    "STATUS_OPEN": "Acknowledged",
    "STATUS_SUPPRESSED": "Suppressed",
    "STATUS_CLOSED": "Closed",
}
STATUS_TARGETS.update({"EM_" + name: target for name, target in list(STATUS_TARGETS.items())})

_OPEN = ("New", "Acknowledged", "Suppressed")


class ItemError(ValueError):
    """One item cannot be done: the field at fault and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class AnnotationItem:
    event_id: str
    occurrence_id: str
    annotation_id: str | None
    text: str


@dataclass(frozen=True)
class StatusItem:
    event_id: str
    occurrence_id: str
    target: str  # New, Acknowledged, Suppressed or Closed


def batch_items(doc: Any, key: str) -> list[Any]:
    """The item list of a batch body (`{"annotations": [...]}`); ItemError when malformed."""
    if not isinstance(doc, dict):
        raise ItemError(key, "the body must be a JSON object")
    items = doc.get(key)
    if not isinstance(items, list):
        raise ItemError(key, "is required: a list of items")
    if not items:
        raise ItemError(key, "must hold at least one item")
    if len(items) > MAX_ITEMS:
        raise ItemError(key, f"{len(items)} items; at most {MAX_ITEMS}")
    return items


def _address(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        raise ItemError("item", "must be a JSON object")
    event_id = raw.get("eventId")
    occurrence_id = raw.get("occurrenceId")
    if not isinstance(event_id, str) or not event_id.strip():
        raise ItemError("eventId", "is required (a string)")
    if not isinstance(occurrence_id, str) or not occurrence_id.strip():
        raise ItemError("occurrenceId", "is required (a string)")
    occurrence_seq(event_id, occurrence_id)
    return event_id, occurrence_id


def occurrence_seq(event_id: str, occurrence_id: str) -> int:
    """The n of an occurrence id `<eventId>:<n>` of this event."""
    prefix, _, seq = occurrence_id.rpartition(":")
    if prefix != event_id or not seq.isdigit() or int(seq) < 1:
        raise ItemError(
            "occurrenceId",
            f"{occurrence_id!r} is not an occurrence of event {event_id!r} (<eventId>:<n>)",
        )
    return int(seq)


def item_echo(raw: Any) -> dict[str, Any]:
    """The addressing fields of an item, echoed in its answer."""
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in ("eventId", "occurrenceId") if k in raw}


def parse_annotation(raw: Any) -> AnnotationItem:
    event_id, occurrence_id = _address(raw)
    annotation_id = raw.get("annotationId")
    if annotation_id is not None and (not isinstance(annotation_id, str) or not annotation_id):
        raise ItemError("annotationId", "must be a non-empty string when given")
    # Optional (seed 003): without it a new annotation is empty, and an update empties one.
    text = raw.get("annotation")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise ItemError("annotation", "must be a string: the annotation's text")
    if len(text) > MAX_ANNOTATION:
        raise ItemError("annotation", f"is longer than {MAX_ANNOTATION} characters")
    return AnnotationItem(event_id, occurrence_id, annotation_id, text)


def target_status(raw: dict[str, Any]) -> str:
    """The status an item asks for: `statusWrapper.status` when given, else `acknowledged`."""
    wrapper = raw.get("statusWrapper")
    if wrapper is not None:
        if not isinstance(wrapper, dict) or not isinstance(wrapper.get("status"), str):
            raise ItemError("statusWrapper.status", "is required in statusWrapper (a string)")
        name = wrapper["status"].strip().upper()
        if name not in STATUS_TARGETS:
            names = ", ".join(n for n in STATUS_TARGETS if not n.startswith("EM_"))
            raise ItemError(
                "statusWrapper.status",
                f"unknown status {wrapper['status']!r} ({names}, or EM_ spellings)",
            )
        return STATUS_TARGETS[name]
    if "acknowledged" in raw:
        if not isinstance(raw["acknowledged"], bool):
            raise ItemError("acknowledged", "must be true or false")
        return "Acknowledged" if raw["acknowledged"] else "New"
    raise ItemError("statusWrapper", "either acknowledged or statusWrapper is required")


def parse_status_item(raw: Any) -> StatusItem:
    event_id, occurrence_id = _address(raw)
    return StatusItem(event_id, occurrence_id, target_status(raw))


def status_steps(current: str, target: str) -> tuple[str, ...]:
    """The event operations that take an event from `current` to `target`, in order.

    Steps: `reopen`, `set_new` (drop acknowledgement or suppression), `acknowledge`,
    `suppress`, `close`. A closed or cleared event must be re-opened (STATUS_DEFAULT)
    before it can be acknowledged or suppressed."""
    if current == target:
        return ()
    if target == "Closed":
        return ("close",)
    if target == "New":
        return ("set_new",) if current in _OPEN else ("reopen",)
    if current not in _OPEN:
        raise ItemError(
            "status",
            f"event is {current}; only open events can be "
            f"{target.lower()} (STATUS_DEFAULT re-opens it)",
        )
    return ("acknowledge",) if target == "Acknowledged" else ("suppress",)
