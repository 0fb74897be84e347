"""PagerDuty Events API v2 plugin against the PagerDuty simulator over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from incman.integrations.base import RemoteIncident
from incman.integrations.errors import (
    ConfigurationError,
    NotSupported,
    PermanentError,
    TransientError,
)
from incman.integrations.pagerduty import PagerDutyIntegration
from incman.testing.pagerduty_sim import DEFAULT_ROUTING_KEY, PagerDutySim
from incman.testing.simbase import SimControl, SimServer

URLS = {"eventUrl": "http://incman.example/api/v1/events/e1"}
EVENT = {
    "eventId": "e1",
    "device": "db01",
    "component": "disk",
    "eventClass": "/Perf/Disk",
    "severity": 5,
    "summary": "Disk full",
    "message": "95% used",
    "count": 2,
}


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(PagerDutySim()) as srv:
        yield srv


@pytest.fixture()
def control(server: SimServer) -> SimControl:
    control = SimControl(server.url)
    control.reset()
    return control


def plugin_for(url: str, **config: Any) -> PagerDutyIntegration:
    base = {"url": url, "routing_key": DEFAULT_ROUTING_KEY, "timeout": 5}
    plugin = PagerDutyIntegration({**base, **config}, "pd-test")
    plugin.http.guard = None  # flood control (Redis) is tested on its own
    return plugin


@pytest.fixture()
def pd(control: SimControl) -> PagerDutyIntegration:
    return plugin_for(control.url)


def trigger(plugin: PagerDutyIntegration, key: str = "k1", **extra: Any) -> RemoteIncident:
    return plugin.create({**plugin.default_fields(EVENT, None, URLS), **extra}, key)


def alerts(control: SimControl) -> list[dict[str, Any]]:
    return list(control.state()["alerts"])


def test_a_trigger_carries_the_event_and_the_key(
    control: SimControl, pd: PagerDutyIntegration
) -> None:
    ref = trigger(pd, "3f2a")
    assert (ref.remote_id, ref.number, ref.state, ref.remote_state) == (
        "3f2a",
        "3f2a",
        "OPEN",
        "triggered",
    )
    [alert] = alerts(control)
    assert (alert["dedup_key"], alert["status"], alert["summary"]) == (
        "3f2a",
        "triggered",
        "Disk full",
    )
    assert (alert["source"], alert["severity"], alert["component"]) == ("db01", "critical", "disk")
    assert alert["class"] == "/Perf/Disk" and alert["client"] == "incman"
    assert alert["links"] == [{"href": URLS["eventUrl"], "text": "The event in incman"}]
    details = alert["custom_details"]
    assert (details["eventId"], details["count"]) == ("e1", 2)
    assert URLS["eventUrl"] in details["description"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(5, "critical"), (4, "error"), (3, "warning"), (2, "info"), (1, "info"), (0, "info")],
)
def test_the_severity_follows_the_event(
    pd: PagerDutyIntegration, severity: int, expected: str
) -> None:
    assert pd.default_fields({**EVENT, "severity": severity}, None, URLS)["severity"] == expected


def test_mapped_fields_outside_the_payload_go_into_custom_details(
    control: SimControl, pd: PagerDutyIntegration
) -> None:
    trigger(pd, "k-map", rack="R12", custom_details="see the runbook", group="databases")
    [alert] = alerts(control)
    assert alert["custom_details"] == {"details": "see the runbook", "rack": "R12"}
    body = next(e for e in control.state()["events"] if e["dedup_key"] == "k-map")
    assert body["action"] == "trigger"


def test_a_retried_trigger_attaches_to_the_open_alert(
    control: SimControl, pd: PagerDutyIntegration
) -> None:
    first = trigger(pd, "k-retry")
    again = trigger(pd, "k-retry")
    assert first == again
    [alert] = alerts(control)
    assert [entry["type"] for entry in alert["log"]] == ["trigger", "trigger"]


def test_acknowledge_and_resolve(control: SimControl, pd: PagerDutyIntegration) -> None:
    ref = trigger(pd)
    pd.assign(ref, "oncall1")
    assert alerts(control)[0]["status"] == "acknowledged"
    pd.close(ref, "fixed")
    assert alerts(control)[0]["status"] == "resolved"
    pd.close(ref, "fixed again")  # PagerDuty drops it: no open alert for the key
    pd.assign(RemoteIncident("never-triggered", "x"), "oncall1")
    assert [a["status"] for a in alerts(control)] == ["resolved"]


def test_a_trigger_after_resolve_opens_a_new_alert_so_reopen_is_not_declared(
    control: SimControl, pd: PagerDutyIntegration
) -> None:
    ref = trigger(pd, "k-again")
    pd.close(ref, "fixed")
    trigger(pd, "k-again")
    found = alerts(control)
    assert [a["status"] for a in found] == ["resolved", "triggered"]
    assert found[0]["incident_number"] != found[1]["incident_number"]
    for call in (
        lambda: pd.reopen(ref, "x"),
        lambda: pd.add_note(ref, "x"),
        lambda: pd.get_status([ref]),
        lambda: pd.find("k-again"),
        lambda: pd.find_by_number("k-again"),
        lambda: pd.update(ref, {}),
    ):
        with pytest.raises(NotSupported):
            call()


def test_invalid_events_are_permanent_with_pagerdutys_reasons(control: SimControl) -> None:
    short = plugin_for(control.url, routing_key="not-a-key")
    with pytest.raises(PermanentError, match="HTTP 400") as caught:
        trigger(short)
    assert "Length of 'routing_key' is incorrect" in str(caught.value)
    assert "cannot contain non-alphanumeric characters" in str(caught.value)
    unknown = plugin_for(control.url, routing_key="0" * 32)
    with pytest.raises(PermanentError, match="Invalid routing key"):
        trigger(unknown)
    pd = plugin_for(control.url)
    with pytest.raises(PermanentError, match=r"payload\.severity"):
        trigger(pd, severity="fatal")
    assert alerts(control) == []
    resp = requests.post(f"{control.url}/v2/enqueue", data=b"{", timeout=5)
    assert resp.status_code == 400 and resp.json()["errors"] == ["JSON parse error"]


def test_429_and_500_are_transient(control: SimControl, pd: PagerDutyIntegration) -> None:
    control.fault("429", 1, retry_after=7)
    with pytest.raises(TransientError) as caught:
        trigger(pd)
    assert (caught.value.status, caught.value.retry_after) == (429, 7)
    control.fault("500", 1)
    with pytest.raises(TransientError) as failed:
        trigger(pd)
    assert failed.value.status == 500
    assert alerts(control) == []


def test_the_rate_limit_per_routing_key_and_a_429_without_retry_after() -> None:
    with SimServer(PagerDutySim(rate_per_minute=3, retry_after_header=False)) as srv:
        pd = plugin_for(srv.url)
        for n in range(3):
            trigger(pd, f"k{n}")
        with pytest.raises(TransientError) as caught:
            trigger(pd, "k3")
        assert (caught.value.status, caught.value.retry_after) == (429, None)
        assert "arriving too quickly" in str(caught.value)


def test_an_answer_lost_after_pagerduty_took_the_trigger_pages_once(
    control: SimControl, pd: PagerDutyIntegration
) -> None:
    control.fault("commit_then_drop", 1)
    with pytest.raises(TransientError):
        trigger(pd, "k-lost")
    trigger(pd, "k-lost")  # the worker's retry
    [alert] = alerts(control)
    assert alert["status"] == "triggered" and len(alert["log"]) == 2


def test_config() -> None:
    with pytest.raises(ConfigurationError, match="routing_key: is required"):
        PagerDutyIntegration({})
    plugin = PagerDutyIntegration({"routing_key": DEFAULT_ROUTING_KEY})
    assert plugin.cfg.url == "https://events.pagerduty.com"
    pasted = {"routing_key": "k", "url": "https://events.eu.pagerduty.com/v2/enqueue/"}
    assert PagerDutyIntegration(pasted).cfg.url == "https://events.eu.pagerduty.com"
    with pytest.raises(ConfigurationError, match="url: must be an http"):
        PagerDutyIntegration({"routing_key": "k", "url": "events.pagerduty.com"})
    assert "routing_key" in PagerDutyIntegration.config_class.secret_fields()
