"""ca: plugin_tickets, the key → ticket map of integrations without a correlation field

Revision ID: 0003_ca
Revises: 0002_itsm_requests
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_ca"
down_revision = "0003_seeds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_tickets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("correlation_key", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("number", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration", "correlation_key", name="uq_plugin_tickets_key"),
    )


def downgrade() -> None:
    op.drop_table("plugin_tickets")
