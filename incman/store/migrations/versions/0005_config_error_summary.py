"""actions.error_summary: the failure in words without the remote's text

Revision ID: 0005_config
Revises: 0004_ca
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_config"
down_revision = "0004_ca"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("actions", sa.Column("error_summary", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("actions", "error_summary")
