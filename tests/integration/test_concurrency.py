"""One incident per notification and dedup key, always: 2,000 events over 50 dedupids,
sent at once through two API processes to four worker processes (and with one worker
SIGKILLed midway; beat runs the reconciler, which brings back a message the kill lost)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from helpers import API_KEY, unique, wait_for
from sqlalchemy import func, select

from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, Event, EventIncident, Incident
from incman.testing.procs import start_api

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "all", "when": {"severity": {"_gte": 1}}}],
    # Every re-occurrence queues an action too: the claim path is raced 2,000 times.
    "notifications": [
        {
            "id": "flood",
            "integration": "debug",
            "triggers": ["all"],
            "options": {"initial_occurrence_only": False},
        }
    ],
}
EVENTS = 2000
KEYS = 50


def _send_all(urls: list[str], prefix: str) -> None:
    sessions = [requests.Session() for _ in urls]
    for s in sessions:
        s.headers["Authorization"] = f"Bearer {API_KEY}"

    def send(n: int) -> int:
        body = {
            "device": f"{prefix}-{n % KEYS}",
            "component": "c",
            "severity": 4,
            "summary": "flood",
        }
        return (
            sessions[n % len(urls)]
            .post(urls[n % len(urls)] + "/api/v1/events", json=body, timeout=60)
            .status_code
        )

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(EVENTS)))
    assert set(codes) <= {200, 201}, codes


def _settled(prefix: str) -> bool:
    with session_scope() as session:
        busy = session.scalar(
            select(func.count())
            .select_from(Action)
            .where(Action.notification_id == "flood", Action.status.in_(("pending", "running")))
        )
        linked = session.scalar(
            select(func.count())
            .select_from(EventIncident)
            .join(Event, Event.id == EventIncident.event_id)
            .where(Event.device.like(f"{prefix}-%"))
        )
    return busy == 0 and linked == KEYS


def _done(prefix: str) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Action)
                .join(Event, Event.id == Action.event_id)
                .where(Event.device.like(f"{prefix}-%"), Action.status == "done")
            )
            or 0
        )


def _check(prefix: str) -> None:
    with session_scope() as session:
        events = session.scalars(select(Event).where(Event.device.like(f"{prefix}-%"))).all()
        assert len(events) == KEYS
        assert sum(e.count for e in events) == EVENTS  # every occurrence is on a linked event
        incidents = session.scalars(
            select(Incident).where(Incident.dedupid.in_([e.dedupid for e in events]))
        ).all()
        assert len(incidents) == KEYS
        assert all(i.state == "OPEN" and i.number for i in incidents)
        remote = session.scalar(
            select(func.count())
            .select_from(DebugIncident)
            .where(DebugIncident.correlation_key.in_([i.correlation_key for i in incidents]))
        )
        assert remote == KEYS
        links = session.scalars(
            select(EventIncident).where(EventIncident.event_id.in_([e.id for e in events]))
        ).all()
        assert len(links) == KEYS
        dead = session.scalar(
            select(func.count())
            .select_from(Action)
            .where(Action.notification_id == "flood", Action.status == "dead")
        )
        assert dead == 0


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    stack = make_stack(
        CONFIG,
        workers=2,
        queues="itsm.debug,maintenance",
        concurrency=2,
        beat=True,
        extra_env={"INCMAN_RECONCILE_AFTER": "20"},
    )
    api2, url2 = start_api(stack.env, stack.logs)
    stack.extra_api = (api2, url2)
    yield stack
    api2.stop()


def test_two_thousand_events_make_fifty_incidents(stack: Any) -> None:
    prefix = unique("burst")
    _send_all([stack.url, stack.extra_api[1]], prefix)
    wait_for(lambda: _settled(prefix), timeout=240, interval=0.5, what="all actions done")
    _check(prefix)


def test_the_same_with_a_worker_killed_midway(stack: Any) -> None:
    prefix = unique("killed")
    victim = stack.workers[0]
    _send_all([stack.url, stack.extra_api[1]], prefix)
    # Midway: some actions done, most still to do (the burst far outlasts this check).
    wait_for(lambda: _done(prefix) >= 20, interval=0.05, what="the first actions done")
    victim.kill(signal.SIGKILL)
    victim.popen.wait(10)
    stack.workers.remove(victim)
    stack.add_worker("itsm.debug,maintenance", concurrency=2, name="replacement")
    wait_for(lambda: _settled(prefix), timeout=300, interval=0.5, what="all actions done")
    _check(prefix)
