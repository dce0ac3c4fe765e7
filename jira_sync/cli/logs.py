"""``jira-sync logs``: Integration Logs in the terminal, as the admin API shows them."""

from __future__ import annotations

import time
from typing import Any

import click

from jira_sync.cli.common import admin_refusals, echo_json, tenant_database

# How often ``--follow`` looks for new rows.
FOLLOW_SECONDS = 1.0


@click.command()
@click.option("--tenant", default=None, help="Default: JIRA_SYNC_TENANT, else 'default'.")
@click.option("--issue", "qalita_issue_id", type=click.IntRange(min=1), default=None,
              help="Only rows about this QALITA issue id.")
@click.option("--jira-key", default=None, help="Only rows about this Jira issue, e.g. DATA-12.")
@click.option("--level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--decision", default=None, help="e.g. applied, dead_letter, rate_limited.")
@click.option("--since", default=None, help="ISO 8601 time; without an offset, UTC.")
@click.option("--limit", type=click.IntRange(1, 500), default=None,
              help="How many of the newest rows to print first (default 50).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new rows as they come.")
@click.option("--json", "as_json", is_flag=True, help="JSON, as the admin API answers.")
def logs(tenant: str | None, as_json: bool, follow: bool, **filters: Any) -> None:
    """Print the integration's log, newest last (what the sync decided, and why)."""
    from jira_sync.admin import integrations
    from jira_sync.admin import logs as core
    from jira_sync.admin.schemas import LogQuery
    from jira_sync.crypto import SecretBox

    with admin_refusals():
        query = LogQuery().load({k: v for k, v in filters.items() if v is not None})
    with tenant_database(tenant) as (settings, database, tenant):
        box = SecretBox(settings.secret_keys)

        def newer_than(last: int, limit: int) -> list[dict[str, Any]]:
            """Rows after ``last``, newest first: page on while a page holds only new ones."""
            rows: list[dict[str, Any]] = []
            cursor = None
            with admin_refusals(), database.unit_of_work() as session:
                integration = integrations.by_tenant(session, tenant)
                while True:
                    page = core.list_logs(session, integration, box,
                                          **{**query, "limit": limit, "cursor": cursor})
                    rows.extend(row for row in page.items if row["id"] > last)
                    if not last or page.next_cursor is None or page.items[-1]["id"] <= last:
                        return rows
                    cursor = page.next_cursor

        rows = newer_than(0, query.get("limit", 50))
        if as_json and not follow:
            echo_json(rows)
            return
        last = 0
        while True:
            for row in reversed(rows):
                echo_json(row) if as_json else click.echo(line(row))
                last = max(last, row["id"])
            if not follow:
                return
            time.sleep(FOLLOW_SECONDS)
            rows = newer_than(last, 500)


def line(row: dict[str, Any]) -> str:
    issue = " ".join(part for part in (
        f"qalita#{row['qalita_issue_id']}" if row["qalita_issue_id"] else "",
        row["jira_key"] or "") if part)
    return (f"{row['created_at'].isoformat(timespec='seconds')} {row['level'].upper():7} "
            f"{row['action']}/{row['decision']}{' ' + issue if issue else ''}: {row['message']}")
