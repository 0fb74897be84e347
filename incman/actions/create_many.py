"""Many creates of one notification at once, for events whose dedupid has no incident yet.

For them the association rules can only say "create", so the steps of the one-at-a-time path
(incman.actions.create) are taken for all together: the PENDING incidents and their links in
one transaction, the creation locks in one round trip, the remote calls in one request where
the plugin offers `create_many` (else find-then-create per item, on a few threads), and the
outcomes in one durable transaction. Anything else (a dedupid seen before, a link already
there, a lost race, a lock held elsewhere) goes back to the caller for the one-at-a-time path,
which is idempotent from every state this leaves behind."""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from incman.actions.create import build_fields, find_or_create, lock_ttl
from incman.actions.job import Job
from incman.actions.run import Claimed, Outcome, fail, finish
from incman.actions.suppression import creation_suppressed
from incman.domain.lifecycle import ack_event_after_create
from incman.domain.mapping import MappingError
from incman.integrations.base import Integration, RemoteIncident
from incman.integrations.errors import NotSupported, TransientError, public_reason
from incman.logs import ACTIVITY
from incman.settings import get_settings
from incman.store.bulk import insert_rows, update_rows
from incman.store.catalog import NotificationDef
from incman.store.db import is_sqlite, new_session, session_scope
from incman.store.locks import acquire_many, incident_lock, release_many
from incman.store.models import Action, Event, EventIncident, Incident, utcnow
from incman.store.plugins import make_plugin

log = logging.getLogger(__name__)
activity = logging.getLogger(ACTIVITY)
LINES_PER_BATCH = 20  # more incidents opened at once are told in one line


@dataclass
class Item:
    """One create on its way: the action, its event, the fields, the claimed incident."""

    action: Claimed
    event: Event
    fields: dict[str, Any]
    incident_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_key: str = field(default_factory=lambda: uuid.uuid4().hex)


def create_many(actions: list[Claimed], notif: NotificationDef, out: Outcome) -> list[Claimed]:
    """Carry out the creates that open a first incident for their dedupid; the others are
    returned, for the one-at-a-time path."""
    try:
        plugin = make_plugin(notif)
    except Exception:  # noqa: BLE001 (the one-at-a-time path dead-letters each, with why)
        return actions
    try:
        events = _events([a.event_id for a in actions if a.event_id])
        fresh, left = _first_of_their_dedupid(notif, actions, events)
        items = _prepared(notif, plugin, fresh, events, out)
        if items:
            left += _create(notif, plugin, items, out)
        return left
    finally:
        plugin.shutdown()


def _events(event_ids: list[str]) -> dict[str, Event]:
    with new_session() as session:
        return {e.id: e for e in session.scalars(select(Event).where(Event.id.in_(event_ids)))}


def _first_of_their_dedupid(
    notif: NotificationDef, actions: list[Claimed], events: dict[str, Event]
) -> tuple[list[Claimed], list[Claimed]]:
    """The creates whose dedupid has no incident of this notification (none in the batch
    before them either) and whose event is not linked yet; and the rest."""
    known = [e for e in events.values()]
    with new_session() as session:
        seen = set(
            session.scalars(
                select(Incident.dedupid).where(
                    Incident.notification_id == notif.id,
                    Incident.dedupid.in_({e.dedupid for e in known}),
                )
            )
        )
        linked = set(
            session.scalars(
                select(EventIncident.event_id).where(
                    EventIncident.notification_id == notif.id,
                    EventIncident.event_id.in_([e.id for e in known]),
                )
            )
        )
    fresh: list[Claimed] = []
    left: list[Claimed] = []
    for action in actions:
        event = events.get(action.event_id or "")
        if event is None or event.id in linked or event.dedupid in seen:
            left.append(action)
            continue
        seen.add(event.dedupid)
        fresh.append(action)
    return fresh, left


def _prepared(
    notif: NotificationDef,
    plugin: Integration[Any],
    fresh: list[Claimed],
    events: dict[str, Event],
    out: Outcome,
) -> list[Item]:
    """The creates suppression lets through, with their fields (a field mapping that fails
    dead-letters its action, as it would alone)."""
    items: list[Item] = []
    for action in fresh:
        event = events[action.event_id or ""]
        job = Job(action.id, "create", notif, plugin, event.id, None, action.payload)
        if creation_suppressed(job, event, True):
            finish(action.id, "suppressed")
            out.statuses[action.id] = "suppressed"
            continue
        try:
            items.append(Item(action, event, build_fields(job, event)))
        except MappingError as exc:
            fail(action, exc)
            out.statuses[action.id] = "dead"
    return items


def _claim(notif: NotificationDef, items: list[Item]) -> None:
    """The PENDING incidents and the events' links, in one durable transaction (the
    partial unique index refuses a second open incident of a dedupid: IntegrityError)."""
    now = utcnow()
    incidents = [
        {
            "id": i.incident_id,
            "notification_id": notif.id,
            "integration": notif.integration,
            "dedupid": i.event.dedupid,
            "correlation_key": i.correlation_key,
            "state": "PENDING",
            "origin_event_id": i.event.id,
            "manual": False,
            "detached": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in items
    ]
    links = [
        {
            "event_id": i.event.id,
            "notification_id": notif.id,
            "incident_id": i.incident_id,
            "associated_at": now,
        }
        for i in items
    ]
    with session_scope() as session:
        insert_rows(session, Incident, incidents)
        insert_rows(session, EventIncident, links)


def _create(
    notif: NotificationDef, plugin: Integration[Any], items: list[Item], out: Outcome
) -> list[Claimed]:
    """Claim, lock, create remotely, record; the actions left for the one-at-a-time path."""
    try:
        _claim(notif, items)
    except IntegrityError as exc:  # another worker claimed one of these dedupids first
        log.info("a batch claim of %d incidents lost a race (%s): one at a time", len(items), exc)
        return [i.action for i in items]
    threads = call_threads(plugin.parallel_calls, len(items))
    ttl = lock_ttl(plugin) * math.ceil(len(items) / threads)
    keys = [incident_lock(i.incident_id) for i in items]
    token, taken = acquire_many(keys, ttl)
    mine = [i for i, ok in zip(items, taken, strict=True) if ok]
    try:
        answers = _open_remote(notif, plugin, mine, threads)
        _record(notif, mine, answers, out)
    finally:
        release_many([incident_lock(i.incident_id) for i in mine], token)
    return [i.action for i, ok in zip(items, taken, strict=True) if not ok]


def call_threads(cap: int, count: int) -> int:
    """Threads for `count` actions' remote calls: INCMAN_ACTION_THREADS, or the plugin's own
    cap (`parallel_calls`) when it has one; one on SQLite."""
    threads = get_settings().action_threads if cap <= 0 else min(cap, get_settings().action_threads)
    return 1 if is_sqlite() else max(1, min(count, threads))


def _open_remote(
    notif: NotificationDef, plugin: Integration[Any], items: list[Item], threads: int
) -> list[RemoteIncident | Exception]:
    """Each item's remote incident (found by its key, else created), or its error."""
    if not items:
        return []
    try:
        return list(plugin.create_many([(i.fields, i.correlation_key) for i in items]))
    except NotSupported:
        pass
    except Exception as exc:  # noqa: BLE001 (the one call failed: so did each item)
        return [exc] * len(items)
    local = threading.local()
    made: list[Integration[Any]] = []

    def one(item: Item) -> RemoteIncident | Exception:
        own = plugin if threads == 1 else getattr(local, "plugin", None)
        if own is None:
            own = local.plugin = make_plugin(notif)
            made.append(own)
        job = Job(item.action.id, "create", notif, own, item.event.id, None, {})
        try:
            return find_or_create(job, item.fields, item.correlation_key)
        except Exception as exc:  # noqa: BLE001 (recorded per item below)
            return exc

    try:
        if threads == 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(threads, thread_name_prefix="incman-create") as pool:
            context = contextvars.copy_context()  # the run's: its token goes with the calls
            return list(pool.map(lambda item: context.copy().run(one, item), items))
    finally:
        for own in made:
            own.shutdown()


def _record(
    notif: NotificationDef,
    items: list[Item],
    answers: list[RemoteIncident | Exception],
    out: Outcome,
) -> None:
    """What the remote answered, in one durable transaction; failures one by one."""
    opened = [(i, a) for i, a in zip(items, answers, strict=True) if isinstance(a, RemoteIncident)]
    _store_opened(notif, opened)
    for item, _ in opened:
        out.statuses[item.action.id] = "done"
    _tell(notif, opened)
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, TransientError):
            finish(item.action.id, "pending", str(answer), public_reason(answer))
            out.retry[item.action.id] = answer
        elif isinstance(answer, Exception):
            fail(item.action, answer)
            out.statuses[item.action.id] = "dead"


def _store_opened(notif: NotificationDef, opened: list[tuple[Item, RemoteIncident]]) -> None:
    if not opened:
        return
    now = utcnow()
    rows = [
        {
            "id": item.incident_id,
            "remote_id": ref.remote_id,
            "number": ref.number,
            "url": ref.url,
            "state": ref.state if ref.state in ("OPEN", "ASSIGNED") else "OPEN",
            "remote_state": ref.remote_state,
            "updated_at": now,
        }
        for item, ref in opened
    ]
    with session_scope() as session:
        update_rows(session, Incident, "id", rows)
        if ack_event_after_create(notif.options):
            session.execute(
                update(Event)
                .where(Event.id.in_([i.event.id for i, _ in opened]), Event.status == "New")
                .values(status="Acknowledged", acknowledged_by="incman", acknowledgement_time=now)
            )
        session.execute(
            update(Action)
            .where(Action.id.in_([i.action.id for i, _ in opened]))
            .values(status="done", last_error=None, error_summary=None, updated_at=now)
        )


def _tell(notif: NotificationDef, opened: list[tuple[Item, RemoteIncident]]) -> None:
    if len(opened) > LINES_PER_BATCH:
        activity.info("%d incidents opened (%s)", len(opened), notif.id)
        return
    for item, ref in opened:
        activity.info("incident %s opened (%s) for event %s", ref.number, notif.id, item.event.id)
