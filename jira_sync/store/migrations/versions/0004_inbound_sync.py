"""Inbound sync: the link's view of Jira, its own schedule, pending writes, webhook settings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("ip_allowlist", JSON, nullable=True))
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("issue_links") as batch:
        batch.drop_column("jira_watermark")
        batch.add_column(sa.Column("jira_view", JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("inbound_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("inbound_attempts", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("inbound_first_failure_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("inbound_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("inbound_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("jira_checked_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.create_index("ix_issue_links_inbound_due_at", ["inbound_due_at"])
    with op.batch_alter_table("issue_links") as batch:
        # The defaults only filled existing rows; the application always sets both.
        batch.alter_column("jira_view", server_default=None)
        batch.alter_column("inbound_attempts", server_default=None)
    op.create_table(
        "pending_writes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("link_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["issue_links.id"],
                                name=op.f("fk_pending_writes_link_id_issue_links"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_writes")),
    )
    op.create_index("ix_pending_writes_link_id_side_field", "pending_writes",
                    ["link_id", "side", "field"])
    op.create_index(op.f("ix_pending_writes_expires_at"), "pending_writes", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_writes_expires_at"), table_name="pending_writes")
    op.drop_index("ix_pending_writes_link_id_side_field", table_name="pending_writes")
    op.drop_table("pending_writes")
    with op.batch_alter_table("issue_links") as batch:
        batch.drop_index("ix_issue_links_inbound_due_at")
        batch.drop_column("jira_checked_at")
        batch.drop_column("inbound_reason")
        batch.drop_column("inbound_state")
        batch.drop_column("inbound_first_failure_at")
        batch.drop_column("inbound_attempts")
        batch.drop_column("inbound_due_at")
        batch.drop_column("jira_view")
        batch.add_column(sa.Column("jira_watermark", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("reconciled_at")
        batch.drop_column("ip_allowlist")
