"""Integrations by name: the built-ins and the plugins of other packages.

Built-ins are alias → dotted path, resolved lazily; plugins are registered by other packages
under the entry-point group `incman.integrations`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from incman.integrations.config import IntegrationConfig, Problem
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
    "casdm": "incman.integrations.casdm:CasdmIntegration",
    "casm": "incman.integrations.casm:CasmIntegration",
    "remedy": "incman.integrations.remedy:RemedyIntegration",
    "remedyforce": "incman.integrations.remedyforce:RemedyforceIntegration",
    "otrs": "incman.integrations.otrs:OTRSIntegration",
    "pagerduty": "incman.integrations.pagerduty:PagerDutyIntegration",
    "redmine": "incman.integrations.redmine:RedmineIntegration",
    "mastodon": "incman.integrations.mastodon:MastodonIntegration",
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


def validate_integration_config(name: str, raw: Any) -> list[Problem]:
    """Everything wrong with `raw` as the config of integration `name`, as (path, message)
    items (paths relative to the config: `url`, `body.create`); [] when it is usable.
    `${env:NAME}` values are taken as given. An unknown integration is one problem."""
    try:
        cls = integration_class(name)
    except ConfigurationError as exc:
        return [Problem("", str(exc))]
    return cls.config_class.problems(raw)


def masked_keys(name: str, *configs: Mapping[str, Any]) -> frozenset[str]:
    """The keys of these configs that answers must not show: the plugin's declared secrets,
    and every key it does not declare (nothing says such a value is harmless). For an
    unknown integration, every key but the shared, non-secret ones."""
    try:
        config_class = integration_class(name).config_class
    except ConfigurationError:
        config_class = IntegrationConfig
    keys = {str(k) for config in configs for k in config}
    shown = set(config_class.fields) - config_class.secret_fields()
    return frozenset(keys - shown) | config_class.secret_fields()
