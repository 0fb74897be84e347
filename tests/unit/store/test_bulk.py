"""Bulk writes on SQLite (the embedded default); PostgreSQL's are in
tests/integration/test_batches.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from incman.store.bulk import insert_returning_ids, update_rows, upsert_events
from incman.store.models import Action, Base, Event, utcnow


def session() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return Session(engine)


def event(dedupid: str, count: int, summary: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": f"{dedupid}-{summary}",
        "dedupid": dedupid,
        "device": "d",
        "component": "",
        "event_class": "",
        "event_key": "",
        "event_class_key": "",
        "severity": 3,
        "summary": summary,
        "message": "",
        "status": "New",
        "count": count,
        "first_time": now,
        "last_time": now,
        "agent": "",
        "source": "",
        "details": {"n": count},
        "updated_at": now,
    }


def test_upsert_folds_into_the_open_event() -> None:
    with session() as s:
        made = upsert_events(s, [event("a", 1, "one"), event("b", 2, "two")])
        folded = upsert_events(s, [event("a", 3, "three")])
        assert made["a"][:3] == ("a-one", 1, "New")
        assert made["b"][:2] == ("b-two", 2)
        assert folded["a"][:2] == ("a-one", 4)
        row = s.get(Event, "a-one")
        assert row is not None and row.summary == "three" and row.details == {"n": 3}


def test_ids_come_back_in_order_and_rows_update_by_key() -> None:
    now = utcnow()
    rows = [
        {
            "kind": "note",
            "notification_id": "n",
            "integration": "debug",
            "event_id": None,
            "incident_id": None,
            "payload": {"n": n},
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(30)
    ]
    with session() as s:
        ids = insert_returning_ids(s, Action, rows)
        update_rows(s, Action, "id", [{"id": i, "attempts": n + 1} for n, i in enumerate(ids)])
        stored = {a.id: (a.payload["n"], a.attempts) for a in s.scalars(select(Action))}
    assert stored == {i: (n, n + 1) for n, i in enumerate(ids)}
