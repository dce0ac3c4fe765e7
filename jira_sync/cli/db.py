"""``jira-sync db``: schema migrations."""

from __future__ import annotations

import click

from jira_sync.cli.common import fail, load_settings


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


def _reachable_database_url() -> str:
    from jira_sync.readiness import reachability_problem
    from jira_sync.store.db import Database

    settings = load_settings(needs_secret_key=False)
    database = Database(settings.database_url)
    try:
        problem = reachability_problem(database)
    finally:
        database.dispose()
    if problem:
        fail(problem)
    return settings.database_url


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION (default: head)."""
    from jira_sync.store import migrate

    migrate.upgrade(_reachable_database_url(), revision)
    click.echo(f"database upgraded to {revision}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert the migrations down to REVISION ('base' empties the schema)."""
    from jira_sync.store import migrate

    migrate.downgrade(_reachable_database_url(), revision)
    click.echo(f"database downgraded to {revision}")
