"""What a worker knows while it carries out one action, and the helpers all handlers share.

The small helpers every handler shares: the plugin, the remote reference of an incident, notes,
the event."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from incman.integrations.base import (
    NOTE,
    STATUS,
    Integration,
)
from incman.integrations.errors import IntegrationError
from incman.store.catalog import NotificationDef
from incman.store.db import new_session, session_scope
from incman.store.models import (
    Event,
    Incident,
)
from incman.store.plugins import remote_ref

log = logging.getLogger(__name__)


@dataclass
class Job:
    action_id: int
    kind: str
    notif: NotificationDef
    plugin: Integration
    event_id: str | None
    incident_id: str | None
    payload: dict[str, Any]


def note_on(job: Job, inc: Incident, text: str) -> None:
    if not job.plugin.supports(NOTE):
        log.info("%s has no notes: skipped note on %s (%s)", job.plugin.name, inc.number, text)
        return
    job.plugin.add_note(remote_ref(inc), text)


def record_remote_state(job: Job, inc: Incident, state: str) -> str | None:
    """Store the remote's own state of `inc` after an action moved it to `state` (the poller
    reads open incidents only, so a closed one would keep its last state forever): read back
    where the integration can, else the one remote state its status map has for `state`.
    Unknown (a failed read, an ambiguous map) is stored as None, never the stale value."""
    remote: str | None = None
    if job.plugin.supports(STATUS) and inc.remote_id:
        try:
            fresh = job.plugin.get_status([remote_ref(inc)]).get(inc.remote_id)
            remote = fresh.remote_state if fresh is not None else None
        except IntegrationError as exc:  # the action is done; only the record is unknown
            log.info("could not read back the state of %s: %s", inc.number, exc)
    else:
        names = [name for name, mapped in job.plugin.status_map.items() if mapped == state]
        remote = names[0] if len(names) == 1 else None
    with session_scope() as session:
        row = session.get(Incident, inc.id)
        if row is not None:
            row.remote_state = remote
    return remote


def load_event(event_id: str | None) -> Event | None:
    if event_id is None:
        return None
    with new_session() as session:
        return session.get(Event, event_id)
