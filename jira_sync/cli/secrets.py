"""``jira-sync secrets rotate``: re-seal every stored secret under the first key, so the
others can be removed from ``JIRA_SYNC_SECRET_KEY``."""

from __future__ import annotations

import click

from jira_sync.cli.common import fail, load_settings


@click.group()
def secrets() -> None:
    """The credentials stored encrypted in the database."""


@secrets.command("rotate")
def rotate() -> None:
    """Re-seal every integration's secrets (deleted ones too) under the first key of
    JIRA_SYNC_SECRET_KEY; exit 1 when some cannot be opened with any key given."""
    from jira_sync.admin.secrets import reseal, sealed
    from jira_sync.crypto import SecretBox, SecretsUnreadable
    from jira_sync.readiness import database_problem
    from jira_sync.store.db import Database

    settings = load_settings(needs_secret_key=True)
    box = SecretBox(settings.secret_keys)
    database = Database(settings.database_url)
    try:
        problem = database_problem(database)
        if problem:
            fail(problem)
        with database.unit_of_work() as session:
            rows = sealed(session)
        done, unreadable = 0, []
        with click.progressbar(rows, label="Re-sealing secrets", show_pos=True,
                               file=click.get_text_stream("stderr")) as bar:
            for integration_id, tenant in bar:
                try:
                    with database.unit_of_work() as session:
                        done += reseal(session, integration_id, box)
                except SecretsUnreadable:
                    unreadable.append(tenant)
    finally:
        database.dispose()
    click.echo(f"re-sealed the secrets of {done} of {len(rows)} integrations under the first "
               "key of JIRA_SYNC_SECRET_KEY")
    for tenant in unreadable:
        click.echo(f"jira-sync: tenant {tenant!r}: its secrets open with no key of "
                   "JIRA_SYNC_SECRET_KEY; add the key they were sealed with, or set its "
                   "credentials again", err=True)
    if unreadable:
        raise SystemExit(1)
