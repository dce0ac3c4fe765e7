"""Alembic environment, shared by `jira-sync db` and the plain `alembic` command."""

from __future__ import annotations

from alembic import context

from config import settings
from jira_sync.store.db import make_engine
from jira_sync.store.models import Base

config = context.config
# `jira-sync db ...` passes the URL; plain `alembic` (alembic.ini) falls back to the settings.
url = config.get_main_option("sqlalchemy.url") or settings.load().database_url
engine = make_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
