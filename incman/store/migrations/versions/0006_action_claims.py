"""actions.claimed_by: the worker process running an action; an index of waiting actions

Revision ID: 0006_claims
Revises: 0005_config
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_claims"
down_revision = "0005_config"
branch_labels = None
depends_on = None

WAITING = "status = 'pending' AND attempts = 0"


def upgrade() -> None:
    op.add_column("actions", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.create_index(
        "ix_actions_waiting",
        "actions",
        ["integration", "id"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_actions_waiting", table_name="actions")
    op.drop_column("actions", "claimed_by")
