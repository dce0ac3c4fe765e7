"""Outbound sync: the issue type a link was routed to, and the desired side of comment links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issue_links") as batch:
        batch.add_column(sa.Column("jira_issue_type", sa.String(length=64), nullable=True))
        batch.create_index("ix_issue_links_integration_id_jira_project_key",
                           ["integration_id", "jira_project_key"])
    with op.batch_alter_table("comment_links") as batch:
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("author", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("desired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("comment_links") as batch:
        batch.drop_column("attempted_at")
        batch.drop_column("desired_at")
        batch.drop_column("author")
        batch.drop_column("body")
    with op.batch_alter_table("issue_links") as batch:
        batch.drop_index("ix_issue_links_integration_id_jira_project_key")
        batch.drop_column("jira_issue_type")
