"""The lifecycle decision table, option by option, as the seed's option table states it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from incman.domain.lifecycle import (
    ASSOCIATE,
    CREATE,
    CREATE_WITH_WARNING,
    REOPEN_AND_ASSOCIATE,
    Options,
    ack_event_after_create,
    decide_new_event,
    event_change_for_remote,
    incident_action_for,
    incident_update_for,
)

D = Options()


def test_defaults_are_the_seeds() -> None:
    assert D.send_clear is False
    assert D.initial_occurrence_only is True
    assert D.one_incident_per_event is True
    assert D.ack_event_on_create is False
    assert D.ack_event_on_assign is False
    assert D.close_event_on_resolve is False
    assert D.close_incident_on_event_close is True
    assert D.reopen_incident_on_event_reopen is True
    assert D.reopen_incident_on_reoccur is False
    assert D.assign_incident_on_event_ack is True
    assert D.check_closed_before_assign is True
    assert D.add_event_notes is True
    assert D.hidden is False


# "Associating to Existing Incidents": (check closed, reopen on reoccur, existing state,
# integration can re-open) → decision.
NEW_EVENT_TABLE = [
    # no incident yet: always a new one
    (True, False, None, True, CREATE),
    (False, True, None, True, CREATE),
    # check closed off: always associate, open or not
    (False, False, "OPEN", True, ASSOCIATE),
    (False, False, "ASSIGNED", True, ASSOCIATE),
    (False, False, "CLOSED", True, ASSOCIATE),
    (False, False, "RESOLVED", False, ASSOCIATE),
    # check closed on: associate only while open
    (True, False, "OPEN", True, ASSOCIATE),
    (True, False, "PENDING", True, ASSOCIATE),
    (True, False, "RESOLVED", True, CREATE),
    (True, False, "CLOSED", False, CREATE),
    # re-open on reoccur: re-open instead, whatever check closed says
    (True, True, "CLOSED", True, REOPEN_AND_ASSOCIATE),
    (False, True, "CLOSED", True, REOPEN_AND_ASSOCIATE),
    (False, True, "RESOLVED", True, REOPEN_AND_ASSOCIATE),
    (True, True, "OPEN", True, ASSOCIATE),
    # ... and a new incident with a warning where the integration cannot re-open
    (True, True, "CLOSED", False, CREATE_WITH_WARNING),
    (False, True, "RESOLVED", False, CREATE_WITH_WARNING),
]


@pytest.mark.parametrize(
    ("check_closed", "reopen", "state", "can_reopen", "expected"), NEW_EVENT_TABLE
)
def test_new_event(
    check_closed: bool, reopen: bool, state: str | None, can_reopen: bool, expected: str
) -> None:
    options = replace(D, check_closed_before_assign=check_closed, reopen_incident_on_reoccur=reopen)
    assert decide_new_event(options, state, can_reopen) == expected


# (event change, option name, option value, linked) → action queued or None
EVENT_CHANGE_TABLE = [
    ("clear", "send_clear", True, True, "clear"),
    ("clear", "send_clear", False, True, None),
    ("clear", "send_clear", True, False, None),
    ("acknowledge", "assign_incident_on_event_ack", True, True, "assign"),
    ("acknowledge", "assign_incident_on_event_ack", False, True, None),
    ("close", "close_incident_on_event_close", True, True, "close"),
    ("close", "close_incident_on_event_close", False, True, None),
    ("reopen", "reopen_incident_on_event_reopen", True, True, "reopen"),
    ("reopen", "reopen_incident_on_event_reopen", False, True, None),
    ("note", "add_event_notes", True, True, "note"),
    ("note", "add_event_notes", False, True, None),
    ("note", "add_event_notes", True, False, None),
    ("reoccur", "initial_occurrence_only", True, True, None),
    ("reoccur", "initial_occurrence_only", False, True, "reoccur"),
    ("reoccur", "initial_occurrence_only", False, False, "reoccur"),
]


@pytest.mark.parametrize(("change", "option", "value", "linked", "expected"), EVENT_CHANGE_TABLE)
def test_event_change(
    change: str, option: str, value: bool, linked: bool, expected: str | None
) -> None:
    options = replace(D, **{option: value})
    assert incident_action_for(change, options, linked=linked) == expected


@pytest.mark.parametrize(
    ("send_clear", "has_trigger", "expected"),
    [(True, True, "assign"), (False, True, None), (True, False, None), (False, False, None)],
)
def test_manual_incidents_follow_events_only_with_send_clear_and_a_trigger(
    send_clear: bool, has_trigger: bool, expected: str | None
) -> None:
    options = replace(D, send_clear=send_clear)
    assert (
        incident_action_for(
            "acknowledge", options, linked=True, manual=True, has_enabled_trigger=has_trigger
        )
        == expected
    )


# The seed's "update the incident" beyond its state: a repeat (not initial-only), a clear.
UPDATE_TABLE = [
    ("reoccur", "initial_occurrence_only", False, "update"),
    ("reoccur", "initial_occurrence_only", True, None),
    ("clear", "send_clear", True, "update"),
    ("clear", "send_clear", False, None),
    ("acknowledge", "assign_incident_on_event_ack", True, None),  # assign says it
    ("close", "close_incident_on_event_close", True, None),  # close says it
    ("reopen", "reopen_incident_on_event_reopen", True, None),
    ("note", "add_event_notes", True, None),  # the note is the update
]


@pytest.mark.parametrize(("change", "option", "value", "expected"), UPDATE_TABLE)
def test_which_event_changes_update_the_incident(
    change: str, option: str, value: bool, expected: str | None
) -> None:
    assert incident_update_for(change, replace(D, **{option: value})) == expected


def test_a_manual_incident_is_updated_on_clear_only_with_an_enabled_trigger() -> None:
    options = replace(D, send_clear=True)
    assert incident_update_for("clear", options, manual=True) == "update"
    assert incident_update_for("clear", options, manual=True, has_enabled_trigger=False) is None
    with pytest.raises(ValueError, match="unknown event change"):
        incident_update_for("explode", D)


def test_unknown_change_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown event change"):
        incident_action_for("explode", D, linked=True)


# remote old → new state, option → event change
REMOTE_TABLE = [
    ("OPEN", "RESOLVED", "close_event_on_resolve", True, "close"),
    ("OPEN", "CLOSED", "close_event_on_resolve", True, "close"),
    ("ASSIGNED", "RESOLVED", "close_event_on_resolve", True, "close"),
    ("OPEN", "RESOLVED", "close_event_on_resolve", False, None),
    ("RESOLVED", "CLOSED", "close_event_on_resolve", True, None),
    ("OPEN", "ASSIGNED", "ack_event_on_assign", True, "acknowledge"),
    ("OPEN", "ASSIGNED", "ack_event_on_assign", False, None),
    ("ASSIGNED", "ASSIGNED", "ack_event_on_assign", True, None),
    ("RESOLVED", "OPEN", "close_event_on_resolve", True, None),
]


@pytest.mark.parametrize(("old", "new", "option", "value", "expected"), REMOTE_TABLE)
def test_remote_change(old: str, new: str, option: str, value: bool, expected: str | None) -> None:
    assert event_change_for_remote(old, new, replace(D, **{option: value})) == expected


def test_ack_after_create() -> None:
    assert ack_event_after_create(replace(D, ack_event_on_create=True)) is True
    assert ack_event_after_create(D) is False
