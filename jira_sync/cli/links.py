"""``jira-sync links list|create|sever|sync``: the issue links, as the admin API handles them.

The same core functions as the API (``jira_sync.admin.links``); with no web process around,
the command sends the flushes an action makes due to the broker itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from jira_sync.cli.common import admin_refusals, schedule, tenant_database, tenant_option

if TYPE_CHECKING:
    from config.settings import Settings
    from jira_sync.admin.links import LinkOutcome
    from jira_sync.store.db import Database

# How long ``links create`` waits for a worker to create the issue, as the API does.
CREATE_WAIT_SECONDS = 10.0
ISSUE = click.argument("qalita_issue_id", type=click.IntRange(min=1))


@click.group()
def links() -> None:
    """The Jira issues linked to QALITA issues: list, create, sync now, sever."""


@links.command("list")
@tenant_option
@click.option("--state", default=None, help="Only links in this state (pending, linked, "
              "blocked, failed, closed, tombstoned, severing, severed).")
@click.option("--project", default=None, help="Only links to issues of this Jira project.")
@click.option("--qalita-issue", "qalita_issue_id", type=int, default=None,
              help="Only the links of this QALITA issue.")
@click.option("--jira-key", default=None, help="Only the link of this Jira issue key.")
@click.option("--limit", type=int, default=None, help="Links per page (default 50).")
@click.option("--cursor", default=None, help="The next_cursor of the page before.")
@click.option("--json", "as_json", is_flag=True, help="One JSON page: {items, next_cursor}.")
def list_links(tenant: str | None, state: str | None, project: str | None,
               qalita_issue_id: int | None, jira_key: str | None, limit: int | None,
               cursor: str | None, as_json: bool) -> None:
    """List the integration's links, newest first (severed ones included)."""
    from jira_sync.admin import links as core
    from jira_sync.admin.integrations import by_tenant

    with tenant_database(tenant) as (_, database, tenant), admin_refusals(), \
            database.unit_of_work() as session:
        result = core.list_links(
            session, by_tenant(session, tenant, deleted=True).id, state=state, project=project,
            qalita_issue_id=qalita_issue_id, jira_key=jira_key, limit=limit, cursor=cursor)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    for item in result.items:
        click.echo(_line(item))
    if result.next_cursor:
        click.echo(f"more: --cursor {result.next_cursor}")


@links.command("create")
@tenant_option
@ISSUE
@click.option("--wait", type=click.FloatRange(min=0), default=CREATE_WAIT_SECONDS,
              show_default=True, help="Seconds to wait for a worker to create the issue.")
def create(tenant: str | None, qalita_issue_id: int, wait: float) -> None:
    """Create External Issue: create (or show) the Jira issue of a QALITA issue."""
    from jira_sync.admin import links as core
    from jira_sync.sync.context import SyncContext

    with tenant_database(tenant) as (settings, database, tenant):
        ctx = SyncContext.from_settings(settings, database)
        with admin_refusals():
            outcome = core.create_external(ctx, tenant, qalita_issue_id)
        schedule(settings, outcome.dues)
        view = core.wait_for_link(database, outcome.link_id, wait) if outcome.dues \
            else outcome.view
    click.echo(_line(view))
    if view["state"] in ("blocked", "failed"):
        raise SystemExit(1)


@links.command("sync")
@tenant_option
@ISSUE
def sync(tenant: str | None, qalita_issue_id: int) -> None:
    """Sync a linked issue now, both ways (a blocked or failed one is tried again)."""
    from jira_sync.admin import links as core

    with tenant_database(tenant) as (settings, database, tenant):
        outcome = _act(settings, database, lambda session: core.sync_now(
            session, tenant, qalita_issue_id))
    click.echo(_line(outcome.view))


@links.command("sever")
@tenant_option
@ISSUE
def sever(tenant: str | None, qalita_issue_id: int) -> None:
    """Sever a QALITA issue from its Jira issue: the Jira issue stays, without the marker
    label, and later QALITA changes no longer reach it."""
    from jira_sync.admin import links as core

    with tenant_database(tenant) as (settings, database, tenant):
        outcome = _act(settings, database, lambda session: core.sever(
            session, tenant, qalita_issue_id))
    click.echo(_line(outcome.view))


def _act(settings: Settings, database: Database,
         action: Callable[[Any], LinkOutcome]) -> LinkOutcome:
    """An action, committed, then its flushes handed to the workers."""
    with admin_refusals(), database.unit_of_work() as session:
        outcome: LinkOutcome = action(session)
    schedule(settings, outcome.dues)
    return outcome


def _line(view: dict[str, Any]) -> str:
    parts = [f"QALITA {view['qalita_issue_id']}", view["state"],
             view["jira_key"] or "-", view["jira_url"] or ""]
    if view["last_sync"]:
        parts.append(f"synced {view['last_sync']}")
    if view["last_error"]:
        parts.append(f"error: {view['last_error']}")
    return "  ".join(part for part in parts if part)
