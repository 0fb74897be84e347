"""What a worker knows while it carries out one action, and the small helpers every
handler shares: the plugin, the remote reference of an incident, notes, the event."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from incman.integrations.base import (
    NOTE,
    Integration,
)
from incman.store.catalog import NotificationDef
from incman.store.db import new_session
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


def load_event(event_id: str | None) -> Event | None:
    if event_id is None:
        return None
    with new_session() as session:
        return session.get(Event, event_id)
