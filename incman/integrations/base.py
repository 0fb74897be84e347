"""The integration contract: what a plugin declares and the few methods that do its I/O.

A plugin is `class AcmeIntegration(Integration[AcmeConfig])`: its typed config (declared once,
checked by the base: incman.integrations.config), capabilities, status map and default
fields, an `auth` hook when it needs credentials, and the I/O methods of its capabilities.
Plugins never touch incman's database, Celery, sleep or retry: they raise TransientError or
PermanentError (carrying the HTTP status) and the worker decides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin

import requests

from incman.integrations.config import IntegrationConfig
from incman.integrations.errors import IntegrationError, NotSupported
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
FIND, FIND_NUMBER = "find", "find_by_number"  # by correlation key; by the number people see
ALL_CAPABILITIES = frozenset(
    {CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN, STATUS, FIND, FIND_NUMBER}
)
INCIDENT_STATES = ("OPEN", "ASSIGNED", "RESOLVED", "CLOSED")

C = TypeVar("C", bound=IntegrationConfig)


@dataclass
class RemoteIncident:
    """What incman knows of a remote incident."""

    remote_id: str
    number: str
    url: str = ""
    state: str = "OPEN"  # one of INCIDENT_STATES
    remote_state: str = ""
    assignee: str = ""


class Integration(Generic[C]):
    """Base of every plugin. Subclasses set the class attributes, name their config class as
    the type argument, and implement methods for the capabilities they declare."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[IntegrationConfig]] = IntegrationConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # remote state → OPEN / ASSIGNED / RESOLVED / CLOSED
    status_map: ClassVar[dict[str, str]] = {}
    # Whether `update` is sent when the event re-occurs or clears (incman.actions.followups.
    # handle_update): true where an update says what changed (Slack's update_template); false
    # where it would write the create's fields again, state and caller among them.
    updates_on_change: ClassVar[bool] = False
    # The remote deduplicates creates itself (an idempotency key: the correlation key), so a
    # retried create gives back what the first one made; a plugin without `find` says so.
    idempotent_create: ClassVar[bool] = False
    # Remote calls one worker process may have in flight at once (0: INCMAN_ACTION_THREADS):
    # a remote whose quota is learnt from each answer wants its calls to see each other's.
    parallel_calls: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = get_args(base)
            if get_origin(base) is Integration and args and isinstance(args[0], type):
                cls.config_class = args[0]  # the config class is declared once: Integration[X]

    def __init__(
        self,
        config: Mapping[str, Any] | IntegrationConfig,
        notification_id: str = "",
        *,
        guard: CallGuard | None = None,
        records: Any = None,
    ) -> None:
        """`config`: the notification's (`${env:...}` filled in), checked against the declared
        fields (ConfigurationError naming every problem), or already parsed; `guard`: flood
        control around every remote call; `records`: the store a plugin that keeps local
        records is given (incman.store.plugins builds both)."""
        self.notification_id = notification_id
        if not isinstance(config, self.config_class):
            config = self.config_class.parse(config, self.name, notification_id)
        self.cfg: C = cast(C, config)
        self.guard = guard
        self.records = records
        self._http: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        """The plugin's HTTP session; its first call runs `auth`."""
        if self._http is None:
            cfg = self.cfg
            self._http = HttpClient(
                timeout=cfg.timeout,
                verify_tls=cfg.verify_tls,
                ca_bundle=cfg.ca_bundle or None,
                proxy=cfg.proxy or None,
                guard=self.guard,
                authenticator=self,
            )
        return self._http

    # -- auth: override what the remote needs ------------------------------------------------
    def auth(self, session: HttpClient) -> None:
        """Put the credentials on the session (`use_basic`, `use_header`), or log in where
        the remote has sessions (`session.request` works here, unauthenticated). Called
        before the first call, and once more when `auth_expired` says a call failed because
        the login ran out (to refresh: that call is then retried once)."""

    def auth_expired(self, error: IntegrationError) -> bool:
        """Whether this failure means the login expired. Fixed credentials never expire (a
        401 means they are wrong); plugins that log in say what expiry looks like: a 401
        for most, another answer for some (CA SDM: 400 "Invalid REST Access Key")."""
        return False

    def logout(self, session: HttpClient) -> None:
        """End the login `auth` made (called on shutdown, only after a login)."""

    def check_answer(self, method: str, url: str, resp: requests.Response) -> None:
        """Raise the TransientError or PermanentError a 2xx/3xx answer carries in its body,
        for remotes that report failures with a success status (OTRS/Znuny: HTTP 200 and
        `{"Error": ...}`). Raised here, the error counts for the flood guard and reaches
        `auth_expired` like any other. By default the status is trusted."""

    def rate_limit_wait(self, response: Any) -> float | None:
        """Seconds every call to this remote must wait after `response` (a `requests`
        answer: a success, or a 429/503 without Retry-After), read from the remote's
        rate-limit headers when they say the quota is used up; None: go on. The HTTP client
        then holds the next calls and the flood guard pauses every worker: no sleeping."""
        return None

    def request_quota(self, response: Any) -> tuple[int, float] | None:
        """(requests left, seconds until they renew) where the remote's rate-limit headers
        tell it: the flood guard then counts every worker's calls down from it, so the calls
        that overlap stay within the quota too. None: the remote says nothing."""
        return None

    def call_budget(self) -> float:
        """Seconds one remote call may take (locks around a create outlive it)."""
        return float(self.cfg.timeout)

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

    def create_many(
        self, items: list[tuple[dict[str, Any], str]]
    ) -> list[RemoteIncident | IntegrationError]:
        """Where the remote takes many creates in one call: each (fields, correlation key)
        found by its key or else created, answered in order (an item's own error in its
        place). NotSupported otherwise: incman then finds and creates one by one."""
        raise NotSupported(f"{self.name} cannot create many incidents in one call")

    def find(self, correlation_key: str) -> RemoteIncident | None:
        """The incident created with this correlation key, or None."""
        raise NotSupported(f"{self.name} cannot look up incidents")

    def find_by_number(self, number: str) -> RemoteIncident | None:
        """The incident people know by this number (as typed in the console), or None."""
        raise NotSupported(f"{self.name} cannot look incidents up by number")

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        raise NotSupported(f"{self.name} cannot update incidents")

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        raise NotSupported(f"{self.name} cannot add notes")

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        raise NotSupported(f"{self.name} cannot assign incidents")

    def close(self, ref: RemoteIncident, note: str) -> None:
        raise NotSupported(f"{self.name} cannot close incidents")

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        """Re-open; CannotReopen when this incident no longer can be (closed for good)."""
        raise NotSupported(f"{self.name} cannot re-open incidents")

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """Fresh state of many incidents at once, keyed by remote_id (missing = unknown)."""
        raise NotSupported(f"{self.name} cannot read incident status")

    def shutdown(self) -> None:
        if self._http is not None:
            self._http.close()
