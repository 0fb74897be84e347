"""The integration contract: what a plugin declares and the few methods that do its I/O.

Plugins never touch incman's database, Celery, sleep or retry: they raise TransientError or
PermanentError and the worker decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from incman.integrations.errors import ConfigurationError, NotSupported
from incman.integrations.http import CallGuard, HttpClient

CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN, STATUS = (
    "create",
    "update",
    "note",
    "assign",
    "close",
    "reopen",
    "status",
)
ALL_CAPABILITIES = frozenset({CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN, STATUS})
INCIDENT_STATES = ("OPEN", "ASSIGNED", "RESOLVED", "CLOSED")


@dataclass
class RemoteIncident:
    """What incman knows of a remote incident."""

    remote_id: str
    number: str
    url: str = ""
    state: str = "OPEN"  # one of INCIDENT_STATES
    remote_state: str = ""
    assignee: str = ""


class Integration:
    """Base of every plugin. Subclasses set the class attributes and implement methods for
    the capabilities they declare."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    required_config: ClassVar[tuple[str, ...]] = ()
    secret_config: ClassVar[frozenset[str]] = frozenset({"password", "token", "api_token"})
    # remote state → OPEN / ASSIGNED / RESOLVED / CLOSED
    status_map: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        config: dict[str, Any],
        notification_id: str = "",
        *,
        guard: CallGuard | None = None,
        records: Any = None,
    ) -> None:
        """`guard`: flood control around every remote call; `records`: the store a plugin
        that keeps local records is given (incman.store.plugins builds both)."""
        missing = [k for k in self.required_config if not config.get(k)]
        if missing:
            raise ConfigurationError(
                f"{self.name}: missing config {', '.join(missing)} (notification {notification_id})"
            )
        self.config = config
        self.notification_id = notification_id
        self.guard = guard
        self.records = records
        self._http: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            cfg = self.config
            self._http = HttpClient(
                timeout=float(cfg.get("timeout", 30)),
                verify_tls=bool(cfg.get("verify_tls", True)),
                ca_bundle=cfg.get("ca_bundle"),
                proxy=cfg.get("proxy"),
                guard=self.guard,
            )
        return self._http

    def call_budget(self) -> float:
        """Seconds one remote call may take (locks around a create outlive it)."""
        return float(self.config.get("timeout", 30))

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def map_state(self, remote_state: str) -> str:
        return self.status_map.get(str(remote_state), "OPEN")

    # -- fields --------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        """The fields sent on create before the notification's field mapping applies: from
        the event document, its device record (None when unknown) and the event's urls."""
        from incman.domain.event import SEVERITY_NAMES

        sev = int(event.get("severity", 3))
        return {
            "summary": event.get("summary", ""),
            "description": event.get("message") or event.get("summary", ""),
            "device": event.get("device", ""),
            "component": event.get("component", ""),
            "severity": str(sev),
            "severityName": SEVERITY_NAMES[sev] if 0 <= sev <= 5 else str(sev),
            "eventUrl": urls.get("eventUrl", ""),
        }

    # -- I/O: override what the plugin supports -------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        raise NotSupported(f"{self.name} cannot create incidents")

    def find(self, correlation_key: str) -> RemoteIncident | None:
        """The incident created with this correlation key, or None."""
        raise NotSupported(f"{self.name} cannot look up incidents")

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        raise NotSupported(f"{self.name} cannot update incidents")

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        raise NotSupported(f"{self.name} cannot add notes")

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        raise NotSupported(f"{self.name} cannot assign incidents")

    def close(self, ref: RemoteIncident, note: str) -> None:
        raise NotSupported(f"{self.name} cannot close incidents")

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        raise NotSupported(f"{self.name} cannot re-open incidents")

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """Fresh state of many incidents at once, keyed by remote_id (missing = unknown)."""
        raise NotSupported(f"{self.name} cannot read incident status")

    def shutdown(self) -> None:
        if self._http is not None:
            self._http.close()
