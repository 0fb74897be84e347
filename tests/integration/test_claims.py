"""Who runs an action (incman.actions.claims, incman.store.liveness): never two live worker
processes at once, and a killed worker's actions come back as soon as its liveness key
expires, long before the broker's visibility timeout would bring their message back."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from helpers import unique, wait_for
from sqlalchemy import func, select

from incman.actions.claims import claim
from incman.outbox import sender
from incman.outbox.reconcile import reconcile
from incman.store import liveness
from incman.store.bulk import insert_returning_ids
from incman.store.db import session_scope
from incman.store.models import Action, DebugIncident, utcnow

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "slow", "when": {"device": {"_m": "^claims-slow-"}}}],
    # The remote commits each ticket, then takes 3 s to answer: the kill lands in between.
    "notifications": [
        {
            "id": "claims-slow",
            "integration": "debug",
            "triggers": ["slow"],
            "config": {"answer_delay": 3},
        }
    ],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    # The broker's own re-delivery would take the default 300 s: recovery must not need it.
    return make_stack(CONFIG, workers=0, beat=True, extra_env={"INCMAN_VISIBILITY_TIMEOUT": "300"})


@pytest.fixture
def sent() -> Iterator[list[int]]:
    ids: list[int] = []

    def record(queue: str, items: Sequence[sender.Sendable]) -> None:
        ids.extend(i.action_id for i in items)

    sender.set_transport(record)
    yield ids
    sender.set_transport(None)


def _actions(integration: str, rows: list[dict[str, Any]]) -> list[int]:
    now = utcnow()
    base = {
        "kind": "note",
        "notification_id": "claims",
        "integration": integration,
        "event_id": None,
        "incident_id": None,
        "payload": {},
        "status": "pending",
        "attempts": 0,
        "claimed_by": None,
        "created_at": now,
        "updated_at": now,
    }
    with session_scope() as session:
        return insert_returning_ids(session, Action, [{**base, **row} for row in rows])


def test_a_live_claim_is_left_alone_and_a_dead_one_taken(stack: Any, sent: list[int]) -> None:
    integration = unique("claims")
    r = redis.Redis.from_url(stack.env["INCMAN_REDIS_URL"])
    r.sadd(liveness.PREFIX + "host:1:live", "run-a")  # a run in progress in a live process
    r.expire(liveness.PREFIX + "host:1:live", 60)
    ended = "host:1:live/run-b"  # a run of the same process, ended
    long_ago = utcnow().replace(year=2020)  # untouched for longer than the liveness TTL
    pending, live, gone, over, retry = _actions(
        integration,
        [
            {},
            {"status": "running", "attempts": 1, "claimed_by": "host:1:live/run-a"},
            {"status": "running", "attempts": 1, "claimed_by": "host:2:gone/run-c"},
            {"status": "running", "attempts": 1, "claimed_by": ended},
            {"attempts": 1},  # waiting for its retry message, not for a first worker
        ],
    )
    waiting = _actions(integration, [{}, {}, {}])
    claimed, more = claim([pending, live, gone, over], integration, room=5)
    assert [a.id for a in claimed] == [pending, gone, over, *waiting[:2]]  # all the room
    assert more
    claimed, more = claim([], integration, room=10)
    assert [a.id for a in claimed] == waiting[2:] and not more
    assert retry not in [a.id for a in claimed]

    # The reconciler sends a running action again once its worker is gone, at once.
    (orphan,) = _actions(
        integration,
        [
            {
                "status": "running",
                "attempts": 1,
                "claimed_by": "host:3:gone/run-d",
                "updated_at": long_ago,
            }
        ],
    )
    reconcile()
    assert orphan in sent and live not in sent


def _remote(prefix: str) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(DebugIncident)
                .where(DebugIncident.fields["device"].as_string().like(prefix + "%"))
            )
            or 0
        )


def _open(event_ids: list[str]) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Action)
                .where(Action.event_id.in_(event_ids), Action.status.in_(("pending", "running")))
            )
            or 0
        )


def test_a_killed_workers_actions_come_back_before_the_visibility_timeout(stack: Any) -> None:
    doomed = stack.add_worker("itsm.debug", concurrency=1, name="doomed")
    prefix = unique("claims-slow")
    body = [{"device": f"{prefix}-{n}", "severity": 5, "summary": "slow"} for n in range(5)]
    answer = stack.client.post("/api/v1/events", body).json()
    event_ids = [r["eventId"] for r in answer["results"]]
    wait_for(lambda: _remote(prefix) == 5, what="the remote tickets to be committed")
    doomed.kill(signal.SIGKILL)  # the whole worker, its parent too: nobody rejects the message
    doomed.popen.wait(10)
    killed = time.monotonic()
    stack.add_worker("itsm.debug,maintenance", concurrency=1, name="heir")
    wait_for(lambda: _open(event_ids) == 0, timeout=240, what="the killed worker's actions")
    took = time.monotonic() - killed
    print(f"a killed worker's actions were done again {took:.0f} s after the kill")
    assert _remote(prefix) == 5  # found by their correlation keys, not made twice
