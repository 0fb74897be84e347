"""Simulators by name, for `incman simulate` and the tests: name → "module:Class".

A simulator is imported only when used. A simulator class takes its options as keyword
arguments (text accepted)."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from incman.testing.simbase import SimApp

SIMULATORS: dict[str, str] = {
    "servicenow": "incman.testing.servicenow_sim:ServiceNowSim",
    "jira": "incman.testing.jira_sim:JiraSim",
    "slack": "incman.testing.slack_sim:SlackSim",
    "http": "incman.testing.http_sim:HttpSim",
    "casdm": "incman.testing.casdm_sim:CasdmSim",
    "casm": "incman.testing.casm_sim:CasmSim",
    "remedy": "incman.testing.remedy_sim:RemedySim",
    "remedyforce": "incman.testing.remedyforce_sim:RemedyforceSim",
    "otrs": "incman.testing.otrs_sim:OTRSSim",
    "pagerduty": "incman.testing.pagerduty_sim:PagerDutySim",
    "mastodon": "incman.testing.mastodon_sim:MastodonSim",
}


def simulator_names() -> list[str]:
    return sorted(SIMULATORS)


def simulator_class(name: str) -> type[SimApp]:
    path = SIMULATORS.get(name)
    if path is None:
        raise ValueError(f"unknown simulator {name!r} (known: {', '.join(simulator_names())})")
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def simulator_options(name: str) -> dict[str, object]:
    """The options a simulator takes, with their defaults."""
    params = inspect.signature(simulator_class(name).__init__).parameters
    return {p.name: p.default for p in params.values() if p.name != "self"}


def make_simulator(name: str, options: dict[str, str] | None = None) -> SimApp:
    """A simulator; an unknown option or a bad value is a ValueError saying which."""
    options = options or {}
    known = simulator_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"{name} simulator: unknown option {', '.join(unknown)} (known: {', '.join(known)})"
        )
    try:
        return simulator_class(name)(**options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} simulator: {exc}") from exc
