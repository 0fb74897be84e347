"""Typed plugin config: declared once, checked generically, every problem at once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from incman.integrations.config import IntegrationConfig, Problem, setting
from incman.integrations.errors import ConfigurationError
from incman.integrations.reference import REGENERATE, config_reference
from incman.integrations.registry import (
    BUILTIN,
    integration_class,
    masked_keys,
    validate_integration_config,
)
from incman.integrations.servicenow import ServiceNowIntegration

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
SHARED = set(IntegrationConfig.fields)


class SampleConfig(IntegrationConfig):
    url: str = setting(required=True, help="where")
    mode: str = setting("fast", choices=("fast", "slow"), help="how")
    states: tuple[str, ...] = setting(("7",), required=True, help="which")
    path: str | None = setting("id", help="a path; null: none")
    retries: int = setting(3, at_least=0, help="how many")
    secret: str = setting("", secret=True, help="a password")
    names: dict[str, str] = setting({}, help="a map")


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    problems = SampleConfig.problems(
        {
            "url": "",
            "mdoe": "fast",
            "mode": "medium",
            "states": [],
            "retries": "many",
            "timeout": -1,
            "names": {"a": ["b"]},
        }
    )
    assert problems == [
        Problem("mdoe", "unknown key (did you mean 'mode'?)"),
        Problem("timeout", "must be > 0"),
        Problem("url", "may not be empty"),
        Problem("mode", "must be one of fast, slow, not 'medium'"),
        Problem("states", "may not be empty"),
        Problem("retries", "must be an integer"),
        Problem("names", "a: must be text"),
    ]
    assert str(problems[0]) == "mdoe: unknown key (did you mean 'mode'?)"


def test_an_unknown_key_far_from_any_lists_the_known_ones() -> None:
    [problem] = SampleConfig.problems({"url": "x", "colour": "red"})
    assert problem.path == "colour"
    assert "known: " in problem.message and "retries" in problem.message


def test_parse_raises_one_error_naming_every_problem() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SampleConfig.parse({"mode": "x"}, "sample", "notif-1")
    text = str(caught.value)
    assert text.startswith("sample: config.url: is required; config.mode: must be one of")
    assert text.endswith("(notification notif-1)")


def test_values_are_typed_with_their_defaults() -> None:
    cfg = SampleConfig.parse(
        {"url": "u", "states": "6, 7", "retries": "2", "verify_tls": "false", "names": {"a": 1}}
    )
    assert (cfg.url, cfg.mode, cfg.states, cfg.retries) == ("u", "fast", ("6", "7"), 2)
    assert cfg.verify_tls is False and cfg.timeout == 30.0 and cfg.names == {"a": "1"}
    assert cfg.path == "id"
    assert SampleConfig.parse({"url": "u", "path": None}).path is None  # an explicit null
    assert SampleConfig.parse({"url": "u", "retries": None}).retries == 3  # null: the default
    with pytest.raises(AttributeError, match="read-only"):
        cfg.url = "other"


def test_defaults_are_not_shared_between_instances() -> None:
    one, two = SampleConfig.parse({"url": "u"}), SampleConfig.parse({"url": "u"})
    one.names["x"] = "y"
    assert two.names == {}


def test_env_references_are_taken_as_given_until_resolved() -> None:
    raw = {"url": "${env:URL}", "retries": "${env:RETRIES}", "secret": "${env:PW}"}
    assert SampleConfig.problems(raw) == []
    assert SampleConfig.problems({**raw, "retries": "${env:RETRIES}x"}) == []
    with pytest.raises(ConfigurationError, match="retries: must be an integer"):
        SampleConfig.parse(raw)  # unresolved where the plugin runs: a type error


def test_secrets_never_show_in_the_repr_and_drive_masking() -> None:
    cfg = SampleConfig.parse({"url": "u", "secret": "hunter2"})
    assert "hunter2" not in repr(cfg) and "secret=***" in repr(cfg)
    assert SampleConfig.secret_fields() == {"secret", "proxy"}
    shown = {"url": "https://x", "username": "u", "password": "p", "typo_pasword": "p"}
    secrets = {"password", "token", "client_secret", "proxy", "typo_pasword"}
    assert masked_keys("servicenow", shown) == secrets
    assert masked_keys("http", {"headers": {}}) >= {"headers"}
    assert masked_keys("no-such-plugin", {"url": "x", "timeout": 3}) == {"url", "proxy"}


def test_validate_integration_config_by_name() -> None:
    assert validate_integration_config("debug", {"fail": "transient"}) == []
    assert validate_integration_config("debug", {"fial": "transient"}) == [
        Problem("fial", "unknown key (did you mean 'fail'?)")
    ]
    [unknown] = validate_integration_config("nope", {})
    assert unknown.path == "" and "unknown integration 'nope'" in unknown.message
    assert validate_integration_config("servicenow", {"url": "https://x"}) == [
        Problem("password", "set username and password, or token")
    ]
    assert validate_integration_config("servicenow", []) == [
        Problem("", "the config must be a mapping")
    ]


def test_the_plugin_constructor_takes_raw_or_parsed_config() -> None:
    raw = {"url": "https://x.example/", "token": "t"}
    plugin = ServiceNowIntegration(raw)
    assert plugin.cfg.url == "https://x.example"  # a URL is kept without its trailing slash
    parsed = ServiceNowIntegration.config_class.parse(raw)
    assert ServiceNowIntegration(parsed).cfg is parsed


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_field_of_every_plugin_is_described(name: str) -> None:
    config_class = integration_class(name).config_class
    assert config_class is not IntegrationConfig
    undescribed = [n for n, s in config_class.fields.items() if not s.help]
    assert not undescribed


def _readme_keys() -> dict[str, set[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Integrations and their `config`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.MULTILINE)
    return {name: set(re.findall(r"`(\w+)`", keys)) for name, keys in rows}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_readme_lists_exactly_the_declared_keys(name: str) -> None:
    declared = set(integration_class(name).config_class.fields) - SHARED
    listed = _readme_keys()[name]
    assert declared <= listed, f"undocumented: {declared - listed}"
    values = {"transient", "unreachable", "permanent", "rate_limited", "lost_answer"}
    values |= {"table", "importset"}
    values |= {"cloud", "server", "work_notes", "comments", "create", "update", "note"}
    values |= {"assign", "close", "reopen", "incident", "General", "IncidentID", "null"}
    assert listed - declared <= values, f"not accepted: {listed - declared - values}"


def test_the_readme_lists_the_shared_keys() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Integrations and their `config`", 1)[1].split("| integration", 1)[0]
    listed = set(re.findall(r"`(\w+)`", section))
    assert not SHARED - listed


def _defaults(name: str) -> dict[str, Any]:
    return {n: s.default for n, s in integration_class(name).config_class.fields.items()}


def test_declared_defaults_are_the_ones_the_readme_gives() -> None:
    assert _defaults("servicenow")["final_states"] == ("7",)
    assert (_defaults("servicenow")["resolve_state"], _defaults("servicenow")["reopen_state"]) == (
        "6",
        "2",
    )
    assert _defaults("rt")["queue"] == "General" and _defaults("rt")["correlation_field"] == (
        "IncidentID"
    )
    assert _defaults("slack")["api_url"] == "https://slack.com/api"
    assert _defaults("slack")["find_depth"] == 200
    shared = {n: s.default for n, s in IntegrationConfig.fields.items()}
    assert (shared["timeout"], shared["verify_tls"], shared["breaker_failures"]) == (30.0, True, 5)
    assert shared["breaker_cooldown"] == 30.0


def test_the_config_reference_in_docs_is_current() -> None:
    written = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    assert written == config_reference(), f"regenerate it: {REGENERATE}"
    assert '| `final_states` | list of text | `["7"]` |' in written


def _example_notifications() -> list[dict[str, Any]]:
    import yaml

    text = README.read_text(encoding="utf-8")
    block = text.split("## Configuration file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    deploy = (ROOT / "deploy" / "incman.example.yaml").read_text(encoding="utf-8")
    return [n for doc in (block, deploy) for n in (yaml.safe_load(doc).get("notifications") or [])]


def test_the_example_configurations_are_valid() -> None:
    examples = _example_notifications()
    assert {n["integration"] for n in examples} >= {"servicenow", "debug"}
    for notif in examples:
        assert validate_integration_config(notif["integration"], notif.get("config") or {}) == []
