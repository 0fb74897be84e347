"""Random event sequences, actions run in random order and re-delivered: the invariants
hold (one open incident per notification+dedupid, one link per event and notification,
one remote ticket per incident, no action lost). SQLite and fakeredis, actions in-process."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from incman.actions.run import run_action
from incman.domain.event import EventIn, make_dedupid
from incman.ingest import event_ops
from incman.ingest.accept import accept
from incman.outbox import sender
from incman.settings import reset_settings
from incman.store import redisconn
from incman.store.catalog import catalog_cache, get_catalog
from incman.store.db import reset_engine, session_scope
from incman.store.migrations import upgrade
from incman.store.models import (
    OPEN_INCIDENT_STATES,
    Action,
    DebugIncident,
    Event,
    EventIncident,
    Incident,
)

CONFIG = {
    "triggers": [{"id": "all", "when": {"severity": {"_gte": 1}}}],
    "notifications": [
        {"id": "defaults", "integration": "debug", "triggers": ["all"]},
        {
            "id": "eager",
            "integration": "debug",
            "triggers": ["all"],
            "options": {
                "initial_occurrence_only": False,
                "reopen_incident_on_reoccur": True,
                "send_clear": True,
                "check_closed_before_assign": False,
            },
        },
    ],
}


@pytest.fixture(scope="module", autouse=True)
def sqlite_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder: Path = tmp_path_factory.mktemp("props")
    (folder / "incman.yaml").write_text(yaml.safe_dump(CONFIG))
    saved = dict(os.environ)
    url = f"sqlite:///{folder / 'incman.db'}"
    os.environ.update(
        {
            "INCMAN_DATABASE_URL": url,
            "INCMAN_CONFIG": str(folder / "incman.yaml"),
            "INCMAN_REDIS_URL": "redis://unused",
            "INCMAN_DATA_DIR": str(folder),
        }
    )
    reset_settings(), reset_engine(), catalog_cache.reset()
    upgrade(url)
    redisconn._client = fakeredis.FakeRedis()
    redisconn._pid = os.getpid()
    sender.set_transport(lambda queue, items: None)  # the test runs the actions itself
    yield
    sender.set_transport(None)
    os.environ.clear()
    os.environ.update(saved)
    reset_settings(), reset_engine(), catalog_cache.reset(), redisconn.reset_redis()


Op = tuple[str, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "event",
                "event",
                "event",
                "clear",
                "ack",
                "close",
                "reopen",
                "run",
                "run",
                "run",
                "redeliver",
                "remote_close",
            ]
        ),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=40,
)


def _ingest(ev: EventIn) -> list[int]:
    with session_scope() as session:
        return [p.action_id for p in accept(session, [ev], get_catalog()).pending]


def _event(prefix: str, key: int, severity: int) -> EventIn:
    ev = EventIn(
        device=f"{prefix}-{key % 3}",
        component="c",
        event_class="/P",
        severity=severity,
        summary="s",
    )
    ev.dedupid = make_dedupid(ev)
    return ev


def _operate(prefix: str, n: int, op: str) -> list[int]:
    with session_scope() as session:
        events = session.scalars(
            select(Event).where(Event.device.like(f"{prefix}-%")).order_by(Event.first_time)
        ).all()
        if not events:
            return []
        ev = events[n % len(events)]
        try:
            batch = getattr(event_ops, op)(session, get_catalog(), ev, "prop")
        except event_ops.EventStateError:
            return []
        return [p.action_id for p in batch]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops)
def test_invariants_hold_for_any_sequence(sequence: list[Op]) -> None:
    prefix = uuid.uuid4().hex[:8]
    pending: list[int] = []
    done: list[int] = []
    for op, n in sequence:
        if op == "event":
            pending += _ingest(_event(prefix, n, 3 + n % 3))
        elif op == "clear":
            pending += _ingest(_event(prefix, n, 0))
        elif op in ("ack", "close", "reopen"):
            pending += _operate(prefix, n, {"ack": "acknowledge"}.get(op, op))
        elif op == "run" and pending:
            action = pending.pop(n % len(pending))
            run_action(action)
            done.append(action)
        elif op == "redeliver" and done:
            run_action(done[n % len(done)])  # a message delivered twice
        elif op == "remote_close":
            with session_scope() as session:
                session.execute(
                    update(DebugIncident)
                    .where(DebugIncident.id == (n % 5) + 1)
                    .values(state="closed")
                )
        _check_invariants(prefix)
    for action in pending:  # drain: every action ends
        run_action(action)
    _check_invariants(prefix)
    with session_scope() as session:
        mine = select(Event.id).where(Event.device.like(f"{prefix}-%"))
        statuses = session.scalars(select(Action.status).where(Action.event_id.in_(mine))).all()
        dead = session.scalars(
            select(Action.last_error).where(Action.event_id.in_(mine), Action.status == "dead")
        ).all()
        assert set(statuses) <= {"done", "skipped"}, dead
        created = session.scalars(
            select(Action.event_id).where(Action.event_id.in_(mine), Action.kind == "create")
        ).all()
        linked = set(
            session.scalars(
                select(EventIncident.event_id).where(EventIncident.event_id.in_(created))
            ).all()
        )
        assert linked == set(created)  # no create lost


def _check_invariants(prefix: str) -> None:
    with session_scope() as session:
        mine = select(Event.dedupid).where(Event.device.like(f"{prefix}-%"))
        open_per_key = session.execute(
            select(Incident.notification_id, Incident.dedupid, func.count())
            .where(Incident.dedupid.in_(mine), Incident.state.in_(OPEN_INCIDENT_STATES))
            .group_by(Incident.notification_id, Incident.dedupid)
        ).all()
        assert all(count == 1 for _, _, count in open_per_key)
        links = session.execute(
            select(EventIncident.event_id, EventIncident.notification_id, func.count()).group_by(
                EventIncident.event_id, EventIncident.notification_id
            )
        ).all()
        assert all(count == 1 for _, _, count in links)
        tickets = session.execute(
            select(DebugIncident.correlation_key, func.count()).group_by(
                DebugIncident.correlation_key
            )
        ).all()
        assert all(count == 1 for _, count in tickets), tickets
