"""The Debug integration's "remote" records, kept in the `debug_incidents` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from incman.integrations.debug import DebugRecord
from incman.store.bulk import insert_returning_ids, update_rows
from incman.store.db import new_session
from incman.store.models import DebugIncident, utcnow


def _record(row: DebugIncident) -> DebugRecord:
    return DebugRecord(
        id=row.id,
        number=row.number,
        state=row.state,
        assignee=row.assignee or "",
        fields=dict(row.fields or {}),
        notes=list(row.notes or []),
    )


def _insert(session: Session, new: dict[str, dict[str, Any]]) -> None:
    """Insert records, then number them from their ids (DBG0000042)."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "number": f"new-{key[:24]}",
            "correlation_key": key,
            "fields": fields,
            "state": "open",
            "assignee": None,
            "notes": [],
            "created_at": now,
            "updated_at": now,
        }
        for key, fields in new.items()
    ]
    ids = insert_returning_ids(session, DebugIncident, rows)
    update_rows(session, DebugIncident, "id", [{"id": i, "number": f"DBG{i:07d}"} for i in ids])


class DebugStore:
    """What the Debug plugin is given to keep its records (incman.integrations.debug)."""

    def create(self, correlation_key: str, fields: dict[str, Any]) -> DebugRecord:
        with new_session() as session:
            row = DebugIncident(
                number=f"new-{correlation_key[:24]}",
                correlation_key=correlation_key,
                fields=fields,
                state="open",
                notes=[],
            )
            session.add(row)
            session.flush()
            row.number = f"DBG{row.id:07d}"
            session.commit()
            return _record(row)

    def find_or_create(self, items: list[tuple[str, dict[str, Any]]]) -> list[DebugRecord]:
        """The record of each correlation key, made where there is none (one transaction)."""
        with new_session() as session:
            keys = [key for key, _ in items]
            found: dict[str, DebugIncident] = {}
            for row in session.scalars(
                select(DebugIncident)
                .where(DebugIncident.correlation_key.in_(keys))
                .order_by(DebugIncident.id.desc())
            ):
                found[row.correlation_key] = row  # the oldest wins, as `find` answers
            new = {key: fields for key, fields in items if key not in found}
            if new:
                _insert(session, new)
                for row in session.scalars(
                    select(DebugIncident).where(DebugIncident.correlation_key.in_(list(new)))
                ):
                    found.setdefault(row.correlation_key, row)
            records = [_record(found[key]) for key in keys]
            session.commit()
            return records

    def find(self, correlation_key: str) -> DebugRecord | None:
        with new_session() as session:
            row = session.scalars(
                select(DebugIncident)
                .where(DebugIncident.correlation_key == correlation_key)
                .order_by(DebugIncident.id)
                .limit(1)
            ).first()
            return _record(row) if row is not None else None

    def find_number(self, number: str) -> DebugRecord | None:
        with new_session() as session:
            row = session.scalars(
                select(DebugIncident).where(DebugIncident.number == number)
            ).first()
            return _record(row) if row is not None else None

    def change(self, record_id: int, note: str | None = None, **changes: Any) -> bool:
        """Apply changes (state, assignee, fields merged) and a note; False if not found."""
        with new_session() as session:
            row = session.get(DebugIncident, record_id, with_for_update=True)
            if row is None:
                return False
            fields = changes.pop("fields", None)
            if fields:
                row.fields = {**(row.fields or {}), **fields}
            for key, value in changes.items():
                setattr(row, key, value)
            if note:
                row.notes = [*row.notes, {"at": utcnow().isoformat(), "text": note}]
            row.updated_at = utcnow()
            session.commit()
            return True

    def many(self, record_ids: list[int]) -> list[DebugRecord]:
        with new_session() as session:
            rows = session.scalars(select(DebugIncident).where(DebugIncident.id.in_(record_ids)))
            return [_record(row) for row in rows]
