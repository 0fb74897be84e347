"""Group commit: concurrent requests' events stored in one transaction.

Each API process runs a few committer threads. A request hands its events in and waits; a
free committer takes every submission that queued up meanwhile (one or many, up to
`max_events`), stores them together (incman.ingest.producer.store: one transaction, one
statement per table) and only after the commit hands each request its own results. A quiet
API commits each request at once; a busy one commits many per WAL flush, without a timer.

If the joined transaction fails for a reason other than an unreachable database, every
submission is stored again on its own, so one bad request never fails its neighbours."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from incman.domain.event import EventIn
from incman.ingest.accept import Accepted, IngestBatch
from incman.ingest.producer import store

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)


@dataclass
class _Submission:
    events: list[EventIn]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Accepted]]


def _hand_back(sub: _Submission, result: list[Accepted] | None, exc: BaseException | None) -> None:
    def settle() -> None:
        if sub.future.done():  # the request went away meanwhile
            return
        if exc is not None:
            sub.future.set_exception(exc)
        else:
            sub.future.set_result(result or [])

    sub.loop.call_soon_threadsafe(settle)


class GroupCommitter:
    """Committer threads shared by the requests of one process (started on first use)."""

    def __init__(
        self,
        source: str,
        threads: int = 1,
        max_events: int = 2000,
        store: Callable[[list[EventIn], str], IngestBatch] = store,
    ) -> None:
        """`threads`: one is best (a commit takes whatever queued up while the previous one
        ran, so a single committer builds the largest groups); `store`: one transaction."""
        self.source = source
        self._store = store
        self.threads = max(1, threads)
        self.max_events = max(1, max_events)
        self._queue: queue.SimpleQueue[_Submission] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    async def submit(self, events: list[EventIn]) -> list[Accepted]:
        """Store `events` (joined with whatever else is waiting); their results in order,
        once committed. Raises what storing them alone would raise."""
        self._start()
        loop = asyncio.get_running_loop()
        sub = _Submission(events, loop, loop.create_future())
        self._queue.put(sub)
        return await sub.future

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            for n in range(self.threads):
                name = f"incman-commit-{self.source}-{n}"
                threading.Thread(target=self._run, name=name, daemon=True).start()
            self._started = True

    def _take(self) -> list[_Submission]:
        """The next submission and every one queued behind it, up to max_events."""
        group = [self._queue.get()]
        size = len(group[0].events)
        while size < self.max_events:
            try:
                sub = self._queue.get_nowait()
            except queue.Empty:
                break
            group.append(sub)
            size += len(sub.events)
        return group

    def _run(self) -> None:
        while True:
            group = self._take()
            try:
                self._commit(group)
            except BaseException as exc:  # never let a committer thread die
                log.exception("group commit failed")
                for sub in group:
                    _hand_back(sub, None, exc)

    def _commit(self, group: list[_Submission]) -> None:
        if len(group) > 1:
            try:
                events = [ev for sub in group for ev in sub.events]
                accepted = self._store(events, self.source).accepted
            except DATABASE_DOWN as exc:
                for sub in group:
                    _hand_back(sub, None, exc)
                return
            except SQLAlchemyError as exc:
                log.info("a joined commit of %d requests failed (%s): each alone", len(group), exc)
            else:
                start = 0
                for sub in group:
                    _hand_back(sub, accepted[start : start + len(sub.events)], None)
                    start += len(sub.events)
                return
        for sub in group:
            try:
                _hand_back(sub, self._store(sub.events, self.source).accepted, None)
            except Exception as exc:  # noqa: BLE001 (the request answers it: 503, 500)
                _hand_back(sub, None, exc)


_committers: dict[str, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer(source: str, **options: Any) -> GroupCommitter:
    """This process's committer for `source` (one set of threads per source)."""
    with _committers_lock:
        found = _committers.get(source)
        if found is None:
            found = _committers[source] = GroupCommitter(source, **options)
        return found
