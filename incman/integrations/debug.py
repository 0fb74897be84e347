"""Debug: a real, countable "remote" kept in its own table (`debug_incidents`).

For demonstrations and tests: every create, note, close, reopen and status read is a row
change that can be counted. Config: `url_base` (link prefix, default INCMAN_PUBLIC_URL),
`answer_delay` (seconds to wait after committing before answering, to rehearse lost
answers and killed workers), `fail` (`transient` or `permanent`: every call fails) and
`fail_until` (a Unix time: `fail` applies only before it, an outage that ends by itself)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from sqlalchemy import select

from incman.db import new_session
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.errors import PermanentError, TransientError
from incman.models import DebugIncident, utcnow

_STATES = {"open": "OPEN", "assigned": "ASSIGNED", "resolved": "RESOLVED", "closed": "CLOSED"}


class DebugIntegration(Integration):
    name = "debug"
    capabilities = ALL_CAPABILITIES
    status_map: ClassVar[dict[str, str]] = _STATES

    def call_budget(self) -> float:
        return float(self.config.get("answer_delay", 0) or 0) + 5.0

    def _check_faults(self) -> None:
        fail = self.config.get("fail")
        until = self.config.get("fail_until")
        if until is not None and time.time() >= float(until):
            return  # the injected outage is over
        if fail == "transient":
            raise TransientError("debug: transient failure injected by configuration")
        if fail == "permanent":
            raise PermanentError("debug: permanent failure injected by configuration")

    def _answer_delay(self) -> None:
        delay = float(self.config.get("answer_delay", 0) or 0)
        if delay > 0:
            time.sleep(delay)

    def _url(self, number: str) -> str:
        from incman.config import get_settings

        base = str(self.config.get("url_base") or get_settings().public_url).rstrip("/")
        return f"{base}/debug/incidents/{number}"

    def _ref(self, row: DebugIncident) -> RemoteIncident:
        return RemoteIncident(
            remote_id=str(row.id),
            number=row.number,
            url=self._url(row.number),
            state=self.map_state(row.state),
            remote_state=row.state,
            assignee=row.assignee or "",
        )

    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        self._check_faults()
        with new_session() as session:
            row = DebugIncident(number=f"new-{correlation_key[:24]}",
                                correlation_key=correlation_key, fields=fields, state="open",
                                notes=[])
            session.add(row)
            session.flush()
            row.number = f"DBG{row.id:07d}"
            session.commit()
            ref = self._ref(row)
        self._answer_delay()
        return ref

    def find(self, correlation_key: str) -> RemoteIncident | None:
        self._check_faults()
        with new_session() as session:
            row = session.scalars(
                select(DebugIncident)
                .where(DebugIncident.correlation_key == correlation_key)
                .order_by(DebugIncident.id)
                .limit(1)
            ).first()
            return self._ref(row) if row is not None else None

    def _change(self, ref: RemoteIncident, **changes: Any) -> None:
        self._check_faults()
        with new_session() as session:
            row = session.get(DebugIncident, int(ref.remote_id), with_for_update=True)
            if row is None:
                raise PermanentError(f"debug: no incident {ref.number}")
            note = changes.pop("note", None)
            for key, value in changes.items():
                setattr(row, key, value)
            if note:
                row.notes = [*row.notes, {"at": utcnow().isoformat(), "text": note}]
            row.updated_at = utcnow()
            session.commit()

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        with new_session() as session:
            row = session.get(DebugIncident, int(ref.remote_id))
            current = dict(row.fields) if row is not None else {}
        self._change(ref, fields={**current, **fields})

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._change(ref, note=text)

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        self._change(ref, assignee=assignee, state="assigned", note=f"Assigned to {assignee}")

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._change(ref, state="closed", note=note)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._change(ref, state="open", note=note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        self._check_faults()
        ids = [int(r.remote_id) for r in refs if r.remote_id.isdigit()]
        with new_session() as session:
            rows = session.scalars(select(DebugIncident).where(DebugIncident.id.in_(ids)))
            return {str(row.id): self._ref(row) for row in rows}
