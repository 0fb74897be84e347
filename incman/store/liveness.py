"""Which worker processes are alive: each one that runs actions keeps a key in Redis fresh.

A process's token (host, pid and a random part, new after a fork) is written on the actions it
claims (`actions.claimed_by`). While the token's key lives, no other process takes those
actions; a killed process's key expires after TTL seconds, and then its running actions are
taken again at once (by the next message naming them, or by the reconciler) instead of after
the broker's visibility timeout. A Redis that cannot be asked counts every claimant as alive:
nothing is ever taken from a process that may still run it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from incman.store.redisconn import get_redis

log = logging.getLogger(__name__)

BEAT = 5.0  # seconds between refreshes of a process's key
TTL = 15  # seconds a key outlives its last refresh
PREFIX = "incman:alive:"

_token: str | None = None
_token_pid: int | None = None
_lock = threading.Lock()


def process_token() -> str:
    """This process's token, its key kept fresh from the first call on."""
    global _token, _token_pid
    if _token is None or _token_pid != os.getpid():
        with _lock:
            if _token is None or _token_pid != os.getpid():
                token = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
                _refresh(token)
                threading.Thread(
                    target=_keep_alive, args=(token,), name="incman-alive", daemon=True
                ).start()
                _token, _token_pid = token, os.getpid()
    return _token


def _refresh(token: str) -> None:
    try:
        get_redis().set(PREFIX + token, "1", ex=TTL)
    except Exception as exc:  # noqa: BLE001 (the next beat tries again)
        log.warning("could not refresh this worker's liveness key: %s", exc)


def _keep_alive(token: str) -> None:
    stop = threading.Event()
    while not stop.wait(BEAT):
        if _token_pid != os.getpid():  # a forked copy of the thread's process: not ours
            return
        _refresh(token)


def dead(tokens: set[str]) -> set[str]:
    """The tokens whose process is gone (no key); none when Redis cannot tell."""
    tokens = {t for t in tokens if t}
    if not tokens:
        return set()
    ordered = sorted(tokens)
    try:
        pipe = get_redis().pipeline(transaction=False)
        for token in ordered:
            pipe.exists(PREFIX + token)
        found = pipe.execute()
    except Exception as exc:  # noqa: BLE001 (unknown: take nothing from anyone)
        log.warning("could not read worker liveness keys: %s", exc)
        return set()
    return {token for token, alive in zip(ordered, found, strict=True) if not alive}
