"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:15:15.665238
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("notification_id", sa.String(length=128), nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index("ix_actions_status_updated", ["status", "updated_at"], unique=False)

    op.create_table(
        "audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "debug_incidents",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("correlation_key", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=255), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("debug_incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_debug_incidents_correlation_key"), ["correlation_key"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dedupid", sa.String(length=512), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("component", sa.String(length=255), nullable=False),
        sa.Column("event_class", sa.String(length=255), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("event_class_key", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column("acknowledgement_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clear_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suppressed_by", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_clear_match",
            ["device", "component", "event_class", "event_key"],
            unique=False,
        )
        batch_op.create_index("ix_events_dedupid", ["dedupid"], unique=False)
        batch_op.create_index("ix_events_status_last", ["status", "last_time"], unique=False)
        batch_op.create_index(
            "uq_events_open_dedupid",
            ["dedupid"],
            unique=True,
            postgresql_where=sa.text("status IN ('New', 'Acknowledged', 'Suppressed')"),
            sqlite_where=sa.text("status IN ('New', 'Acknowledged', 'Suppressed')"),
        )

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=128), nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("dedupid", sa.String(length=512), nullable=False),
        sa.Column("correlation_key", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=128), nullable=True),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("remote_state", sa.String(length=64), nullable=True),
        sa.Column("origin_event_id", sa.String(length=36), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("correlation_key"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_notification_state", ["notification_id", "state"], unique=False
        )
        batch_op.create_index("ix_incidents_number", ["number"], unique=False)
        batch_op.create_index(
            "uq_incidents_open_dedupid",
            ["notification_id", "dedupid"],
            unique=True,
            postgresql_where=sa.text("state IN ('PENDING', 'OPEN', 'ASSIGNED')"),
            sqlite_where=sa.text("state IN ('PENDING', 'OPEN', 'ASSIGNED')"),
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("when", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "event_incidents",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=128), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("associated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", "notification_id"),
    )
    with op.batch_alter_table("event_incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_incidents_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "notes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("occurrence_id", sa.String(length=48), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_event_id"), ["event_id"], unique=False)

    op.create_table(
        "occurrences",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_occurrences_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("occurrences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_occurrences_event_id"))

    op.drop_table("occurrences")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notes_event_id"))

    op.drop_table("notes")
    with op.batch_alter_table("event_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_incidents_incident_id"))

    op.drop_table("event_incidents")
    op.drop_table("triggers")
    op.drop_table("notifications")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_incidents_open_dedupid",
            postgresql_where=sa.text("state IN ('PENDING', 'OPEN', 'ASSIGNED')"),
            sqlite_where=sa.text("state IN ('PENDING', 'OPEN', 'ASSIGNED')"),
        )
        batch_op.drop_index("ix_incidents_number")
        batch_op.drop_index("ix_incidents_notification_state")

    op.drop_table("incidents")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_events_open_dedupid",
            postgresql_where=sa.text("status IN ('New', 'Acknowledged', 'Suppressed')"),
            sqlite_where=sa.text("status IN ('New', 'Acknowledged', 'Suppressed')"),
        )
        batch_op.drop_index("ix_events_status_last")
        batch_op.drop_index("ix_events_dedupid")
        batch_op.drop_index("ix_events_clear_match")

    op.drop_table("events")
    with op.batch_alter_table("debug_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_debug_incidents_correlation_key"))

    op.drop_table("debug_incidents")
    op.drop_table("audit")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_status_updated")

    op.drop_table("actions")
