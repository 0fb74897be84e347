"""The tables, on PostgreSQL in production and SQLite embedded.

Events, occurrences, incidents, links, notes, triggers, notifications, the action outbox and
the audit trail."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

OPEN_EVENT_STATUSES = ("New", "Acknowledged", "Suppressed")
OPEN_INCIDENT_STATES = ("PENDING", "OPEN", "ASSIGNED")

_OPEN_EVENTS_SQL = "status IN ('New', 'Acknowledged', 'Suppressed')"
_OPEN_INCIDENTS_SQL = "state IN ('PENDING', 'OPEN', 'ASSIGNED') AND NOT detached"
_WAITING_ACTIONS_SQL = "status = 'pending' AND attempts = 0"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupid: Mapped[str] = mapped_column(String(512))
    device: Mapped[str] = mapped_column(String(255), default="")
    component: Mapped[str] = mapped_column(String(255), default="")
    event_class: Mapped[str] = mapped_column(String(255), default="")
    event_key: Mapped[str] = mapped_column(String(255), default="")
    event_class_key: Mapped[str] = mapped_column(String(255), default="")
    severity: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="New")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_time: Mapped[datetime] = mapped_column()
    last_time: Mapped[datetime] = mapped_column()
    agent: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    acknowledgement_time: Mapped[datetime | None] = mapped_column(nullable=True)
    clear_time: Mapped[datetime | None] = mapped_column(nullable=True)
    suppressed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One open event per dedupid: repeats fold into it (an upsert on this index).
        Index(
            "uq_events_open_dedupid",
            "dedupid",
            unique=True,
            postgresql_where=text(_OPEN_EVENTS_SQL),
            sqlite_where=text(_OPEN_EVENTS_SQL),
        ),
        Index("ix_events_dedupid", "dedupid"),
        Index("ix_events_clear_match", "device", "component", "event_class", "event_key"),
        Index("ix_events_status_last", "status", "last_time"),
    )


class Occurrence(Base):
    """One arrival of an event: `<eventId>:<n>`."""

    __tablename__ = "occurrences"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    severity: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text, default="")


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(128))
    integration: Mapped[str] = mapped_column(String(64))
    dedupid: Mapped[str] = mapped_column(String(512))
    correlation_key: Mapped[str] = mapped_column(String(64), unique=True)
    number: Mapped[str | None] = mapped_column(String(128), nullable=True)
    remote_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    remote_state: Mapped[str | None] = mapped_column(String(64), nullable=True)
    origin_event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every event of its dedupid aged out: new events with that dedupid no longer join it
    # (the seed associates only with events not yet aged out); it stays open and polled.
    detached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    polled_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        # One open incident per notification and dedupid (PENDING counts as open), detached
        # ones aside.
        Index(
            "uq_incidents_open_dedupid",
            "notification_id",
            "dedupid",
            unique=True,
            postgresql_where=text(_OPEN_INCIDENTS_SQL),
            sqlite_where=text(_OPEN_INCIDENTS_SQL),
        ),
        Index("ix_incidents_notification_state", "notification_id", "state"),
        Index("ix_incidents_number", "number"),
    )


class EventIncident(Base):
    """Which incident an event is linked to, per notification."""

    __tablename__ = "event_incidents"

    event_id: Mapped[str] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    notification_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    associated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    occurrence_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    author: Mapped[str] = mapped_column(String(255), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Trigger(Base):
    __tablename__ = "triggers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    when: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    integration: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Action(Base):
    """The outbox: one row per thing a worker must do on a remote system."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    notification_id: Mapped[str] = mapped_column(String(128))
    integration: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    incident_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # the remote's words too
    # The same failure in words without the remote's text (incman.integrations.errors.
    # public_reason): what failure events and anyone below manager are shown.
    error_summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The worker process running it (incman.store.liveness): while that process lives, no
    # other one takes the action; once it is gone, its running actions are taken again.
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (
        Index("ix_actions_status_updated", "status", "updated_at"),
        # The actions waiting for their first worker, by integration (batches claim them).
        Index(
            "ix_actions_waiting",
            "integration",
            "id",
            postgresql_where=text(_WAITING_ACTIONS_SQL),
            sqlite_where=text(_WAITING_ACTIONS_SQL),
        ),
    )


class AuditEntry(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DebugIncident(Base):
    """The Debug integration's own "remote" records: real, countable incidents."""

    __tablename__ = "debug_incidents"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    correlation_key: Mapped[str] = mapped_column(String(64), index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
