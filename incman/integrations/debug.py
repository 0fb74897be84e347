"""Debug: a real, countable "remote" whose records incman keeps for it (a store it is given).

For demonstrations and tests: every create, note, close, reopen and status read is a record
change that can be counted, and the config can rehearse failures (`fail`, `fail_until`) and
lost answers (`answer_delay`, `fail: lost_answer`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting
from incman.integrations.errors import (
    ConfigurationError,
    IntegrationError,
    PermanentError,
    TransientError,
)
from incman.settings import get_settings

_STATES = {"open": "OPEN", "assigned": "ASSIGNED", "resolved": "RESOLVED", "closed": "CLOSED"}
FAULTS = ("", "transient", "unreachable", "rate_limited", "lost_answer", "permanent")


@dataclass
class DebugRecord:
    """One Debug incident as its store keeps it."""

    id: int
    number: str
    state: str = "open"
    assignee: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    notes: list[Any] = field(default_factory=list)


class DebugRecords(Protocol):
    """Where the Debug plugin keeps its records (incman.store.debug_records in incman)."""

    def create(self, correlation_key: str, fields: dict[str, Any]) -> DebugRecord: ...

    def find(self, correlation_key: str) -> DebugRecord | None: ...

    def find_or_create(self, items: list[tuple[str, dict[str, Any]]]) -> list[DebugRecord]:
        """The record of each correlation key, made with its fields where there is none."""
        ...

    def find_number(self, number: str) -> DebugRecord | None: ...

    def change(self, record_id: int, note: str | None = None, **changes: Any) -> bool: ...

    def many(self, record_ids: list[int]) -> list[DebugRecord]: ...


class DebugConfig(IntegrationConfig):
    url_base: str = setting("", help="prefix of incident links (default INCMAN_PUBLIC_URL)")
    answer_delay: float = setting(
        0.0, at_least=0, help="seconds between storing a create and answering it"
    )
    fail: str = setting(
        "",
        choices=FAULTS,
        help="every call fails, in order: a 500, no answer, a 429 (Retry-After 1 s), the answer "
        "lost after the change is stored, a refusal",
    )
    fail_until: float | None = setting(None, help="a Unix time: `fail` applies only before it")


class DebugIntegration(Integration[DebugConfig]):
    name = "debug"
    capabilities = ALL_CAPABILITIES
    updates_on_change = True  # the record keeps the fields rendered again
    status_map: ClassVar[dict[str, str]] = _STATES

    @property
    def store(self) -> DebugRecords:
        if self.records is None:
            raise ConfigurationError("debug: no record store was given to the plugin")
        return self.records  # type: ignore[no-any-return]

    def call_budget(self) -> float:
        return self.cfg.answer_delay + 5.0

    def _fault(self) -> str:
        until = self.cfg.fail_until
        return "" if until is not None and time.time() >= until else self.cfg.fail

    def _before(self) -> None:
        fault = self._fault()
        if fault == "transient":
            raise TransientError("debug: transient failure injected by configuration", status=500)
        if fault == "unreachable":
            raise TransientError("debug: no answer (injected by configuration)")
        if fault == "rate_limited":
            raise TransientError("debug: rate limited (injected)", 1.0, status=429)
        if fault == "permanent":
            raise PermanentError("debug: permanent failure injected by configuration")

    def _answer(self, delay: float = 0.0) -> None:
        if delay > 0:
            time.sleep(delay)
        if self._fault() == "lost_answer":
            raise TransientError("debug: the answer was lost after the change was stored")

    def _url(self, number: str) -> str:
        base = (self.cfg.url_base or get_settings().public_url).rstrip("/")
        return f"{base}/debug/incidents/{number}"

    def _ref(self, record: DebugRecord) -> RemoteIncident:
        return RemoteIncident(
            remote_id=str(record.id),
            number=record.number,
            url=self._url(record.number),
            state=self.map_state(record.state),
            remote_state=record.state,
            assignee=record.assignee,
        )

    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        self._before()
        ref = self._ref(self.store.create(correlation_key, fields))
        self._answer(self.cfg.answer_delay)
        return ref

    def create_many(
        self, items: list[tuple[dict[str, Any], str]]
    ) -> list[RemoteIncident | IntegrationError]:
        self._before()
        records = self.store.find_or_create([(key, fields) for fields, key in items])
        self._answer(self.cfg.answer_delay)
        return [self._ref(record) for record in records]

    def find(self, correlation_key: str) -> RemoteIncident | None:
        self._before()
        record = self.store.find(correlation_key)
        return self._ref(record) if record is not None else None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        self._before()
        record = self.store.find_number(number)
        return self._ref(record) if record is not None else None

    def _change(self, ref: RemoteIncident, **changes: Any) -> None:
        self._before()
        if not self.store.change(int(ref.remote_id), **changes):
            raise PermanentError(f"debug: no incident {ref.number}", status=404)
        self._answer()

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        self._change(ref, fields=fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._change(ref, note=text)

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        self._change(ref, assignee=assignee, state="assigned", note=f"Assigned to {assignee}")

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._change(ref, state="closed", note=note)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._change(ref, state="open", note=note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        self._before()
        ids = [int(r.remote_id) for r in refs if r.remote_id.isdigit()]
        return {str(record.id): self._ref(record) for record in self.store.many(ids)}
