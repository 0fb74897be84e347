"""The lifecycle decision table: what a change on one side does on the other.

For each event change and each remote incident change, what happens on the other side, per the
notification's options (the seed's checkboxes)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

OPEN_STATES = ("PENDING", "OPEN", "ASSIGNED")
DONE_STATES = ("RESOLVED", "CLOSED")


@dataclass(frozen=True)
class Options:
    """The seed's checkboxes, with the seed's defaults."""

    send_clear: bool = False
    initial_occurrence_only: bool = True
    one_incident_per_event: bool = True
    ack_event_on_create: bool = False
    ack_event_on_assign: bool = False
    close_event_on_resolve: bool = False
    close_incident_on_event_close: bool = True
    reopen_incident_on_event_reopen: bool = True
    reopen_incident_on_reoccur: bool = False
    assign_incident_on_event_ack: bool = True
    check_closed_before_assign: bool = True
    add_event_notes: bool = True
    hidden: bool = False

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Options:
        return cls(**raw)


# -- a new event for a notification (trigger matched, or a manual "create incident") --------

CREATE = "create"  # open a new incident
ASSOCIATE = "associate"  # link to the existing incident (+ note where notes are supported)
REOPEN_AND_ASSOCIATE = "reopen"  # re-open the existing incident, then link
CREATE_WITH_WARNING = "create_warn"  # wanted a re-open the integration cannot do


def decide_new_event(options: Options, existing_state: str | None, can_reopen: bool) -> str:
    """The seed's "Associating to Existing Incidents", as one function.

    `existing_state` is the state of the incident last linked to an event with the same
    dedupid for this notification (fresh from the remote when "check closed" applies and the
    integration can read status; else the local state), or None when there is none."""
    if existing_state is None:
        return CREATE
    is_open = existing_state in OPEN_STATES
    if options.reopen_incident_on_reoccur:
        # Re-open wins over "check closed", where the integration can.
        if is_open:
            return ASSOCIATE
        return REOPEN_AND_ASSOCIATE if can_reopen else CREATE_WITH_WARNING
    if options.check_closed_before_assign:
        return ASSOCIATE if is_open else CREATE
    return ASSOCIATE


def association_note(event_id: str) -> str:
    return f"New event for existing incident: {event_id}"


# -- event changes → incident actions ------------------------------------------------------

EVENT_CHANGES = ("reoccur", "clear", "acknowledge", "close", "reopen", "note")
_ACTION_FOR_CHANGE = {
    "clear": ("clear", "send_clear"),
    "acknowledge": ("assign", "assign_incident_on_event_ack"),
    "close": ("close", "close_incident_on_event_close"),
    "reopen": ("reopen", "reopen_incident_on_event_reopen"),
    "note": ("note", "add_event_notes"),
}


def incident_action_for(
    change: str,
    options: Options,
    *,
    linked: bool,
    manual: bool = False,
    has_enabled_trigger: bool = True,
) -> str | None:
    """Which outbox action an event change queues for one linked notification (or None).

    A manually created incident follows its event only when the notification has Send Clear
    and an enabled trigger (the seed's note on manual incidents)."""
    if change not in EVENT_CHANGES:
        raise ValueError(f"unknown event change {change!r}")
    if change == "reoccur":
        return None if options.initial_occurrence_only else "reoccur"
    if not linked:
        return None
    if manual and not (options.send_clear and has_enabled_trigger):
        return None
    kind, option = _ACTION_FOR_CHANGE[change]
    return kind if getattr(options, option) else None


def incident_update_for(
    change: str, options: Options, *, manual: bool = False, has_enabled_trigger: bool = True
) -> str | None:
    """Whether an event change also updates the incident: its fields rendered again from the
    changed event and sent with the integration's `update` (Slack's `update_template`; the
    mapped fields for ServiceNow, Jira, RT, HTTP). The seed's changes that "update the
    incident" beyond its state: the event re-occurring (when not "Send only on Initial
    Occurrence") and the event clearing ("Send Clear: Update the Incident when the Event
    clears"). Acknowledge, close, re-open and notes have their own actions."""
    if change not in EVENT_CHANGES:
        raise ValueError(f"unknown event change {change!r}")
    if change == "reoccur":
        return None if options.initial_occurrence_only else "update"
    if change == "clear" and options.send_clear:
        return None if manual and not has_enabled_trigger else "update"
    return None


# -- remote incident changes → event changes -----------------------------------------------


def event_change_for_remote(old_state: str, new_state: str, options: Options) -> str | None:
    """What a remote state change (seen by the poller) does to the linked events."""
    if old_state == new_state:
        return None
    if new_state in DONE_STATES and old_state not in DONE_STATES:
        return "close" if options.close_event_on_resolve else None
    if new_state == "ASSIGNED" and old_state == "OPEN":
        return "acknowledge" if options.ack_event_on_assign else None
    return None


def ack_event_after_create(options: Options) -> bool:
    return options.ack_event_on_create
