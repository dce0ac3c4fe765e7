"""``jira-sync dead-letters``: inspect, replay and discard failed work, without the HTTP API.

The commands are thin over ``jira_sync.admin.dead_letters`` and ``jira_sync.admin.jobs``, so
they answer as the admin API does. Without ``--tenant`` they see every letter, those no
integration owns (invalid QALITA events) included; with it, that tenant's integration's.
Exit 0 when done, 1 when refused or failed, 2 for a usage error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from jira_sync.cli.common import (
    admin_refusals,
    fail,
    hand_over,
    iso_time,
    load_settings,
    preflight,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from config.settings import Settings
    from jira_sync.store.db import Database

# How often ``replay --all`` reads its job's progress.
POLL_SECONDS = 0.5

tenant_option = click.option("--tenant", default=None,
                             help="Only this tenant's integration (default: every letter).")
kind_option = click.option("--kind", default=None,
                           help="Only letters of this kind, e.g. jira_rejected, invalid_event.")
since_option = click.option("--since", default=None,
                            help="Only letters created since this ISO 8601 time.")


@click.group("dead-letters")
def dead_letters() -> None:
    """Inspect, replay and discard dead letters (work that failed for good)."""


@dead_letters.command("list")
@tenant_option
@kind_option
@since_option
@click.option("--state", type=click.Choice(["open", "replaying", "resolved", "discarded"]),
              default=None, help="Only letters in this state (default: all).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", default=None, help="next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, as the API answers.")
def list_command(tenant: str | None, kind: str | None, since: str | None, state: str | None,
                 limit: int, cursor: str | None, as_json: bool) -> None:
    """List dead letters, newest first."""
    from jira_sync.admin import dead_letters as core

    moment = iso_time(since)
    with _session() as (_, _, session), admin_refusals():
        found = core.list_letters(
            session, integration_id=_integration_id(session, tenant), kind=kind,
            since=moment, state=state, limit=limit, cursor=cursor)
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2, default=str))
        return
    for item in found.items:
        link = item["link"]
        about = f" QALITA {link['qalita_issue_id']} / {link['jira_key'] or '-'}" if link else ""
        click.echo(f"{item['id']:>6}  {item['state']:<9}  {item['kind']:<17} "
                   f"{item['created_at'][:19]}  replays {item['replay_count']}{about}")
        click.echo(f"        {item['reason'][:200]}")
    if not found.items:
        click.echo("no dead letters")
    if found.next_cursor:
        click.echo(f"more: --cursor {found.next_cursor}")


@dead_letters.command("show")
@click.argument("letter_id", type=int)
def show_command(letter_id: int) -> None:
    """Show one dead letter whole (JSON): reason, payload, request and Jira's or QALITA's
    answer."""
    from jira_sync.admin import dead_letters as core

    with _session() as (_, _, session), admin_refusals():
        letter = core.show(session, letter_id)
    click.echo(json.dumps(letter, indent=2, default=str))


@dead_letters.command("replay")
@click.argument("letter_id", type=int, required=False)
@click.option("--all", "every", is_flag=True,
              help="Replay every open letter the filters match, as a job the workers run.")
@tenant_option
@kind_option
@since_option
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="With --all, follow the job's progress until it ends.")
def replay_command(letter_id: int | None, every: bool, tenant: str | None, kind: str | None,
                   since: str | None, wait: bool) -> None:
    """Queue a letter's work again (LETTER_ID), or every open letter (--all), to run with
    today's code and settings; the workers do the work."""
    if every == (letter_id is not None):
        raise click.UsageError("give either a LETTER_ID or --all")
    if letter_id is not None and (tenant or kind or since):
        raise click.UsageError("--tenant, --kind and --since go with --all")
    if every:
        _replay_all(tenant, kind, since, wait)
        return
    from jira_sync.admin import dead_letters as core
    from jira_sync.sync.context import SyncContext

    with _session() as (settings, database, session):
        ctx = SyncContext.from_settings(settings, database)
        with admin_refusals():
            replayed = core.replay(session, ctx, letter_id)
    hand_over(settings, replayed.send, f"the replay of dead letter {letter_id}")
    letter = replayed.letter
    if replayed.failed:
        fail(f"dead letter {letter_id} failed again: {letter['reason']}")
    click.echo(f"dead letter {letter_id} replayed ({letter['replay_count']} time(s)): "
               f"{letter['state']}")


def _replay_all(tenant: str | None, kind: str | None, since: str | None, wait: bool) -> None:
    from jira_sync.admin import jobs
    from jira_sync.broker import send_job

    moment = iso_time(since)
    with _session() as (settings, database, session):
        filters = {"integration_id": _integration_id(session, tenant), "kind": kind,
                   "since": moment.isoformat() if moment else None}
        with admin_refusals():
            job = jobs.start_bulk_replay(session, filters)
        job_id, total = job.id, job.total
    if not hand_over(settings, lambda app: send_job(app, job_id), f"job {job_id}"):
        with database.unit_of_work() as session:
            jobs.never_sent(session, job_id, "the broker could not be reached")
        fail("the broker could not be reached: start the replay again")
    click.echo(f"job {job_id}: replaying {total} dead letter(s)")
    if not wait:
        return
    view = _follow(database, job_id, total)
    click.echo(f"job {job_id} {view['state']}: {view['done']} replayed, "
               f"{view['failed']} failed" + (f" ({view['error']})" if view["error"] else ""))
    if view["state"] != jobs.DONE or view["failed"]:
        raise SystemExit(1)


def _follow(database: Database, job_id: int, total: int) -> dict[str, Any]:
    """Poll the job and draw its progress on stderr until it ends."""
    from jira_sync.admin import jobs

    shown = 0
    with click.progressbar(length=max(total, 1), label=f"job {job_id}", show_pos=True,
                           file=click.get_text_stream("stderr")) as bar:
        while True:
            with database.unit_of_work() as session:
                view = jobs.job_view(session, job_id)
            count = view["done"] + view["failed"]
            bar.update(count - shown)
            shown = count
            if view["state"] in (jobs.DONE, jobs.FAILED):
                return view
            time.sleep(POLL_SECONDS)


@dead_letters.command("discard")
@click.argument("letter_id", type=int)
def discard_command(letter_id: int) -> None:
    """Mark a dead letter discarded: kept for the record, no longer open. A link's letter
    leaves the link failed until its next change."""
    from jira_sync.admin import dead_letters as core

    with _session() as (_, _, session), admin_refusals():
        core.discard(session, letter_id)
    click.echo(f"dead letter {letter_id} discarded")


@contextmanager
def _session() -> Iterator[tuple[Settings, Database, Session]]:
    """The settings, the checked database, and one unit of work that commits at the end."""
    from jira_sync.store.db import Database

    settings = load_settings(needs_secret_key=True)
    preflight(settings, service=False)
    database = Database(settings.database_url)
    try:
        with database.unit_of_work() as session:
            yield settings, database, session
    finally:
        database.dispose()


def _integration_id(session: Session, tenant: str | None) -> int | None:
    """The tenant's integration (a deleted one's letters stay listable), or every letter."""
    from jira_sync.admin.integrations import by_tenant

    if tenant is None:
        return None
    with admin_refusals():
        return by_tenant(session, tenant, deleted=True).id
