"""``jira-sync integration test``: is this integration able to create issues in Jira?"""

from __future__ import annotations

import click
from sqlalchemy import select

from jira_sync.cli.common import fail, no_integration, tenant_database


@click.group()
def integration() -> None:
    """Inspect the configured Jira integration."""


@integration.command("test")
@click.option("--tenant", default=None, help="Default: JIRA_SYNC_TENANT, else 'default'.")
def test_connection(tenant: str | None) -> None:
    """Check credentials, project and issue type against Jira and print what is wrong."""
    from jira_sync.crypto import SecretBox
    from jira_sync.jira.connect import UnsupportedAuth, check, client_for
    from jira_sync.store.models import Integration

    with tenant_database(tenant) as (settings, database, tenant), \
            database.unit_of_work() as session:
        found = session.scalar(select(Integration).where(Integration.tenant == tenant))
    if found is None:
        no_integration(tenant)
    try:
        client = client_for(found, SecretBox(settings.secret_keys))
    except UnsupportedAuth as exc:
        fail(str(exc))
    report = check(client, found.project_key, found.issue_type)
    click.echo(f"Jira {found.base_url} ({found.deployment}), tenant {tenant}")
    if report.account:
        click.echo(f"  signed in as {report.account}")
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    if report.problems:
        raise SystemExit(1)
    click.echo(f"  ok: can create {found.issue_type} issues in {found.project_key}")
