"""``jira-sync db``: schema migrations."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from jira_sync.cli.common import fail, load_settings


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


def _reachable_database_url() -> str:
    from jira_sync.store.db import Database

    settings = load_settings(needs_secret_key=False)
    database = Database(settings.database_url)
    try:
        database.ping()
    except SQLAlchemyError as exc:
        fail(f"database unreachable: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}")
    finally:
        database.dispose()
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
