"""itsm requests: the ITSM Events API's request records

Revision ID: 0002_itsm_requests
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_itsm_requests"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "itsm_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("service_instance", sa.String(length=255), nullable=False),
        sa.Column("ci_key", sa.String(length=600), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_for", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("itsm_requests", schema=None) as batch_op:
        batch_op.create_index("ix_itsm_requests_event_id", ["event_id"], unique=False)
        batch_op.create_index("ix_itsm_requests_match", ["source", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("itsm_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_itsm_requests_match")
        batch_op.drop_index("ix_itsm_requests_event_id")
    op.drop_table("itsm_requests")
