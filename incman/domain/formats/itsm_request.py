"""ITSM Events API (seed 004): the parameters, their kinds and checks.

The request record lives in itsm_record, the matching rules in itsm_match, teams and templates
in itsm_directory. Pure: `now` is always passed in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

EVENT_CLASS = "/ITSM/Request"

CATEGORIES = (
    "incident",
    "rfc",
    "rfi",
    "reservation",
    "order",
    "fulfillment",
    "complaint",
    "compliment",
    "other",
)
STATUSES = (
    "declined",
    "on_backlog",
    "assigned",
    "accepted",
    "in_progress",
    "waiting_for",
    "waiting_for_customer",
    "reservation_pending",
    "workflow_pending",
    "project_pending",
    "completed",
)
IMPACTS = ("none", "low", "medium", "high", "top")
COMPLETION_REASONS = (
    "solved",
    "workaround",
    "gone",
    "duplicate",
    "withdrawn",
    "no_reply",
    "rejected",
    "conflict",
    "declined",
    "unsolvable",
)
FINAL_STATUSES = frozenset({"completed"})
# Statuses that need a member: the current user is put there when none is given.
MEMBER_REQUIRED = frozenset(
    {"accepted", "in_progress", "waiting_for", "waiting_for_customer", "completed"}
)
IMPACT_SEVERITY = {"top": 5, "high": 4, "medium": 3, "low": 2, "none": 2}

CHOICES = {
    "category": CATEGORIES,
    "status": STATUSES,
    "impact": IMPACTS,
    "completion_reason": COMPLETION_REASONS,
}
TEXT_LIMITS = {
    "ci": 255,
    "ci_source": 255,
    "ci_sourceID": 255,
    "internal_note": 65536,
    "member": 255,
    "note": 65536,
    "requested_by": 255,
    "requested_for": 255,
    "service_instance": 255,
    "source": 255,
    "source_id": 255,
    "subject": 255,
    "supplier": 255,
    "supplier_requestID": 255,
    "team": 255,
}
ID_PARAMETERS = (
    "ci_id",
    "member_id",
    "problem_id",
    "requested_by_id",
    "requested_for_id",
    "service_instance_id",
    "supplier_id",
    "support_domain",
    "team_id",
    "template_id",
    "workflow_id",
)
TIME_PARAMETERS = ("desired_completion_at", "downtime_end_at", "downtime_start_at", "waiting_until")
PARAMETERS = tuple(sorted({*CHOICES, *TEXT_LIMITS, *ID_PARAMETERS, *TIME_PARAMETERS}))
ALIASES = {"sourceID": "source_id"}
# The only parameters that may change a request an event matched.
UPDATABLE = (
    "completion_reason",
    "desired_completion_at",
    "downtime_start_at",
    "downtime_end_at",
    "status",
    "waiting_until",
    "team",
    "team_id",
    "member",
    "member_id",
)


class ItsmError(ValueError):
    """A parameter that cannot be used: its name and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _parse_time(name: str, value: str) -> str:
    try:
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ItsmError(name, f"{value!r} is not an ISO-8601 date and time") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return iso(stamp)


def _parse_one(name: str, value: Any, given: str) -> Any:
    """One parameter's value by its kind; errors name the parameter as the caller wrote it."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ItsmError(given, "must be a single text or number value")
    text = str(value).strip()
    if name in CHOICES:
        if text not in CHOICES[name]:
            raise ItsmError(given, f"unknown option {text!r} ({', '.join(CHOICES[name])})")
        return text
    if name in ID_PARAMETERS:
        if not text.isdigit() or int(text) < 1:
            raise ItsmError(given, f"{text!r} is not a record ID (a positive integer)")
        return int(text)
    if name in TIME_PARAMETERS:
        return _parse_time(given, text)
    if len(text) > TEXT_LIMITS[name]:
        raise ItsmError(given, f"is longer than {TEXT_LIMITS[name]} characters")
    return text or None


def parse_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's parameters, typed and checked; `sourceID` is `source_id`. Unknown → error."""
    out: dict[str, Any] = {}
    for given, value in raw.items():
        name = ALIASES.get(given, given)
        if name not in PARAMETERS:
            raise ItsmError(given, "unknown parameter")
        parsed = _parse_one(name, value, given)
        if name in out and out[name] != parsed:
            raise ItsmError(given, f"conflicts with {name} given too")
        if parsed is not None:
            out[name] = parsed
    start, end = out.get("downtime_start_at"), out.get("downtime_end_at")
    if start and end and end < start:
        raise ItsmError("downtime_end_at", "is before downtime_start_at")
    return out


def iso(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A stored ISO-8601 time (as `iso` writes it) back as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ref(name: Any = None, ident: Any = None) -> dict[str, Any] | None:
    """A reference as the seed writes one (`{"name": ..., "id": ...}`), or None."""
    return {"name": name, "id": ident} if name is not None or ident is not None else None
