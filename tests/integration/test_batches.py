"""Many actions in one task message (incman.actions.batch) through the real pipeline: the
creates of fresh dedupids go together, everything else one at a time, and every rule of the
one-at-a-time path still holds: one open incident per dedupid, a field mapping that fails
dead-letters only its own action, re-occurrences after a close follow the options. Also the
bulk writes on PostgreSQL (incman.store.bulk)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Client, unique, wait_for
from sqlalchemy import func, select

from incman.store.bulk import insert_returning_ids, update_rows, upsert_events
from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, Event, EventIncident, Incident, utcnow

HUGE = "*".join(["(999999 ** 100)"] * 8)  # 4,800 digits: a mapping error
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "batch", "when": {"device": {"_m": "^batch-"}}}],
    "notifications": [
        {
            "id": "batch-debug",
            "integration": "debug",
            "triggers": ["batch"],
            "field_mapping": (
                "big, ${python: (" + HUGE + ") if evt.device.endswith('-bad') else 1}"
            ),
        }
    ],
}


@pytest.fixture(scope="module")
def client(make_stack: Any) -> Client:
    # One worker process, so a batch is taken by one task: the fast path and the rest meet.
    return make_stack(CONFIG, concurrency=1).client


def _events(client: Client, devices: list[str]) -> list[str]:
    body = [{"device": d, "severity": 4, "summary": f"{d} down"} for d in devices]
    answer = client.post("/api/v1/events", body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert all(r["ok"] for r in results), results
    return [r["eventId"] for r in results]


def _settled(prefix: str) -> bool:
    with session_scope() as session:
        return not session.scalar(
            select(func.count())
            .select_from(Action)
            .join(Event, Event.id == Action.event_id)
            .where(Event.device.like(prefix + "%"), Action.status.in_(("pending", "running")))
        )


def _statuses(event_ids: list[str]) -> dict[str, str]:
    with session_scope() as session:
        rows = session.execute(
            select(Action.event_id, Action.status).where(Action.event_id.in_(event_ids))
        )
        return {key: value for key, value in rows}


def _open_incidents_by_dedupid(prefix: str) -> dict[str, int]:
    with session_scope() as session:
        rows = session.execute(
            select(Incident.dedupid, func.count())
            .where(
                Incident.dedupid.like(prefix + "%"),
                Incident.state.in_(("PENDING", "OPEN", "ASSIGNED")),
            )
            .group_by(Incident.dedupid)
        )
        return {key: value for key, value in rows}


def test_a_batch_of_fresh_and_known_dedupids(client: Client) -> None:
    prefix = unique("batch")
    first = [f"{prefix}-{n}" for n in range(40)]
    first_ids = _events(client, first)
    wait_for(lambda: _settled(prefix), what="the first batch's actions", timeout=60)
    assert set(_statuses(first_ids).values()) == {"done"}
    # Close ten of them: their incidents close; new events of those devices need new ones.
    for event_id in first_ids[:10]:
        assert client.post(f"/api/v1/events/{event_id}/close").status_code == 200
    wait_for(lambda: _settled(prefix), what="the closes")
    again = first[:10]  # a dedupid seen before: the one-at-a-time path decides
    fresh = [f"{prefix}-new-{n}" for n in range(30)]
    bad = [f"{prefix}-{n}-bad" for n in range(3)]  # their field mapping fails
    second_ids = _events(client, again + fresh + bad + first[10:20])  # and ten repeats
    wait_for(lambda: _settled(prefix), what="the second batch's actions", timeout=60)

    statuses = _statuses(second_ids)
    assert [statuses[i] for i in second_ids[:40]] == ["done"] * 40
    assert [statuses[i] for i in second_ids[40:43]] == ["dead"] * 3
    # One open incident per dedupid, for every device with an open event.
    by_dedupid = _open_incidents_by_dedupid(prefix)
    assert set(by_dedupid.values()) == {1}
    assert len(by_dedupid) == 40 + 30
    with session_scope() as session:
        linked = session.scalar(
            select(func.count())
            .select_from(EventIncident)
            .where(EventIncident.event_id.in_(second_ids[:40]))
        )
        remote = session.scalar(
            select(func.count())
            .select_from(DebugIncident)
            .join(Incident, Incident.correlation_key == DebugIncident.correlation_key)
            .where(Incident.dedupid.like(prefix + "%"))
        )
    assert linked == 40
    assert remote == 40 + 10 + 30  # one remote ticket per incident: none made twice


def test_bulk_writes_keep_order_and_fold_repeats(client: Client) -> None:
    now = utcnow()
    prefix = unique("bulk")
    rows = [
        {
            "kind": "note",
            "notification_id": prefix,
            "integration": "debug",
            "event_id": None,
            "incident_id": None,
            "payload": {"n": n},
            "status": "done",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(2500)  # more than one page
    ]
    with session_scope() as session:
        ids = insert_returning_ids(session, Action, rows)
        update_rows(session, Action, "id", [{"id": i, "attempts": n} for n, i in enumerate(ids)])
    with session_scope() as session:
        stored = session.execute(
            select(Action.id, Action.payload, Action.attempts).where(
                Action.notification_id == prefix
            )
        ).all()
    assert {i: (p["n"], a) for i, p, a in stored} == {i: (n, n) for n, i in enumerate(ids)}

    event = {
        "dedupid": f"{prefix}|dedup",
        "device": prefix,
        "component": "",
        "event_class": "",
        "event_key": "",
        "event_class_key": "",
        "severity": 3,
        "summary": "first",
        "message": "",
        "status": "New",
        "count": 2,
        "first_time": now,
        "last_time": now,
        "agent": "",
        "source": "",
        "details": {"a": [1, {"b": "\u00e9"}]},
        "updated_at": now,
    }
    with session_scope() as session:
        made = upsert_events(session, [{**event, "id": f"{prefix[:30]}-1"}])
        folded = upsert_events(session, [{**event, "id": f"{prefix[:30]}-2", "summary": "again"}])
    assert made[event["dedupid"]][:2] == (f"{prefix[:30]}-1", 2)
    assert folded[event["dedupid"]][:2] == (f"{prefix[:30]}-1", 4)  # folded into the first
    with session_scope() as session:
        row = session.get(Event, f"{prefix[:30]}-1")
        assert row is not None and row.summary == "again" and row.details == event["details"]
