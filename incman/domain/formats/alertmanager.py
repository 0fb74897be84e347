"""Prometheus Alertmanager webhook (version 4): each alert becomes an incman event.

A webhook message looks like
`{"version": "4", "status": "firing", "receiver": "...", "alerts": [{"status": "firing",
"labels": {"alertname": "DiskFull", "instance": "db01:9100", "severity": "critical"},
"annotations": {"summary": "..."}, "startsAt": "...", "fingerprint": "be76..."}], ...}`.
Each alert's own `status` counts: a resolved alert is a clear of that alert."""

from __future__ import annotations

import hashlib
from typing import Any

MAX_ALERTS = 1000
SEVERITIES = {"critical": 5, "error": 4, "high": 4, "warning": 3, "info": 2}
DEFAULT_SEVERITY = 3
_MESSAGE_KEYS = ("receiver", "externalURL", "groupKey")


class AlertError(ValueError):
    """An alert (or message) that cannot become an event: field and reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def webhook_alerts(doc: Any) -> list[Any]:
    """The alerts of a webhook message; AlertError when the message itself is malformed."""
    if not isinstance(doc, dict):
        raise AlertError("body", "must be a JSON object (an Alertmanager webhook message)")
    version = doc.get("version")
    if version is not None and str(version) != "4":
        raise AlertError("version", f"webhook version {version!r} is not supported (4 is)")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise AlertError("alerts", "is required: a list of alerts")
    if len(alerts) > MAX_ALERTS:
        raise AlertError("alerts", f"{len(alerts)} alerts; at most {MAX_ALERTS}")
    return alerts


def severity_of(labels: dict[str, Any]) -> int:
    return SEVERITIES.get(str(labels.get("severity", "")).strip().lower(), DEFAULT_SEVERITY)


def _strings(raw: Any, field: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise AlertError(field, "must be an object of strings")
    return {str(k): v for k, v in raw.items()}


def fingerprint_of(alert: dict[str, Any], labels: dict[str, str]) -> str:
    """The alert's fingerprint; when absent, a stable hash of its label set."""
    given = alert.get("fingerprint")
    if isinstance(given, str) and given:
        return given
    canonical = "\x00".join(f"{k}\x01{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def alert_event(alert: Any, message: dict[str, Any]) -> dict[str, Any]:
    """One alert as an incman event (the native API's camelCase fields)."""
    if not isinstance(alert, dict):
        raise AlertError("alert", "must be a JSON object")
    labels = _strings(alert.get("labels"), "labels")
    annotations = _strings(alert.get("annotations"), "annotations")
    alertname = labels.get("alertname", "").strip()
    if not alertname:
        raise AlertError("labels.alertname", "is required")
    status = alert.get("status", message.get("status"))
    if status not in ("firing", "resolved"):
        raise AlertError("status", f"must be firing or resolved, got {status!r}")
    fingerprint = fingerprint_of(alert, labels)
    details: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "fingerprint": fingerprint,
    }
    for key in ("startsAt", "endsAt", "generatorURL"):
        if isinstance(alert.get(key), str):
            details[key] = alert[key]
    for key in _MESSAGE_KEYS:
        if isinstance(message.get(key), str):
            details[key] = message[key]
    return {
        "device": labels.get("instance") or labels.get("job") or "alertmanager",
        "component": labels.get("service") or labels.get("job") or "",
        "eventClass": f"/Alertmanager/{alertname}",
        "eventKey": fingerprint,
        "severity": 0 if status == "resolved" else severity_of(labels),
        "summary": annotations.get("summary") or alertname,
        "message": annotations.get("description", ""),
        "agent": "alertmanager",
        "source": str(message.get("externalURL") or "alertmanager"),
        "details": details,
    }
