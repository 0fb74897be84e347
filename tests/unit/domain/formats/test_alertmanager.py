"""Alertmanager webhook v4: the captured payloads and each mapping rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from incman.domain.event import normalise_event
from incman.domain.formats.alertmanager import (
    AlertError,
    alert_event,
    fingerprint_of,
    webhook_alerts,
)

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "alertmanager"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def events_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [alert_event(a, doc) for a in webhook_alerts(doc)]


def test_firing_sample() -> None:
    first, second = events_of(sample("firing"))
    assert first["device"] == "db01:9100"
    assert first["component"] == "postgres"
    assert first["eventClass"] == "/Alertmanager/DiskFull"
    assert first["eventKey"] == "be769692bbeaf3e2"
    assert first["severity"] == 5
    assert first["summary"] == "Disk usage above 95% on db01"
    assert first["details"]["labels"]["alertname"] == "DiskFull"
    assert first["details"]["annotations"]["runbook_url"] == "http://127.0.0.1/runbooks/disk"
    assert first["details"]["receiver"] == "incman-webhook"
    assert second["device"] == "db02:9100" and second["eventKey"] == "f9c24dd8269b6459"


def test_partial_resolve_sample_clears_only_the_resolved_alert() -> None:
    resolved, firing = events_of(sample("partial-resolve"))
    assert resolved["severity"] == 0
    assert resolved["summary"] == "DiskFull"  # no annotations on the resolved alert
    assert (
        resolved["device"],
        resolved["component"],
        resolved["eventClass"],
        resolved["eventKey"],
    ) == ("db01:9100", "postgres", "/Alertmanager/DiskFull", "be769692bbeaf3e2")
    assert firing["severity"] == 5
    ev = normalise_event(resolved)
    assert ev.is_clear


def test_resolved_sample() -> None:
    (only,) = events_of(sample("resolved"))
    assert (only["device"], only["component"], only["severity"]) == ("api-gw:8080", "api-gw", 0)
    assert only["eventClass"] == "/Alertmanager/HighLatency"


@pytest.mark.parametrize(
    "severity, expected",
    [
        ("critical", 5),
        ("CRITICAL", 5),
        ("error", 4),
        ("high", 4),
        ("warning", 3),
        ("info", 2),
        ("page", 3),
        (None, 3),
    ],
)
def test_severity_label(severity: str | None, expected: int) -> None:
    labels = {"alertname": "A", "instance": "h"}
    if severity is not None:
        labels["severity"] = severity
    assert alert_event({"status": "firing", "labels": labels}, {})["severity"] == expected


@pytest.mark.parametrize(
    "labels, device, component",
    [
        ({"instance": "h:1", "job": "node", "service": "svc"}, "h:1", "svc"),
        ({"job": "node"}, "node", "node"),
        ({}, "alertmanager", ""),
    ],
)
def test_device_and_component(labels: dict[str, str], device: str, component: str) -> None:
    ev = alert_event({"status": "firing", "labels": {"alertname": "A", **labels}}, {})
    assert (ev["device"], ev["component"]) == (device, component)


def test_the_message_status_is_used_when_an_alert_has_none() -> None:
    ev = alert_event({"labels": {"alertname": "A"}}, {"status": "resolved"})
    assert ev["severity"] == 0


def test_a_missing_fingerprint_is_a_stable_hash_of_the_labels() -> None:
    a = fingerprint_of({}, {"alertname": "A", "instance": "h"})
    assert a == fingerprint_of({}, {"instance": "h", "alertname": "A"})
    assert a != fingerprint_of({}, {"alertname": "A", "instance": "g"})


@pytest.mark.parametrize(
    "alert, field",
    [
        ("x", "alert"),
        ({"status": "firing", "labels": {}}, "labels.alertname"),
        ({"status": "firing", "labels": {"alertname": 5}}, "labels"),
        ({"status": "firing", "labels": {"alertname": "A"}, "annotations": []}, "annotations"),
        ({"status": "pending", "labels": {"alertname": "A"}}, "status"),
    ],
)
def test_bad_alerts_name_the_field(alert: Any, field: str) -> None:
    with pytest.raises(AlertError) as err:
        alert_event(alert, {})
    assert err.value.field == field


@pytest.mark.parametrize(
    "doc, field",
    [
        ([], "body"),
        ({}, "alerts"),
        ({"alerts": {}}, "alerts"),
        ({"version": "3", "alerts": []}, "version"),
    ],
)
def test_bad_messages_name_the_field(doc: Any, field: str) -> None:
    with pytest.raises(AlertError) as err:
        webhook_alerts(doc)
    assert err.value.field == field
