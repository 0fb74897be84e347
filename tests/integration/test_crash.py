"""A worker killed with SIGKILL in the middle of a create: after a new worker starts,
exactly one incident exists (at-least-once delivery, exactly-once effect). The message comes
back from the broker after the visibility timeout, or, should the kill have lost it, from the
reconciler that beat runs: the stack runs both."""

from __future__ import annotations

import signal
from typing import Any

from helpers import unique, wait_for
from sqlalchemy import func, select

from incman.store.db import session_scope
from incman.store.models import DebugIncident, Incident

CONFIG: dict[str, Any] = {
    "triggers": [{"id": "all", "when": {"severity": {"_gte": 1}}}],
    # The remote commits the ticket, then takes 4 s to answer: the kill lands in between.
    "notifications": [
        {"id": "slow", "integration": "debug", "triggers": ["all"], "config": {"answer_delay": 4}}
    ],
}


def remote_count(device: str) -> int:
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(DebugIncident)
                .where(DebugIncident.fields["device"].as_string() == device)
            )
            or 0
        )


def test_sigkill_mid_create_leaves_exactly_one_incident(make_stack: Any) -> None:
    # A started action is stale for the reconciler after the visibility timeout (10 s here).
    stack = make_stack(CONFIG, workers=0, beat=True, extra_env={"INCMAN_RECONCILE_AFTER": "5"})
    first = stack.add_worker("itsm.debug", concurrency=1, name="doomed")
    device = unique("crash")
    event_id = stack.client.post(
        "/api/v1/events", {"device": device, "severity": 5, "summary": "crash test"}
    ).json()["eventId"]
    wait_for(lambda: remote_count(device) == 1, what="the remote ticket to be committed")
    first.kill(signal.SIGKILL)  # the worker dies before the answer arrives
    first.popen.wait(10)
    with session_scope() as session:
        pending = session.scalars(
            select(Incident.state).where(Incident.origin_event_id == event_id)
        ).one()
    assert pending == "PENDING"

    stack.add_worker("itsm.debug,maintenance", concurrency=1, name="heir")

    def settled() -> dict[str, Any] | None:
        ev = stack.client.get(f"/api/v1/events/{event_id}").json()
        return ev if ev.get("incident") else None

    ev = wait_for(settled, timeout=90, what="the re-delivered create to finish")
    assert remote_count(device) == 1
    with session_scope() as session:
        incidents = session.scalars(
            select(Incident).where(Incident.origin_event_id == event_id)
        ).all()
        assert len(incidents) == 1
        assert incidents[0].number == ev["incident"]
