"""ITSM Events API (seed 004): the request record, and the incman event that stands for it.

The record is created with the seed's default values, updated by a matching event and woken
from `waiting_for` at its `waiting_until`, in the seed's response shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incman.domain.formats.itsm_directory import (
    EMPTY,
    Directory,
    ServiceInstance,
    Template,
    team_for,
)
from incman.domain.formats.itsm_match import ci_key, service_instance_of
from incman.domain.formats.itsm_request import (
    EVENT_CLASS,
    FINAL_STATUSES,
    IMPACT_SEVERITY,
    MEMBER_REQUIRED,
    ItsmError,
    iso,
    parse_iso,
    ref,
)

WAITING = "waiting_for"  # the status `waiting_until` ends
CLOCK_STOPPED = frozenset({"waiting_for", "waiting_for_customer"})
# Fields of the seed's response that incman has nothing to fill with: always these values.
FIXED = {
    "organization": None,
    "project": None,
    "resolution_target_at": None,
    "response_target_at": None,
    "requester_resolution_target_at": None,
    "grouping": "none",
    "grouped_into": None,
    "knowledge_article": None,
    "custom_fields": None,
    "reviewed": False,
    "satisfaction": None,
    "urgent": False,
    "addressed": False,
    "feedback": None,
}
# Parameters copied to the record as given.
_COPIED = (
    "completion_reason",
    "desired_completion_at",
    "downtime_start_at",
    "downtime_end_at",
    "waiting_until",
    "supplier_requestID",
    "support_domain",
    "internal_note",
)


def _check_completion(reason: str | None, status: str) -> None:
    if reason and status not in FINAL_STATUSES:
        raise ItsmError("completion_reason", "is only for a request whose status is completed")


def _member(
    params: Mapping[str, Any], status: str, user: str, workflow: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The member given; else the workflow's manager (template); else the current user when
    the status needs a member."""
    member = ref(params.get("member"), params.get("member_id"))
    if member is None and workflow and workflow.get("manager"):
        member = ref(workflow["manager"])
    if member is None and status in MEMBER_REQUIRED:
        member = ref(user)
    return member


def _service_instance(
    params: Mapping[str, Any], devices: Mapping[str, Any], directory: Directory
) -> tuple[dict[str, Any] | None, ServiceInstance | None]:
    """The record's service instance (with its directory id when known) and its entry."""
    name = service_instance_of(params, devices)
    if not name:
        return None, None
    given_name = params.get("service_instance") or (name if not name.startswith("#") else None)
    found = directory.find_service_instance(given_name, params.get("service_instance_id"))
    if found is not None:
        return {"name": found.name, "id": found.id}, found
    return ref(given_name, params.get("service_instance_id")), None


def _ci(params: Mapping[str, Any]) -> dict[str, Any] | None:
    if not ci_key(params):
        return None
    return {
        "label": params.get("ci"),
        "id": params.get("ci_id"),
        "source": params.get("ci_source"),
        "sourceID": params.get("ci_sourceID"),
    }


def _workflow(params: Mapping[str, Any], template: Template | None) -> dict[str, Any] | None:
    flow = template.workflow if template else None
    ident = params.get("workflow_id") or (flow or {}).get("id")
    if ident is None and not flow:
        return None
    return {"id": ident, "subject": (flow or {}).get("subject")}


def new_record(
    params: Mapping[str, Any],
    user: str,
    devices: Mapping[str, Any],
    now: datetime,
    directory: Directory = EMPTY,
    template: Template | None = None,
) -> dict[str, Any]:
    """The request an event creates, with the seed's default values. `params` already hold
    the template's values (itsm_directory.apply_template)."""
    if not params.get("subject"):
        raise ItsmError("subject", "is required to create a request")
    si_ref, si = _service_instance(params, devices, directory)
    category = params.get("category") or ("incident" if si_ref else "other")
    workflow = template.workflow if template else None
    status = params.get("status") or ("workflow_pending" if workflow else "assigned")
    _check_completion(params.get("completion_reason"), status)
    requested_by = ref(params.get("requested_by"), params.get("requested_by_id")) or ref(user)
    member = _member(params, status, user, workflow)
    stamp = iso(now)
    record: dict[str, Any] = {
        "id": None,
        "subject": params["subject"],
        "category": category,
        "impact": params.get("impact") or ("top" if category == "incident" else None),
        "status": status,
        "source": params.get("source") or "Event",
        "sourceID": params.get("source_id"),
        "service_instance": si_ref,
        "ci": _ci(params),
        "requested_by": requested_by,
        "requested_for": ref(params.get("requested_for"), params.get("requested_for_id"))
        or requested_by,
        "created_by": ref(user),
        "member": member,
        "team": team_for(directory, params, member, si, user),
        "supplier": ref(params.get("supplier"), params.get("supplier_id")),
        "problem": ref(None, params.get("problem_id")),
        "workflow": _workflow(params, template),
        "template": (
            {"id": template.id, "subject": template.params.get("subject")} if template else None
        ),
        "completed_at": stamp if status in FINAL_STATUSES else None,
        "created_at": stamp,
        "updated_at": stamp,
        **{name: params.get(name) for name in _COPIED},
    }
    return finish(record)


def _minutes(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(0, int((parse_iso(end) - parse_iso(start)).total_seconds() // 60))


def finish(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with every field of the seed's response: the derived ones computed from
    the others, the ones incman has no value for at their fixed value."""
    out = {**FIXED, **record}
    status = out.get("status")
    if status in FINAL_STATUSES:
        target: Any = "no_target"
    elif status in CLOCK_STOPPED:
        target = "clock_stopped"
    else:
        target = out.get("desired_completion_at") or "best_effort"
    out["next_target_at"] = target
    # An assignment nobody has taken up yet: the request still waits in `assigned`.
    out["new_assignment"] = status == "assigned" and bool(out.get("team") or out.get("member"))
    out["resolution_duration"] = (
        _minutes(out.get("created_at"), out.get("completed_at"))
        if status in FINAL_STATUSES
        else None
    )
    return out


def _assignment(
    out: Mapping[str, Any],
    params: Mapping[str, Any],
    status: str,
    user: str,
    directory: Directory,
) -> dict[str, Any]:
    """What an update does to member and team."""
    wanted: dict[str, Any] = {}
    if "member" in params or "member_id" in params:
        wanted["member"] = ref(params.get("member"), params.get("member_id"))
    elif status in MEMBER_REQUIRED and not out.get("member"):
        wanted["member"] = ref(user)
    if "team" in params or "team_id" in params:
        si_ref = out.get("service_instance") or {}
        si = directory.find_service_instance(si_ref.get("name"), si_ref.get("id"))
        member = wanted.get("member", out.get("member"))
        wanted["team"] = team_for(directory, params, member, si, user)
    return wanted


def apply_update(
    record: Mapping[str, Any],
    params: Mapping[str, Any],
    user: str,
    now: datetime,
    directory: Directory = EMPTY,
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
    wanted.update(_assignment(out, params, status, user, directory))
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
    return finish(out), changed


def waiting_over(record: Mapping[str, Any], now: datetime) -> bool:
    """A `waiting_for` request whose `waiting_until` has come."""
    until = record.get("waiting_until")
    return record.get("status") == WAITING and bool(until) and parse_iso(str(until)) <= now


def resume_waiting(record: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The seed's `waiting_until`: at that time the status goes from waiting_for back to
    assigned (the time is spent, so it is cleared). None when it is not time yet."""
    if not waiting_over(record, now):
        return None
    out = {**record, "status": "assigned", "waiting_until": None, "updated_at": iso(now)}
    return finish(out)


def event_fields(record: Mapping[str, Any], note: str | None) -> dict[str, Any]:
    """The incman event of a request: device = the CI, else the service instance; a request
    with neither has no device (and so is never suppressed)."""
    ci = record.get("ci") or {}
    si = record.get("service_instance") or {}
    si_name = si.get("name") or (f"service-instance#{si['id']}" if si.get("id") else "")
    if ci.get("label"):
        ci_name = str(ci["label"])
    elif ci.get("sourceID"):
        ci_name = f"{ci.get('source') or 'ci'}:{ci['sourceID']}"
    else:
        ci_name = f"ci#{ci['id']}" if ci.get("id") else ""
    return {
        "device": ci_name or si_name,
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
