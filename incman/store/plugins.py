"""A notification's plugin, built with what incman gives it; an incident's remote reference.

What incman gives it: its flood guard (Redis) and, for a plugin that keeps local records,
their store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from incman.integrations.base import Integration, RemoteIncident
from incman.integrations.registry import integration_class
from incman.store.catalog import NotificationDef
from incman.store.debug_records import DebugStore
from incman.store.flood import flood_guard
from incman.store.models import Incident
from incman.store.ticket_map import TicketMapStore

# plugin name → the store of its local records
RECORD_STORES: dict[str, Callable[[], Any]] = {
    "debug": DebugStore,
    "casm": lambda: TicketMapStore("casm"),
}


def make_plugin(notif: NotificationDef) -> Integration[Any]:
    """The plugin of a notification; ConfigurationError naming every problem of its config."""
    cls = integration_class(notif.integration)
    cfg = cls.config_class.parse(notif.resolved_config(), notif.integration, notif.id)
    records = RECORD_STORES.get(notif.integration)
    return cls(
        cfg,
        notif.id,
        guard=flood_guard(notif.integration, cfg),
        records=records() if records is not None else None,
    )


def remote_ref(inc: Incident) -> RemoteIncident:
    return RemoteIncident(
        remote_id=inc.remote_id or "",
        number=inc.number or "",
        url=inc.url or "",
        state=inc.state,
        remote_state=inc.remote_state or "",
    )
