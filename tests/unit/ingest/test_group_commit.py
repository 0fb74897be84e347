"""Group commit: requests waiting together share one transaction, each gets its own answers,
and one request the database refuses fails alone."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from incman.domain.event import EventIn, normalise_event
from incman.ingest.accept import Accepted, IngestBatch
from incman.ingest.group_commit import GroupCommitter


def event(device: str) -> EventIn:
    return normalise_event({"device": device, "severity": 4, "summary": "s"})


class FakeStore:
    """Records each transaction; the first one waits until released, so others queue up."""

    def __init__(self, refuse: str = "", down: bool = False) -> None:
        self.transactions: list[list[str]] = []
        self.release = threading.Event()
        self.refuse = refuse
        self.down = down

    def __call__(self, events: list[EventIn], source: str) -> IngestBatch:
        if not self.transactions:
            self.release.wait(5)
        devices = [ev.device for ev in events]
        self.transactions.append(devices)
        if self.down:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        if self.refuse in devices:
            raise IntegrityError("INSERT", {}, Exception("refused"))
        accepted = [
            Accepted(f"id-{d}", ev.dedupid, 1, "New", True)
            for d, ev in zip(devices, events, strict=True)
        ]
        return IngestBatch(accepted=accepted)


async def _submit_all(committer: GroupCommitter, store: FakeStore, groups: list[list[str]]):
    first = asyncio.ensure_future(committer.submit([event(d) for d in groups[0]]))
    await asyncio.sleep(0.05)  # the first transaction is running: the others queue behind it
    rest = [asyncio.ensure_future(committer.submit([event(d) for d in g])) for g in groups[1:]]
    await asyncio.sleep(0.05)
    store.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_waiting_requests_share_one_transaction_and_get_their_own_results() -> None:
    store = FakeStore()
    committer = GroupCommitter("test", store=store)
    answers = asyncio.run(_submit_all(committer, store, [["a"], ["b", "c"], ["d"]]))
    assert store.transactions == [["a"], ["b", "c", "d"]]
    assert [[r.event_id for r in answer] for answer in answers] == [
        ["id-a"],
        ["id-b", "id-c"],
        ["id-d"],
    ]


def test_a_request_the_database_refuses_fails_alone() -> None:
    store = FakeStore(refuse="c")
    committer = GroupCommitter("test", store=store)
    answers = asyncio.run(_submit_all(committer, store, [["a"], ["b"], ["c"], ["d"]]))
    # The joined transaction failed, so each waiting request was stored alone.
    assert store.transactions == [["a"], ["b", "c", "d"], ["b"], ["c"], ["d"]]
    assert [r.event_id for r in answers[1]] == ["id-b"]
    assert isinstance(answers[2], IntegrityError)
    assert [r.event_id for r in answers[3]] == ["id-d"]


def test_an_unreachable_database_fails_every_waiting_request_at_once() -> None:
    store = FakeStore(down=True)
    committer = GroupCommitter("test", store=store)
    answers = asyncio.run(_submit_all(committer, store, [["a"], ["b"], ["c"]]))
    assert store.transactions == [["a"], ["b", "c"]]  # not tried again one by one
    assert all(isinstance(answer, OperationalError) for answer in answers)


def test_a_group_stops_growing_at_max_events() -> None:
    store = FakeStore()
    committer = GroupCommitter("test", store=store, max_events=2)
    asyncio.run(_submit_all(committer, store, [["a"], ["b"], ["c"], ["d"], ["e"]]))
    assert store.transactions == [["a"], ["b", "c"], ["d", "e"]]


@pytest.mark.parametrize("threads", [0, 1])
def test_at_least_one_committer(threads: int) -> None:
    assert GroupCommitter("test", threads=threads).threads == 1
