"""Operations: soft delete, fields the environment owns, integration-wide pauses, severed
links beside live ones, closing dead letters, and background jobs (bulk replay).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LIVE = sa.text("state <> 'severed'")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("env_fields", JSON, nullable=True))
        batch.add_column(sa.Column("jira_paused_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("jira_paused_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("qalita_paused_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("qalita_paused_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("issue_links") as batch:
        batch.drop_constraint("uq_issue_links_tenant_qalita_issue_id_integration_id",
                              type_="unique")
        batch.drop_constraint("uq_issue_links_integration_id_jira_issue_id", type_="unique")
    # A severed link keeps its row and history; the live link made after it must not clash.
    op.create_index("uq_issue_links_live_qalita_issue", "issue_links",
                    ["tenant", "qalita_issue_id", "integration_id"], unique=True,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index("uq_issue_links_live_jira_issue", "issue_links",
                    ["integration_id", "jira_issue_id"], unique=True,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_dead_letters_link_id", ["link_id"])
        batch.create_index("ix_dead_letters_inbox_id", ["inbox_id"])
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_index("ix_dead_letters_inbox_id")
        batch.drop_index("ix_dead_letters_link_id")
        batch.drop_column("resolved_at")
    op.drop_index("uq_issue_links_live_jira_issue", table_name="issue_links")
    op.drop_index("uq_issue_links_live_qalita_issue", table_name="issue_links")
    with op.batch_alter_table("issue_links") as batch:
        batch.create_unique_constraint("uq_issue_links_integration_id_jira_issue_id",
                                       ["integration_id", "jira_issue_id"])
        batch.create_unique_constraint("uq_issue_links_tenant_qalita_issue_id_integration_id",
                                       ["tenant", "qalita_issue_id", "integration_id"])
    with op.batch_alter_table("integrations") as batch:
        for column in ("qalita_paused_reason", "qalita_paused_at", "jira_paused_reason",
                       "jira_paused_at", "env_fields", "deleted_at"):
            batch.drop_column(column)
