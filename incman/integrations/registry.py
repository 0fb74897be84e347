"""Integrations by name: built-ins as alias → dotted path, resolved lazily, plus plugins
registered by other packages under the entry-point group `incman.integrations`."""

from __future__ import annotations

import importlib
from functools import cache, lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from incman.integrations.errors import ConfigurationError

if TYPE_CHECKING:
    from incman.integrations.base import Integration

BUILTIN: dict[str, str] = {
    "debug": "incman.integrations.debug:DebugIntegration",
    "servicenow": "incman.integrations.servicenow:ServiceNowIntegration",
    "jira": "incman.integrations.jira:JiraIntegration",
    "slack": "incman.integrations.slack:SlackIntegration",
    "http": "incman.integrations.generic_http:HttpIntegration",
    "rt": "incman.integrations.rt:RTIntegration",
}
ENTRY_POINT_GROUP = "incman.integrations"


@lru_cache(maxsize=1)
def _plugins() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN}


def known_integrations() -> list[str]:
    return sorted(_plugins())


@cache
def integration_class(name: str) -> type[Integration]:
    """The plugin class for `name`; an unknown name is a configuration error."""
    path = _plugins().get(name)
    if path is None:
        raise ConfigurationError(
            f"unknown integration {name!r} (known: {', '.join(known_integrations())})"
        )
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
