"""``jira-sync reconcile``: one reconciliation sweep now, with what it found."""

from __future__ import annotations

import heapq
import time
from typing import Any

import click
from sqlalchemy import select

from jira_sync.cli.common import fail, iso_time, no_integration, tenant_database

# Flushes the sweep made due are run here up to this far ahead; later ones (parked after a
# failure) are the workers' and the sweep's.
RUN_AHEAD_SECONDS = 30.0


@click.command()
@click.option("--tenant", default=None, help="Default: JIRA_SYNC_TENANT, else 'default'.")
@click.option("--since", default=None, help="Read Jira's changes since this ISO 8601 time "
              "(default: since the last sweep).")
def reconcile(tenant: str | None, since: str | None) -> None:
    """Apply the Jira changes no webhook brought, now, and print what was checked and
    changed."""
    from jira_sync.jira.limiter import limiter_for
    from jira_sync.store.models import Integration
    from jira_sync.sync import reconcile as sweep
    from jira_sync.sync.context import SyncContext

    moment = iso_time(since)
    with tenant_database(tenant) as (settings, database, tenant):
        with database.unit_of_work() as session:
            integration_id = session.scalar(select(Integration.id).where(
                Integration.tenant == tenant))
        if integration_id is None:
            no_integration(tenant)
        ctx = SyncContext.from_settings(settings, database,
                                        limiter_for(settings.broker_url, database))
        with _Bars() as bars:
            try:
                report, dues = sweep.reconcile(ctx, integration_id, since=moment,
                                               progress=bars.show)
            except Exception as exc:  # One line for the operator; the log has the rest.
                fail(f"reconciliation failed: {getattr(exc, 'reason', None) or exc}")
        written = _run(ctx, dues)
    click.echo(f"tenant {report.tenant}: read {report.read} issues changed in Jira since "
               f"{report.since.isoformat() if report.since else 'the start'} in "
               f"{', '.join(report.projects) or 'no project'}")
    click.echo(f"  {report.changed} links had changes for QALITA; {written} flushes ran")
    click.echo(f"  checked {report.checked} linked issues: {report.moved} moved, "
               f"{report.missing} missing")
    for project, reason in report.skipped.items():
        click.echo(f"  skipped project {project}: {reason}")


class _Bars:
    """One progress bar per phase of the sweep, on stderr (stdout keeps the summary)."""

    LABELS = {"read": "issues changed in Jira", "checked": "linked issues checked"}

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}
        self._done: dict[str, int] = {}

    def show(self, phase: str, done: int, total: int | None) -> None:
        bar = self._bars.get(phase)
        if bar is None:
            bar = click.progressbar(length=max(total or done, done, 1),
                                    label=self.LABELS.get(phase, phase),
                                    file=click.get_text_stream("stderr"), show_pos=True)
            bar.__enter__()
            self._bars[phase], self._done[phase] = bar, 0
        bar.length = max(bar.length, done)
        bar.update(done - self._done[phase])
        self._done[phase] = done

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for bar in self._bars.values():
            bar.__exit__(None, None, None)


def _run(ctx: object, dues: list) -> int:
    """Run the flushes the sweep made due, and those they lead to, in time order."""
    from jira_sync.sync import inbound, outbound

    queue = [(due.at.timestamp(), n, due) for n, due in enumerate(dues)]
    heapq.heapify(queue)
    runs, count = 0, len(queue)
    while queue and queue[0][0] <= time.time() + RUN_AHEAD_SECONDS:
        at, _, due = heapq.heappop(queue)
        time.sleep(max(0.0, at - time.time()))
        follow_ups = inbound.flush_inbound(ctx, [due.link_id]) if due.inbound \
            else outbound.flush_link(ctx, due.link_id)
        for follow_up in follow_ups:
            count += 1
            heapq.heappush(queue, (follow_up.at.timestamp(), count, follow_up))
        runs += 1
    return runs
