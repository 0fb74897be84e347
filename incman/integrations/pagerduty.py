"""PagerDuty Events API v2 as a target: an alert per incident, keyed by its correlation key.

The alert's `dedup_key` is the incident's correlation key: acknowledging the incident
acknowledges the alert, closing it resolves it. PagerDuty deduplicates a trigger by its key
while the alert is open, so a create retried after a lost answer attaches to the alert it made
instead of paging twice: the Events API cannot be searched, and need not be. What it cannot do
is declared: no notes, no status read, no look-up, and no re-open — a trigger with the key of
a resolved alert opens a new alert (and incident) in PagerDuty, which is what incman does for
an integration that cannot re-open: a new incident, with a key of its own.
(fields: docs/remote-systems.md)"""

from __future__ import annotations

from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ASSIGN, CLOSE, CREATE, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, http_url, setting
from incman.integrations.errors import PermanentError

PAYLOAD_FIELDS = ("summary", "source", "severity", "component", "group", "class", "timestamp")
EVENT_FIELDS = ("links", "images", "client", "client_url")
SEVERITIES = {5: "critical", 4: "error", 3: "warning"}  # lower: info
MAX_SUMMARY = 1024


class PagerDutyConfig(IntegrationConfig):
    """Alerts on a PagerDuty service through its Events API v2 integration."""

    url: str = setting(
        "https://events.pagerduty.com",
        check=http_url,
        clean=lambda v: v.rstrip("/").removesuffix("/v2/enqueue"),
        help="the Events API (events.eu.pagerduty.com in the EU); /v2/enqueue is added",
    )
    routing_key: str = setting(
        required=True,
        secret=True,
        help="the Integration Key of the service's Events API v2 integration",
    )
    client: str = setting("incman", help="the client name PagerDuty shows with the alert")
    client_url: str = setting("", help="a link PagerDuty shows with the alert")


class PagerDutyIntegration(Integration[PagerDutyConfig]):
    name = "pagerduty"
    capabilities = frozenset({CREATE, ASSIGN, CLOSE})
    status_map: ClassVar[dict[str, str]] = {
        "triggered": "OPEN",
        "acknowledged": "ASSIGNED",
        "resolved": "RESOLVED",
    }

    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "summary": str(event.get("summary") or "")[:MAX_SUMMARY] or "(no summary)",
            "source": str(event.get("device") or "incman"),
            "severity": SEVERITIES.get(int(event.get("severity", 3)), "info"),
            "custom_details": {
                "description": MappingUtils(urls).getDescription(event),
                "eventId": event.get("eventId", ""),
                "count": event.get("count", 1),
            },
        }
        for name, key in (("component", "component"), ("class", "eventClass")):
            if event.get(key):
                fields[name] = str(event[key])
        if urls.get("eventUrl"):
            fields["links"] = [{"href": urls["eventUrl"], "text": "The event in incman"}]
        return fields

    def _send(self, action: str, key: str, fields: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {
            "routing_key": self.cfg.routing_key,
            "event_action": action,
            "dedup_key": key,
        }
        if fields is not None:
            body |= self._event(fields)
        answer = self.http.json("POST", f"{self.cfg.url}/v2/enqueue", json=body)
        if (
            not isinstance(answer, dict)
            or answer.get("status") != "success"
            or answer.get("dedup_key", key) != key
        ):
            raise PermanentError(f"pagerduty: {action} of {key}: unexpected answer {answer!r:.200}")

    def _event(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The trigger's own fields and its payload; other fields go into custom_details."""
        payload = {k: fields[k] for k in PAYLOAD_FIELDS if fields.get(k) not in (None, "")}
        details = fields.get("custom_details")
        details = dict(details) if isinstance(details, dict) else {"details": details}
        if details == {"details": None}:
            details = {}
        known = {*PAYLOAD_FIELDS, *EVENT_FIELDS, "custom_details"}
        details |= {k: v for k, v in fields.items() if k not in known}
        if details:
            payload["custom_details"] = details
        event = {k: fields[k] for k in EVENT_FIELDS if fields.get(k) not in (None, "")}
        event.setdefault("client", self.cfg.client)
        if self.cfg.client_url:
            event.setdefault("client_url", self.cfg.client_url)
        return {**event, "payload": payload}

    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        """A trigger deduplicated by the key: a retry attaches to the alert already open."""
        self._send("trigger", correlation_key, fields)
        return RemoteIncident(correlation_key, correlation_key, remote_state="triggered")

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """Acknowledge: the Events API names no person, so PagerDuty shows the integration."""
        self._send("acknowledge", ref.remote_id)

    def close(self, ref: RemoteIncident, note: str) -> None:
        """Resolve (PagerDuty drops a resolve of a key it has no open alert for)."""
        self._send("resolve", ref.remote_id)
