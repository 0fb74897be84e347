"""Which runs of worker processes are alive: a process keeps a Redis set of its live runs fresh.

A run is one task carrying out actions. Its token, `<host>:<pid>:<random>/<run>`, is written on
the actions it claims (`actions.claimed_by`) and on the creation locks it takes. The process's
key (`incman:alive:<host>:<pid>:<random>`) is a set of its runs in progress, its expiry
refreshed every BEAT seconds by a thread of the process. A claim stays with its run while
both live: a run that ended (its task returned or failed, whatever it left behind) or whose
process died (the key expired TTL seconds after its last refresh) lets its actions and locks
be taken again at once, instead of after the broker's visibility timeout. A Redis that cannot
be asked counts every claimant as alive: nothing is taken from a run that may still go on."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from incman.store.redisconn import get_redis

log = logging.getLogger(__name__)

BEAT = 5.0  # seconds between refreshes of a process's key
TTL = 15  # seconds a key outlives its last refresh
PREFIX = "incman:alive:"

_process: str | None = None
_process_pid: int | None = None
_lock = threading.Lock()
_current: ContextVar[str | None] = ContextVar("incman_run", default=None)
_runs: set[str] = set()  # this process's runs in progress (the heartbeat writes them again)


def _process_token() -> str:
    """This process's part of a token (new after a fork), its key kept fresh from now on."""
    global _process, _process_pid
    if _process is None or _process_pid != os.getpid():
        with _lock:
            if _process is None or _process_pid != os.getpid():
                token = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
                threading.Thread(
                    target=_keep_alive, args=(token,), name="incman-alive", daemon=True
                ).start()
                _process, _process_pid = token, os.getpid()
    return _process


def _keep_alive(token: str) -> None:
    stop = threading.Event()
    while not stop.wait(BEAT):
        if _process_pid != os.getpid():  # a forked copy of the thread's process: not ours
            return
        runs = list(_runs)
        if not runs:  # idle: the key may lapse (no claim of this process is alive anyway)
            continue
        try:
            pipe = get_redis().pipeline(transaction=True)
            pipe.sadd(PREFIX + token, *runs)  # again: a Redis that lost them learns them back
            pipe.expire(PREFIX + token, TTL)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 (the next beat tries again)
            log.warning("could not refresh this worker's liveness key: %s", exc)


@contextmanager
def run() -> Iterator[str]:
    """A run of this process: its token is the claimant of what it claims (threads started
    inside it carry the token they are given)."""
    process = _process_token()
    run_id = uuid.uuid4().hex[:8]
    token = f"{process}/{run_id}"
    _runs.add(run_id)
    _mark(process, run_id, alive=True)
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)
        _runs.discard(run_id)
        _mark(process, run_id, alive=False)


def _mark(process: str, run_id: str, alive: bool) -> None:
    try:
        pipe = get_redis().pipeline(transaction=True)
        if alive:
            pipe.sadd(PREFIX + process, run_id)
        else:
            pipe.srem(PREFIX + process, run_id)
        pipe.expire(PREFIX + process, TTL)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 (unknown runs count as alive)
        log.warning("could not record this worker's run: %s", exc)


def current_token() -> str:
    """The token of the run in progress; outside one, a run of its own for the caller."""
    token = _current.get()
    if token is None:
        token = f"{_process_token()}/-"  # never a member: dead as soon as it is asked
    return token


def dead(tokens: set[str | None]) -> set[str]:
    """The claimant tokens whose run ended or whose process is gone; none when Redis cannot
    tell."""
    named = sorted(t for t in tokens if t and "/" in t)
    if not named:
        return set()
    try:
        pipe = get_redis().pipeline(transaction=False)
        for token in named:
            process, run_id = token.rsplit("/", 1)
            pipe.sismember(PREFIX + process, run_id)
        found = pipe.execute()
    except Exception as exc:  # noqa: BLE001 (unknown: take nothing from anyone)
        log.warning("could not read worker liveness keys: %s", exc)
        return set()
    return {token for token, alive in zip(named, found, strict=True) if not alive}
