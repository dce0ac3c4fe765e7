"""Rate limits: the shared pace of Jira calls where the broker is not Redis.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("site", sa.String(length=2048), nullable=False),
        sa.Column("next_slot", sa.Double(), nullable=False),
        sa.Column("paused_until", sa.Double(), nullable=False),
        sa.Column("rate_per_second", sa.Double(), nullable=True),
        sa.Column("rate_until", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
