"""Flood control settings read from a notification's integration config, and guard keys."""

from __future__ import annotations

from typing import Any

import pytest

from incman.integrations.config import IntegrationConfig
from incman.integrations.errors import ConfigurationError
from incman.store.flood import FloodSettings, flood_settings, guard_key


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, FloodSettings(0.0, 1, 5, 30.0, 35.0)),
        ({"rate_limit": 10}, FloodSettings(10.0, 10, 5, 30.0, 35.0)),
        ({"rate_limit": 0.5}, FloodSettings(0.5, 1, 5, 30.0, 35.0)),
        ({"rate_limit": "2.5", "rate_burst": 4}, FloodSettings(2.5, 4, 5, 30.0, 35.0)),
        (
            {"breaker_failures": 0, "breaker_cooldown": 2, "timeout": 10},
            FloodSettings(0.0, 1, 0, 2.0, 15.0),
        ),
    ],
)
def test_settings_with_their_defaults(config: dict[str, Any], expected: FloodSettings) -> None:
    assert flood_settings(IntegrationConfig.parse(config)) == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rate_limit": -1}, "config.rate_limit: must be >= 0"),
        ({"rate_limit": "fast"}, "config.rate_limit: must be a number"),
        ({"rate_limit": True}, "config.rate_limit: must be a number"),
        ({"rate_burst": 0}, "config.rate_burst: must be >= 1"),
        ({"rate_burst": 2.5}, "config.rate_burst: must be an integer"),
        ({"breaker_failures": -1}, "config.breaker_failures: must be >= 0"),
        ({"breaker_cooldown": 0}, "config.breaker_cooldown: must be > 0"),
    ],
)
def test_bad_settings_are_configuration_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        IntegrationConfig.parse(config)


@pytest.mark.parametrize(
    ("integration", "config", "key"),
    [
        ("debug", {}, "debug"),
        ("servicenow", {"url": "https://dev1.service-now.com/"}, "servicenow@dev1.service-now.com"),
        ("slack", {"api_url": "http://127.0.0.1:8123/api"}, "slack@127.0.0.1:8123"),
        ("rt", {"url": "not a url"}, "rt"),
    ],
)
def test_one_guard_per_integration_and_remote_host(
    integration: str, config: dict[str, Any], key: str
) -> None:
    assert guard_key(integration, config) == key
