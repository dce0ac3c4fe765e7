"""``jira-sync webhook url``: the token URL for a Jira that cannot sign its webhooks."""

from __future__ import annotations

import click
from sqlalchemy import select

from jira_sync.cli.common import fail, no_integration, tenant_database


@click.group()
def webhook() -> None:
    """Where Jira delivers its webhooks."""


@webhook.command("url")
@click.option("--tenant", default=None, help="Default: JIRA_SYNC_TENANT, else 'default'.")
@click.option("--rotate", is_flag=True,
              help="Make a new URL; the one made before stops working at once.")
def url(tenant: str | None, rotate: bool) -> None:
    """Make the integration's webhook URL and print it (only its hash is kept, so it is shown
    this once)."""
    from jira_sync.deliveries import new_token, token_url
    from jira_sync.store.models import Integration

    with tenant_database(tenant) as (settings, database, tenant), \
            database.unit_of_work() as session:
        integration = session.scalars(select(Integration).where(
            Integration.tenant == tenant).with_for_update()).one_or_none()
        if integration is None:
            no_integration(tenant)
        if integration.webhook_token_hash is not None and not rotate:
            fail(f"tenant {tenant!r} already has a webhook URL; it was shown only when it "
                 "was made. `jira-sync webhook url --rotate` makes a new one (the old one "
                 "then stops working)")
        token = new_token(session, integration)
    click.echo(token_url(settings.public_url, token))
