"""ITSM Events API (seed 004): parameters, default values, the 24 h matching rules and what
an event may change on an existing request. Pure: `now` is always passed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

MATCH_WINDOW = timedelta(hours=24)
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


def _ref(name: Any = None, ident: Any = None) -> dict[str, Any] | None:
    return {"name": name, "id": ident} if name is not None or ident is not None else None


def ci_key(params: Mapping[str, Any]) -> str:
    """How the request names its configuration item ("" without one)."""
    if params.get("ci"):
        return f"label:{params['ci']}"
    if params.get("ci_id"):
        return f"id:{params['ci_id']}"
    if params.get("ci_sourceID"):
        return f"source:{params.get('ci_source') or ''}:{params['ci_sourceID']}"
    return ""


def service_instance_of(params: Mapping[str, Any], devices: Mapping[str, Any]) -> str:
    """The service instance given, else the first one of the CI (device inventory)."""
    if params.get("service_instance"):
        return str(params["service_instance"])
    if params.get("service_instance_id"):
        return f"#{params['service_instance_id']}"
    device = devices.get(str(params.get("ci") or "")) or {}
    found = device.get("service_instance") or device.get("serviceInstances") or ""
    if isinstance(found, list):
        found = found[0] if found else ""
    return str(found)[:255]


def requested_for_of(params: Mapping[str, Any], user: str) -> str:
    for name in ("requested_for", "requested_for_id", "requested_by", "requested_by_id"):
        if params.get(name):
            return str(params[name]) if not name.endswith("_id") else f"#{params[name]}"
    return user


@dataclass(frozen=True)
class Facts:
    """What the matching rules compare on a request."""

    source: str
    service_instance: str
    ci: str
    subject: str | None
    note: str | None
    requested_for: str
    account: str
    created_at: datetime | None = None
    open: bool = True


def facts_of(params: Mapping[str, Any], account: str, devices: Mapping[str, Any]) -> Facts:
    return Facts(
        source=params.get("source") or "Event",
        service_instance=service_instance_of(params, devices),
        ci=ci_key(params),
        subject=params.get("subject"),
        note=params.get("note"),
        requested_for=requested_for_of(params, account),
        account=account,
    )


def is_match(existing: Facts, incoming: Facts, now: datetime) -> bool:
    """The seed's event matching: an open request created within the past 24 hours with the
    same source, service instance and CI; without a CI, the same subject, note, account,
    source and requested_for."""
    if not existing.open or existing.created_at is None:
        return False
    if now - existing.created_at > MATCH_WINDOW:
        return False
    if incoming.ci:
        return (existing.source, existing.service_instance, existing.ci) == (
            incoming.source,
            incoming.service_instance,
            incoming.ci,
        )
    return (
        existing.subject,
        existing.note,
        existing.account,
        existing.source,
        existing.requested_for,
    ) == (
        incoming.subject,
        incoming.note,
        incoming.account,
        incoming.source,
        incoming.requested_for,
    )


def find_match(
    candidates: Iterable[tuple[Any, Facts]], incoming: Facts, now: datetime
) -> Any | None:
    """The newest candidate the incoming event matches (candidates: (key, facts))."""
    best: tuple[datetime, Any] | None = None
    for key, facts in candidates:
        if (
            is_match(facts, incoming, now)
            and facts.created_at is not None
            and (best is None or facts.created_at > best[0])
        ):
            best = (facts.created_at, key)
    return best[1] if best else None


def note_is_new(note: str | None, earlier: Iterable[str]) -> bool:
    """A note is added only when its text differs from every earlier note."""
    if not note or not note.strip():
        return False
    return note.strip() not in {text.strip() for text in earlier}


def _member(params: Mapping[str, Any], status: str, user: str) -> dict[str, Any] | None:
    member = _ref(params.get("member"), params.get("member_id"))
    if member is None and status in MEMBER_REQUIRED:
        member = _ref(user)
    return member


def new_record(
    params: Mapping[str, Any], user: str, devices: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The request an event creates, with the seed's default values."""
    if not params.get("subject"):
        raise ItsmError("subject", "is required to create a request")
    service_instance = service_instance_of(params, devices)
    category = params.get("category") or ("incident" if service_instance else "other")
    status = params.get("status") or "assigned"
    _check_completion(params.get("completion_reason"), status)
    requested_by = _ref(params.get("requested_by"), params.get("requested_by_id")) or _ref(user)
    requested_for = _ref(params.get("requested_for"), params.get("requested_for_id"))
    si_ref = None
    if service_instance:
        si_ref = _ref(
            params.get("service_instance")
            or (service_instance if not service_instance.startswith("#") else None),
            params.get("service_instance_id"),
        )
    ci = None
    if ci_key(params):
        ci = {
            "label": params.get("ci"),
            "id": params.get("ci_id"),
            "source": params.get("ci_source"),
            "sourceID": params.get("ci_sourceID"),
        }
    stamp = iso(now)
    return {
        "id": None,
        "subject": params["subject"],
        "category": category,
        "impact": params.get("impact") or ("top" if category == "incident" else None),
        "status": status,
        "source": params.get("source") or "Event",
        "sourceID": params.get("source_id"),
        "service_instance": si_ref,
        "ci": ci,
        "requested_by": requested_by,
        "requested_for": requested_for or requested_by,
        "created_by": _ref(user),
        "member": _member(params, status, user),
        "team": _ref(params.get("team"), params.get("team_id")),
        "supplier": _ref(params.get("supplier"), params.get("supplier_id")),
        "supplier_requestID": params.get("supplier_requestID"),
        "problem": _ref(None, params.get("problem_id")),
        "workflow": _ref(None, params.get("workflow_id")),
        "template": _ref(None, params.get("template_id")),
        "support_domain": params.get("support_domain"),
        "completion_reason": params.get("completion_reason"),
        "completed_at": stamp if status in FINAL_STATUSES else None,
        "desired_completion_at": params.get("desired_completion_at"),
        "downtime_start_at": params.get("downtime_start_at"),
        "downtime_end_at": params.get("downtime_end_at"),
        "waiting_until": params.get("waiting_until"),
        "internal_note": params.get("internal_note"),
        "created_at": stamp,
        "updated_at": stamp,
    }


def _check_completion(reason: str | None, status: str) -> None:
    if reason and status not in FINAL_STATUSES:
        raise ItsmError("completion_reason", "is only for a request whose status is completed")


def apply_update(
    record: Mapping[str, Any], params: Mapping[str, Any], user: str, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """The request after a matching event: only UPDATABLE parameters count. Returns the new
    record and the names of the fields that changed."""
    out = dict(record)
    status = params.get("status") or out["status"]
    _check_completion(params.get("completion_reason"), status)
    wanted: dict[str, Any] = {
        k: params[k]
        for k in (
            "completion_reason",
            "desired_completion_at",
            "downtime_start_at",
            "downtime_end_at",
            "waiting_until",
            "status",
        )
        if k in params
    }
    if "team" in params or "team_id" in params:
        wanted["team"] = _ref(params.get("team"), params.get("team_id"))
    if "member" in params or "member_id" in params:
        wanted["member"] = _ref(params.get("member"), params.get("member_id"))
    elif status in MEMBER_REQUIRED and not out.get("member"):
        wanted["member"] = _ref(user)
    if status in FINAL_STATUSES and not out.get("completed_at"):
        wanted["completed_at"] = iso(now)
    start = wanted.get("downtime_start_at", out.get("downtime_start_at"))
    end = wanted.get("downtime_end_at", out.get("downtime_end_at"))
    if start and end and end < start:
        raise ItsmError("downtime_end_at", "is before downtime_start_at")
    changed = [k for k, v in wanted.items() if out.get(k) != v]
    out.update(wanted)
    if changed:
        out["updated_at"] = iso(now)
    return out, changed


# Parameters that name what an event is about: they found the match, they change nothing.
MATCHING = frozenset(
    {
        "source",
        "source_id",
        "ci",
        "ci_id",
        "ci_source",
        "ci_sourceID",
        "service_instance",
        "service_instance_id",
        "requested_for",
        "requested_for_id",
        "requested_by",
        "requested_by_id",
        "note",
    }
)


def ignored_on_update(params: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Parameters of a matching event that an existing request does not take."""
    return sorted(
        k
        for k, v in params.items()
        if k not in UPDATABLE
        and k not in MATCHING
        and not (k == "subject" and v == record.get("subject"))
    )


def event_fields(record: Mapping[str, Any], note: str | None) -> dict[str, Any]:
    """The incman event of a request (device = CI, else service instance, else source)."""
    ci = record.get("ci") or {}
    si = record.get("service_instance") or {}
    si_name = si.get("name") or (f"service-instance#{si['id']}" if si.get("id") else "")
    if ci.get("label"):
        ci_name = str(ci["label"])
    elif ci.get("sourceID"):
        ci_name = f"{ci.get('source') or 'ci'}:{ci['sourceID']}"
    else:
        ci_name = f"ci#{ci['id']}" if ci.get("id") else ""
    device = ci_name or si_name or record["source"]
    return {
        "device": device,
        "component": si_name if ci_name else "",
        "eventClass": EVENT_CLASS,
        "eventKey": record.get("sourceID") or "",
        "severity": IMPACT_SEVERITY.get(record.get("impact") or "", 3),
        "summary": record["subject"],
        "message": note or "",
        "agent": "events-api",
        "source": record["source"],
        "dedupid": f"itsm-request:{record['id']}",
        "details": {"itsm": dict(record)},
    }
