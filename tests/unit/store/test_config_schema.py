"""The one schema of the configuration: typos are refused with their path and a suggestion,
every problem at once; what is valid still loads."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from incman.store.catalog import DEMO_CONFIG, CatalogError, parse_catalog, parse_notification
from incman.store.config_schema import file_problems, notification_problems, trigger_problems

VALID = """
triggers:
  - id: prod-critical
    when:
      _and:
        - severity: {_gte: Error}
        - device: {_m: "^prod-"}
        - details.rack: {_eq: R12}
        - dev.priority: {_gt: 500}
        - _not: {eventClass: {_ct: /Heartbeat}}
notifications:
  - id: snow-prod
    integration: servicenow
    triggers: [prod-critical]
    subscribers: [ops-team]
    cycletime: 60
    options: {send_clear: true}
    config:
      url: https://example.service-now.com
      username: incman
      password: "${env:SNOW_PASSWORD}"
      timeout: "${env:SNOW_TIMEOUT}"
    field_mapping: |
      comments, Created by incman
    suppression: {threshold_num: 5}
devices:
  - {id: db01, title: Primary database, priority: 800}
suppression: {threshold_num: 10, threshold_secs: 60}
users:
  - {name: oncall1, role: operator, groups: [ops-team], api_key_sha256: abc}
entity_incidents:
  severity_map: {1: critical}
  default_severity: warning
"""


def problems(text: str) -> list[str]:
    return [str(p) for p in file_problems(yaml.safe_load(text))]


def test_the_documented_example_and_the_demo_are_valid() -> None:
    assert problems(VALID) == []
    assert problems(DEMO_CONFIG) == []
    catalog = parse_catalog(yaml.safe_load(VALID))
    assert catalog.notifications["snow-prod"].config["password"] == "${env:SNOW_PASSWORD}"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("trigers: []\n", "trigers: unknown key (did you mean 'triggers'?)"),
        (
            "triggers: [{id: t, when: {sevrity: {_gte: 4}}}]\n",
            "triggers[0].when.sevrity: unknown field (did you mean 'severity'?)",
        ),
        (
            "triggers: [{id: t, when: {_or: [{Device: {_eq: a}}]}}]\n",
            "triggers[0].when._or[0].Device: unknown field (did you mean 'device'?)",
        ),
        (
            "triggers: [{id: t, when: {detail.rack: {_eq: R1}}}]\n",
            "triggers[0].when.detail.rack: unknown field (did you mean 'details.rack'?)",
        ),
        (
            "triggers: [{id: t, when: {details: {_eq: x}}}]\n",
            "triggers[0].when.details: name a key: details.<key>",
        ),
        (
            "notifications: [{id: n, integration: debug, trigger: []}]\n",
            "notifications[0].trigger: unknown key (did you mean 'triggers'?)",
        ),
        (
            "notifications: [{id: n, integration: debug, config: {answer_dealy: 2}}]\n",
            "notifications[0].config.answer_dealy: unknown key (did you mean 'answer_delay'?)",
        ),
        (
            "notifications: [{id: n, integration: servicenow, config: {username: u}}]\n",
            "notifications[0].config.url: is required",
        ),
        (
            "notifications: [{id: n, integration: debug, options: {send_cleer: true}}]\n",
            "notifications[0].options.send_cleer: unknown key (did you mean 'send_clear'?)",
        ),
        (
            "notifications: [{id: n, integration: servicenw}]\n",
            "notifications[0].integration: unknown integration 'servicenw' "
            "(did you mean 'servicenow'?)",
        ),
        (
            "triggers: [{id: crit}]\nnotifications: [{id: n, integration: debug, "
            "triggers: [crti]}]\n",
            "notifications[0].triggers: unknown trigger 'crti' (did you mean 'crit'?)",
        ),
        ("users: [{name: u, role: admn}]\n", "users[0].role: unknown role 'admn' (did you mean"),
        ("suppression: {treshold_num: 3}\n", "suppression.treshold_num: unknown setting"),
        ("entity_incidents: {severity_mapp: {}}\n", "entity_incidents.severity_mapp: unknown key"),
        ("triggers: [{id: t, enabled: 'no'}]\n", "triggers[0].enabled: must be true or false"),
        ("", "the file declares nothing"),
        ("{}\n", "the file declares nothing"),
        ("- a\n", "the top level must be a mapping"),
    ],
)
def test_a_typo_is_refused_with_its_path_and_a_suggestion(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_named_at_once() -> None:
    text = """
trigers: []
triggers:
  - {id: t, when: {sevrity: {_gte: 4}, device: {_like: x}}}
  - {id: t}
notifications:
  - {id: n, integration: debug, config: {answer_dealy: 3, fail: sometimes}}
  - {id: s, integration: servicenow}
"""
    found = problems(text)
    assert [p.split(":")[0] for p in found] == [
        "trigers",
        "triggers[0].when.sevrity",
        "triggers[0].when.device",
        "triggers[1].id",
        "notifications[0].config.answer_dealy",
        "notifications[0].config.fail",
        "notifications[1].config.url",
    ]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(yaml.safe_load(text))
    assert len(caught.value.problems) == 7
    assert str(caught.value).startswith("7 problems:\n  trigers: unknown key")


def test_env_references_stand_for_values_of_any_type() -> None:
    raw = {
        "id": "n",
        "integration": "debug",
        "config": {"answer_delay": "${env:DELAY}", "url_base": "${env:BASE}/x"},
    }
    assert notification_problems(raw) == []
    # ... but a reference does not make an unknown key known.
    raw["config"]["answer_dealy"] = "${env:DELAY}"
    assert [str(p) for p in notification_problems(raw)] == [
        "notification.config.answer_dealy: unknown key (did you mean 'answer_delay'?)"
    ]


def test_a_notification_is_checked_against_its_plugin_when_parsed() -> None:
    """What the catalog builds from a stored or posted object: its plugin's declared config."""
    with pytest.raises(CatalogError, match=r"config\.fail: must be one of"):
        parse_notification({"id": "n", "integration": "debug", "config": {"fail": "often"}})
    with pytest.raises(CatalogError, match=r"config\.channel: is required"):
        parse_notification({"id": "n", "integration": "slack", "config": {"token": "x"}})


@pytest.mark.parametrize(
    "when",
    [
        {"severity": {"_gte": "Error"}},
        {"eventClassKey": {"_eq": "x"}, "count": {"_gt": 3}, "status": {"_eq": "New"}},
        {"_not": {"agent": {"_ct": "nagios"}}},
        {"dev.groups": {"_ct": "/Databases"}},
    ],
)
def test_the_event_fields_of_the_contract_are_known(when: dict[str, Any]) -> None:
    assert trigger_problems({"id": "t", "when": when}) == []
