"""ITSM Events API (seed 004): event matching.

An event within 24 hours of an open request with the same source, service instance and CI
updates it; without a CI, the subject, note, account, source and requested_for must be the
same too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from incman.domain.formats.itsm_request import UPDATABLE

MATCH_WINDOW = timedelta(hours=24)
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


def ignored_on_update(params: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Parameters of a matching event that an existing request does not take."""
    return sorted(
        k
        for k, v in params.items()
        if k not in UPDATABLE
        and k not in MATCHING
        and not (k == "subject" and v == record.get("subject"))
    )
