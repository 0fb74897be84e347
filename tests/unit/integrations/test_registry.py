"""Integrations by name: built-ins, plugins of other packages (entry points), bad names."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest

from incman.integrations import registry
from incman.integrations.base import Integration
from incman.integrations.errors import ConfigurationError
from incman.outbox import queues


class AcmeIntegration(Integration):
    """A plugin as another package would ship it."""

    name = "acme"
    capabilities = frozenset({"create"})


@pytest.fixture
def acme_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    point = EntryPoint(
        name="acme", value=f"{__name__}:AcmeIntegration", group=registry.ENTRY_POINT_GROUP
    )

    def fake_entry_points(group: str) -> list[EntryPoint]:
        return [point] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    registry._plugins.cache_clear()
    registry.integration_class.cache_clear()
    yield
    registry._plugins.cache_clear()
    registry.integration_class.cache_clear()


def test_builtins_are_known() -> None:
    assert {"debug", "servicenow", "jira", "slack", "http", "rt"} <= set(
        registry.known_integrations()
    )
    assert registry.integration_class("debug").name == "debug"
    assert queues.queue_for("servicenow") == "itsm.servicenow"


def test_a_plugin_registers_through_the_entry_point_group(acme_installed: None) -> None:
    assert "acme" in registry.known_integrations()
    assert registry.integration_class("acme") is AcmeIntegration


def test_an_unknown_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown integration 'nope'"):
        registry.integration_class("nope")
