"""Aging and retention on a large table (50,000 events in a PostgreSQL database of its own),
in batches."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from incman.store.aging import age_events, purge_expired
from incman.store.db import reset_engine, session_scope
from incman.store.models import Action, Event, EventIncident, Incident, Note, Occurrence
from incman.testing.pg import fresh_database

PG_ADMIN = os.environ.get("INCMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def database() -> Iterator[None]:
    """A database of its own, so every count below is exact."""
    from incman.settings import reset_settings

    with fresh_database(PG_ADMIN, prefix="incman_aging") as url:
        saved = os.environ.get("INCMAN_DATABASE_URL")
        os.environ["INCMAN_DATABASE_URL"] = url
        reset_settings(), reset_engine()
        yield
        reset_engine()
        if saved is None:
            os.environ.pop("INCMAN_DATABASE_URL", None)
        else:
            os.environ["INCMAN_DATABASE_URL"] = saved
        reset_settings()


# name: (how many, status, severity, last occurrence and last change before NOW)
GROUPS = {
    "old-warning": (20_000, "New", 3, 5 * HOUR),  # ages
    "old-info-acked": (4_000, "Acknowledged", 2, 5 * HOUR),  # ages
    "old-critical": (5_000, "New", 5, 5 * HOUR),  # stays open
    "recent-warning": (5_000, "New", 3, HOUR),  # stays open
    "closed-long-ago": (8_000, "Closed", 4, 100 * DAY),  # purged
    "cleared-long-ago": (2_000, "Cleared", 3, 95 * DAY),  # purged
    "closed-recently": (6_000, "Closed", 4, 10 * DAY),  # kept
}


def _event(n: int, status: str, severity: int, age: timedelta) -> dict[str, Any]:
    at = NOW - age
    return {
        "id": str(uuid.uuid4()),
        "dedupid": f"age{n}|c|{severity}",
        "device": f"age{n}",
        "component": "c",
        "severity": severity,
        "summary": "s",
        "status": status,
        "count": 1,
        "first_time": at,
        "last_time": at,
        "updated_at": at,
        "details": {},
    }


@pytest.fixture(scope="module")
def table(database: None) -> dict[str, list[str]]:
    """50,000 events inserted in bulk; a few with occurrences, notes, incidents, actions."""
    ids: dict[str, list[str]] = {}
    rows, n = [], 0
    for key, (count, status, severity, age) in GROUPS.items():
        ids[key] = []
        for _ in range(count):
            row = _event(n, status, severity, age)
            rows.append(row)
            ids[key].append(row["id"])
            n += 1
    with session_scope() as session:
        session.execute(insert(Event), rows)
        purged, kept = ids["closed-long-ago"][:300], ids["closed-recently"][:100]
        for event_id in purged + kept:
            session.add(
                Occurrence(
                    id=f"{event_id}:1",
                    event_id=event_id,
                    seq=1,
                    severity=4,
                    received_at=NOW - 100 * DAY,
                    summary="s",
                )
            )
            session.add(Note(id=str(uuid.uuid4()), event_id=event_id, text="n"))
        session.flush()
        for i, event_id in enumerate(purged + kept):
            # resolved incidents, except every third purged one, still open remotely
            state = "OPEN" if i < 300 and i % 3 == 0 else "CLOSED"
            inc = Incident(
                id=str(uuid.uuid4()),
                notification_id="n",
                integration="debug",
                dedupid=f"inc{i}",
                correlation_key=uuid.uuid4().hex,
                state=state,
            )
            session.add(inc)
            session.flush()
            session.add(EventIncident(event_id=event_id, notification_id="n", incident_id=inc.id))
            session.add(
                Action(
                    kind="create",
                    notification_id="n",
                    integration="debug",
                    event_id=event_id,
                    incident_id=inc.id,
                    status="done",
                )
            )
    return ids


def count(model: Any, *conds: Any) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


def test_aging_and_retention_in_batches(table: dict[str, list[str]]) -> None:
    assert count(Event) == 50_000

    aged = age_events(now=NOW, after_secs=4 * 3600, below_severity=4, batch=1000)
    assert (aged.rows, aged.batches) == (24_000, 24)
    assert count(Event, Event.status == "Aged") == 24_000
    assert count(Event, Event.status.in_(("New", "Acknowledged"))) == 10_000
    assert age_events(now=NOW, after_secs=4 * 3600, below_severity=4).rows == 0
    assert age_events(now=NOW, after_secs=0).rows == 0  # 0 turns aging off

    purged = purge_expired(now=NOW, retention_days=90, batch=1000)
    assert (purged.rows, purged.batches) == (10_000, 10)
    assert count(Event) == 40_000
    assert count(Event, Event.status == "Closed") == 6_000
    assert count(Event, Event.status == "Cleared") == 0
    # the purged events' records went with them; the kept ones' stay
    assert count(Occurrence) == 100 and count(Note) == 100 and count(EventIncident) == 100
    # incidents left without events go once they are no longer open
    assert count(Incident) == 100 + 100
    assert count(Incident, Incident.state == "OPEN") == 100
    # finished outbox rows go with their events
    assert count(Action) == 100

    # the just-aged events last changed now: kept until their own retention has passed
    later = purge_expired(now=NOW + 91 * DAY, retention_days=90, batch=5000)
    assert (later.rows, later.batches) == (30_000, 6)
    assert count(Event) == 10_000
    assert purge_expired(now=NOW, retention_days=0).rows == 0  # 0 keeps everything
