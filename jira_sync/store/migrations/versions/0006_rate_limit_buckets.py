"""The rate limiter's state per bucket and pause (site, endpoint and method; issue; quota)
instead of one row per site. The state is ephemeral, so the old rows are simply dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("rate_limits")
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.create_table(
        "rate_limits",
        sa.Column("site", sa.String(length=2048), nullable=False),
        sa.Column("next_slot", sa.Double(), nullable=False),
        sa.Column("paused_until", sa.Double(), nullable=False),
        sa.Column("rate_per_second", sa.Double(), nullable=True),
        sa.Column("rate_until", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_rate_limits")),
    )
