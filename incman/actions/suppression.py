"""Notification suppression in Redis: a sliding window per notification and key.

The window is shared by every worker; the hook here refuses an incident creation beyond the
threshold.

Counted where the creation really happens: the worker asks just before it claims a NEW
incident (associations, re-opens and events without a device never count), once the event is
committed, so a rolled-back ingest cannot over-count. Each creation is recorded under its
event id, so a retried or re-delivered create is never counted twice. One Lua script prunes,
counts, records and flags atomically; every key expires by itself after the window."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import update

from incman.domain.suppression import (
    Decision,
    SuppressionConfigError,
    SuppressionRule,
    effective_rule,
    suppression_key,
)
from incman.ingest.selfmon import report_suppression
from incman.integrations.errors import ConfigurationError
from incman.store.catalog import get_catalog
from incman.store.db import session_scope
from incman.store.documents import event_document_from_row
from incman.store.lua import LuaScript
from incman.store.metrics import SUPPRESSED_KEY
from incman.store.models import Event
from incman.store.redisconn import get_redis

if TYPE_CHECKING:
    from incman.actions.job import Job

log = logging.getLogger(__name__)

PREFIX = "incman:supp:"

# KEYS: window (zset member → creation time in ms), last refusal (ms), metrics hash.
# ARGV: now in ms ("" = the Redis server's clock, shared by all workers), window in ms,
# threshold, member (the event id), notification id. Returns {allowed, started}.
_ADMIT_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return {1, 0}
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
local last = tonumber(redis.call('GET', KEYS[2]))
redis.call('SET', KEYS[2], now, 'PX', window)
if last and last > now - window then
  return {0, 0}
end
return {0, 1}
"""
_ADMIT = LuaScript(_ADMIT_LUA)  # EVALSHA, loaded on first use per server


def window_keys(notification_id: str, key: str) -> tuple[str, str]:
    base = f"{PREFIX}{notification_id}:{key}"
    return base + ":win", base + ":refused"


def admit_creation(
    r: redis.Redis,
    notification_id: str,
    key: str,
    member: str,
    rule: SuppressionRule,
    now_ms: int | None = None,
) -> Decision:
    """Count one creation of `member` under `key`, or refuse it (atomic across workers)."""
    if not rule.enabled:
        return Decision(True)
    win, refused = window_keys(notification_id, key)
    allowed, started = _ADMIT(
        r,
        keys=[win, refused, SUPPRESSED_KEY],
        args=[
            "" if now_ms is None else str(now_ms),
            str(rule.threshold_secs * 1000),
            str(rule.threshold_num),
            member,
            notification_id,
        ],
    )
    return Decision(bool(allowed), bool(started))


def rule_for(
    notification_id: str, override: object, device: dict[str, Any] | None = None
) -> SuppressionRule:
    """The rule in force: global, the notification's over it, the device's over both."""
    try:
        return effective_rule(get_catalog().suppression, override, notification_id, device)
    except SuppressionConfigError as exc:
        raise ConfigurationError(str(exc)) from exc


def _mark(event_id: str, suppressed_by: str | None) -> None:
    with session_scope() as session:
        session.execute(
            update(Event).where(Event.id == event_id).values(suppressed_by=suppressed_by)
        )


def creation_suppressed(job: Job, event: Event, creates: bool) -> bool:
    """Whether this creation is held back. `creates`: the association decision opens a new
    incident (associations and re-opens never count). A refused one is marked on the event
    (`suppressedBy`), counted in /metrics, and the first of a flood raises one
    /App/Incman/Suppression event."""
    notif = job.notif
    rule = rule_for(notif.id, notif.suppression, get_catalog().devices.get(event.device))
    if not rule.enabled:
        return False
    key = suppression_key(event_document_from_row(event), rule)
    if key is None:
        return False
    if job.kind == "create" and event.suppressed_by == notif.id:
        return True  # decided before: this is the same create, delivered again
    if not creates:
        return False
    decision = admit_creation(get_redis(), notif.id, key, event.id, rule)
    if decision.allowed:
        if event.suppressed_by == notif.id:
            _mark(event.id, None)  # held back once, created now (a later occurrence)
        return False
    _mark(event.id, notif.id)
    log.info(
        "notification %s: creation for event %s suppressed (key %r, over %s in %ss)",
        notif.id,
        event.id,
        key,
        rule.threshold_num,
        rule.threshold_secs,
    )
    if decision.started:
        report_suppression(notif.id, key, rule.threshold_num, rule.threshold_secs)
    return True
