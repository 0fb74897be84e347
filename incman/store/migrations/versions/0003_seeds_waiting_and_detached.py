"""seeds: itsm_requests.waiting_until for beat's wake-up; incidents.detached

Revision ID: 0003_seeds
Revises: 0002_itsm_requests
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0003_seeds"
down_revision = "0002_itsm_requests"
branch_labels = None
depends_on = None

_OLD_WHERE = "state IN ('PENDING', 'OPEN', 'ASSIGNED')"
_NEW_WHERE = "state IN ('PENDING', 'OPEN', 'ASSIGNED') AND NOT detached"


def _backfill_waiting() -> None:
    """Requests already waiting_for get their waiting_until column from the record."""
    conn = op.get_bind()
    table = sa.table(
        "itsm_requests",
        sa.column("id", sa.BigInteger()),
        sa.column("status", sa.String()),
        sa.column("record", sa.JSON()),
        sa.column("waiting_until", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(
        sa.select(table.c.id, table.c.record).where(table.c.status == "waiting_for")
    ).all()
    for ident, record in rows:
        until = (record or {}).get("waiting_until")
        if not until:
            continue
        stamp = datetime.fromisoformat(str(until).replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        conn.execute(table.update().where(table.c.id == ident).values(waiting_until=stamp))


def upgrade() -> None:
    with op.batch_alter_table("itsm_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_itsm_requests_waiting", ["status", "waiting_until"])
    _backfill_waiting()
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("detached", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
        batch_op.drop_index(
            "uq_incidents_open_dedupid",
            postgresql_where=sa.text(_OLD_WHERE),
            sqlite_where=sa.text(_OLD_WHERE),
        )
        batch_op.create_index(
            "uq_incidents_open_dedupid",
            ["notification_id", "dedupid"],
            unique=True,
            postgresql_where=sa.text(_NEW_WHERE),
            sqlite_where=sa.text(_NEW_WHERE),
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_incidents_open_dedupid",
            postgresql_where=sa.text(_NEW_WHERE),
            sqlite_where=sa.text(_NEW_WHERE),
        )
        batch_op.create_index(
            "uq_incidents_open_dedupid",
            ["notification_id", "dedupid"],
            unique=True,
            postgresql_where=sa.text(_OLD_WHERE),
            sqlite_where=sa.text(_OLD_WHERE),
        )
        batch_op.drop_column("detached")
    with op.batch_alter_table("itsm_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_itsm_requests_waiting")
        batch_op.drop_column("waiting_until")
