"""Coalesced wake-ups: new actions of an integration share the message already waiting.

While a message for an integration's new actions waits for a worker, new actions of that
integration send none of their own; the worker that takes it claims them too
(incman.actions.claims takes actions waiting for their first worker). A busy integration then
drains in batches instead of one message per commit.

The flag is a Redis key set when such a message is sent and deleted when a worker starts on
it; it expires by itself (a lost message delays actions by at most its TTL, until the next
commit sends again, or the reconciler). Without Redis every send goes out."""

from __future__ import annotations

import logging

from incman.store.redisconn import get_redis

log = logging.getLogger(__name__)

PREFIX = "incman:wake:"
TTL_MS = 2000


def wake_needed(integration: str) -> bool:
    """True when no wake-up for `integration` waits (this one should be sent), and mark it."""
    try:
        return bool(get_redis().set(PREFIX + integration, "1", nx=True, px=TTL_MS))
    except Exception as exc:  # noqa: BLE001 (send: a message too many costs little)
        log.debug("wake flag of %s unknown: %s", integration, exc)
        return True


def wake_taken(integration: str) -> None:
    """A worker starts on `integration`'s waiting actions: later ones need a message again."""
    try:
        get_redis().delete(PREFIX + integration)
    except Exception as exc:  # noqa: BLE001 (the flag expires by itself)
        log.debug("could not clear the wake flag of %s: %s", integration, exc)
