"""The reconciliation sweep: Jira changes no webhook brought, found and applied.

Deliveries get lost (Jira gives up on a receiver after about half an hour, an issue moved out
of a webhook's filter sends nothing, a Jira without webhooks sends nothing at all). So each
sweep reads what changed in the linked projects since the last one, with its changelog, and
folds the current values into each link's view exactly as a delivery would be folded (an
echo of jira-sync's own write is still an echo); the newest changelog id it read becomes the
watermark, so a late delivery older than the sweep applies nothing. It also checks that a
rotating slice of linked issues still exists where it was, which finds deletions and moves.
It takes a rate-limit slot only when one is free now, so flushes go first.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from jira_sync.jira import jql
from jira_sync.jira.client import BULK_FETCH_LIMIT, JiraClient, JiraSite
from jira_sync.jira.connect import auth_for
from jira_sync.jira.limiter import Call
from jira_sync.remote import NotFound, PermanentError
from jira_sync.store.models import Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import lifecycle, pauses
from jira_sync.sync.context import SyncContext
from jira_sync.sync.jira_changes import FOLD_FIELDS, fold_read_issues
from jira_sync.sync.journal import log
from jira_sync.sync.state import FINAL_STATES, Due

logger = logging.getLogger("jira_sync.reconcile")
# A sweep reads back this far past its interval: the JQL date has minute precision, and a
# change made while the last sweep ran may have been indexed after it read.
OVERLAP_MINUTES = 2
# Linked issues whose existence one sweep confirms (oldest confirmation first).
EXISTENCE_BATCH = 500
# Server refuses long JQL; ids per ``id in (...)`` query.
SERVER_IDS_PER_QUERY = 50


@dataclass
class Report:
    """What one sweep of one integration did, for the log and ``jira-sync reconcile``."""

    tenant: str
    since: datetime | None = None
    projects: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # project -> why
    read: int = 0  # issues read as changed in Jira
    changed: int = 0  # links with something new for QALITA
    checked: int = 0  # linked issues whose existence was checked
    moved: int = 0
    missing: int = 0


class _Behind(JiraClient):
    """A client that takes a rate-limit slot only when one is free now, and otherwise waits
    without reserving: the flushes, which reserve ahead, keep the site's pace to themselves."""

    def _wait_for_slot(self, limited: Call, what: str) -> bool:
        if self._limiter is None:
            return False
        while True:
            slot = self._limiter.reserve(limited, self._rate_limit, 0.0)
            if slot.wait <= 0 and slot.reserved:
                return False
            time.sleep(min(slot.wait, 1.0))


Progress = Callable[[str, int, int | None], None]


def reconcile(ctx: SyncContext, integration_id: int, *, since: datetime | None = None,
              progress: Progress | None = None) -> tuple[Report, list[Due]]:
    """One sweep of one integration; returns what it did and the flushes it made due.
    ``progress(phase, done, total)`` is told how far each phase is (``read``: issues changed
    in Jira, ``checked``: linked issues whose existence is confirmed)."""
    started = utcnow()
    with ctx.database.unit_of_work() as session:
        integration = session.get(Integration, integration_id)
        if integration is None:
            raise LookupError(f"no integration {integration_id}")
        projects = sorted(p for p in session.scalars(select(IssueLink.jira_project_key).where(
            IssueLink.integration_id == integration_id, IssueLink.jira_issue_id.is_not(None),
            IssueLink.state.not_in(FINAL_STATES)).distinct()) if p)
        session.expunge(integration)
    report = Report(integration.tenant)
    if pauses.stopped(integration, inbound=False):
        return report, []
    report.since = since or integration.reconciled_at or started - timedelta(
        seconds=ctx.timings.reconcile_seconds)
    client = _Behind(JiraSite(integration.base_url, integration.deployment),
                     auth_for(integration, ctx.box), limiter=ctx.limiter,
                     rate_limit=ctx.timings.jira_rate_limit)
    report.projects = _readable(ctx, client, integration, projects, report)
    dues = _changed(ctx, client, integration, report, started, progress)
    dues += _existence(ctx, client, integration, report, progress)
    with ctx.database.unit_of_work() as session:
        found = session.get(Integration, integration_id)
        if found is not None:
            found.reconciled_at = started
        log(session, integration_id, "reconcile", "applied",
            f"read {report.read} issues changed in Jira since {report.since.isoformat()}, "
            f"{report.changed} with news for QALITA; checked {report.checked} linked issues: "
            f"{report.moved} moved, {report.missing} missing",
            skipped=report.skipped or None)
    return report, dues


def _readable(ctx: SyncContext, client: JiraClient, integration: Integration,
              projects: list[str], report: Report) -> list[str]:
    """A project this account can no longer read is skipped and logged, not fatal."""
    readable = []
    for key in projects:
        try:
            client.project(key)
        except PermanentError as exc:
            report.skipped[key] = exc.reason
            with ctx.database.unit_of_work() as session:
                log(session, integration.id, "reconcile", "skipped", f"project {key} is not "
                    f"readable and was not reconciled: {exc.reason}", level="warning")
            continue
        readable.append(key)
    return readable


def _changed(ctx: SyncContext, client: JiraClient, integration: Integration, report: Report,
             started: datetime, progress: Progress | None) -> list[Due]:
    if not report.projects:
        return []
    assert report.since is not None
    minutes = math.ceil(max((started - report.since).total_seconds(), 0) / 60) \
        + OVERLAP_MINUTES
    query = (f"project in ({', '.join(jql.quote(p) for p in report.projects)}) "
             f'AND updated >= "-{minutes}m" ORDER BY updated ASC, key ASC')
    total = client.count(query) if progress is not None else None
    dues: list[Due] = []
    page: list[dict[str, Any]] = []
    for issue in client.search(query, FOLD_FIELDS, expand=("changelog",)):
        page.append(issue)
        if len(page) >= 50:
            dues += _fold(ctx, integration, page, report)
            page = []
            if progress is not None:
                progress("read", report.read, total)
    if page:
        dues += _fold(ctx, integration, page, report)
    if progress is not None:
        progress("read", report.read, report.read)
    return dues


def _fold(ctx: SyncContext, integration: Integration, page: list[dict[str, Any]],
          report: Report) -> list[Due]:
    """One page of issues into their links, in one transaction, as deliveries are folded."""
    report.read += len(page)
    dues, changed = fold_read_issues(ctx, integration.id, page)
    report.changed += changed
    return dues


def _existence(ctx: SyncContext, client: JiraClient, integration: Integration,
               report: Report, progress: Progress | None) -> list[Due]:
    """Confirm a slice of linked issues still exists: moved ones are followed, missing ones
    go through the same checks as a 404 (project readable, marker search) before the link
    follows ``on_jira_delete``."""
    with ctx.database.unit_of_work() as session:
        rows = session.execute(select(IssueLink.id, IssueLink.jira_issue_id).where(
            IssueLink.integration_id == integration.id, IssueLink.jira_issue_id.is_not(None),
            IssueLink.state.not_in(FINAL_STATES),
        ).order_by(IssueLink.jira_checked_at.is_not(None), IssueLink.jira_checked_at,
                   IssueLink.id).limit(EXISTENCE_BATCH)).all()
    ids = {jira_id: link_id for link_id, jira_id in rows}
    found: dict[str, dict[str, Any]] = {}
    chunk = BULK_FETCH_LIMIT if client.is_cloud else SERVER_IDS_PER_QUERY
    keys = list(ids)
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        if client.is_cloud:
            issues = client.bulk_fetch(part, ("project",))
        else:
            issues = list(client.search(f"id in ({', '.join(part)})", ("project",),
                                        validate=False))
        found.update({str(issue["id"]): issue for issue in issues})
        if progress is not None:
            progress("checked", start + len(part), len(keys))
    dues: list[Due] = []
    now = utcnow()
    for jira_id, link_id in ids.items():
        issue = found.get(jira_id)
        if issue is None:
            try:
                issue = client.get_issue(jira_id, fields=("project",))
            except NotFound:
                report.missing += 1
                dues += lifecycle.check_missing(ctx, link_id)
                continue
        report.moved += _follow(ctx, link_id, issue)
    report.checked += len(ids)
    with ctx.database.unit_of_work() as session:
        session.execute(update(IssueLink).where(IssueLink.id.in_(list(ids.values())))
                        .values(jira_checked_at=now).execution_options(synchronize_session=False))
    return dues


def _follow(ctx: SyncContext, link_id: int, issue: dict[str, Any]) -> int:
    """1 when the issue has a new key or project (moved, maybe out of the webhook's filter)."""
    key = issue.get("key")
    project = ((issue.get("fields") or {}).get("project") or {}).get("key")
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, link_id, with_for_update=True)
        if link is None or (key == link.jira_issue_key and project == link.jira_project_key):
            return 0
        log(session, link.integration_id, "reconcile", "moved",
            f"{link.jira_issue_key} is now {key}", link_id=link.id, jira_issue=key)
        link.jira_issue_key, link.jira_project_key = key or link.jira_issue_key, \
            project or link.jira_project_key
        return 1


def due_integrations(ctx: SyncContext) -> list[int]:
    """The integrations with linked issues whose flushes run (enabled, not deleted, not
    paused): what beat's sweep reconciles."""
    with ctx.database.unit_of_work() as session:
        return list(session.scalars(select(Integration.id).where(
            Integration.id.in_(pauses.running(inbound=False)),
            select(func.count()).select_from(IssueLink).where(
                IssueLink.integration_id == Integration.id,
                IssueLink.jira_issue_id.is_not(None)).scalar_subquery() > 0)))
