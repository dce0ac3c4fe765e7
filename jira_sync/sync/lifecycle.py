"""A Jira issue that is gone: deleted, moved out of reach, or hidden from the account.

A 404 alone proves nothing (lost permission looks the same), so the project must still be
readable and no issue may carry the marker before the link follows ``on_jira_delete``; a
signed ``jira:issue_deleted`` delivery is proof enough.
"""

from __future__ import annotations

from sqlalchemy import update

from jira_sync.jira.client import JiraClient
from jira_sync.mapping import Mapping
from jira_sync.qalita import QalitaClient
from jira_sync.remote import NotFound, PermanentError, RemoteError, TransientError
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import leases
from jira_sync.sync.context import SyncContext
from jira_sync.sync.creates import severed_issue_ids
from jira_sync.sync.outcomes import Work, finish, journal, save_progress
from jira_sync.sync.state import C_PENDING, C_POSTED, FINAL_STATES, PENDING, TOMBSTONED, Due

DELETED_IN_JIRA = ("The Jira issue {key} was deleted; jira-sync no longer syncs this issue "
                   "with Jira.")


def handle_missing(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work) -> None:
    """A 404 on the issue: deleted, moved, or hidden from us? Only a check tells them apart."""
    project = work.project_key or ""
    try:
        client.project(project)
    except NotFound:
        raise PermanentError(f"issue {work.jira_issue_key} and project {project} are not "
                             "visible to this account: lost permission? (not treated as a "
                             "deletion)", status=404) from None
    found = list(client.search(f'labels = "{work.marker}"', fields=("summary", "labels")))
    cut = severed_issue_ids(ctx, work.integration.id, [str(issue["id"]) for issue in found])
    found = [issue for issue in found if str(issue["id"]) not in cut]
    if found:
        issue = found[0]
        work.jira_issue_id, work.jira_issue_key = str(issue["id"]), issue.get("key")
        save_progress(ctx, work, jira_issue_id=work.jira_issue_id,
                      jira_issue_key=work.jira_issue_key)
        journal(ctx, work, "missing", "adopted",
                f"issue moved: now {work.jira_issue_key}, found by its marker")
        work.again = True  # what hit the 404 is written at once to the adopted issue
        return
    follow_deletion(ctx, mapping, work, ctx.qalita(work.integration))


def deleted_in_jira(ctx: SyncContext, mapping: Mapping, work: Work,
                    qalita: QalitaClient | None) -> None:
    """A signed ``jira:issue_deleted`` is proof enough: the link follows ``on_jira_delete``
    and nothing of the issue is written to QALITA."""
    follow_deletion(ctx, mapping, work, qalita)


def follow_deletion(ctx: SyncContext, mapping: Mapping, work: Work,
                    qalita: QalitaClient | None) -> None:
    """Recreate the issue, or close the link with one QALITA comment saying why."""
    if mapping.on_jira_delete == "recreate":
        save_progress(ctx, work, jira_issue_id=None, jira_issue_key=None, written={},
                      managed_labels=[], create_attempted_at=None, state=PENDING,
                      due_at=utcnow(), jira_view={})
        with ctx.database.unit_of_work() as session:
            session.execute(update(CommentLink).where(
                CommentLink.link_id == work.link_id, CommentLink.state == C_POSTED,
                CommentLink.origin == "qalita")
                .values(state=C_PENDING, jira_comment_id=None, attempted_at=None))
        journal(ctx, work, "missing", "recreate",
                f"{work.jira_issue_key} was deleted in Jira; creating it again")
        work.jira_issue_id, work.written, work.managed_labels = None, {}, []
        work.outbound_due = True
        return
    # Closed first, then told: a retry never posts the note twice (at most once).
    save_progress(ctx, work, state=TOMBSTONED, state_reason="deleted in Jira")
    journal(ctx, work, "missing", "tombstoned",
            f"{work.jira_issue_key} was deleted in Jira; the link is closed")
    if qalita is None:
        return
    try:
        qalita.add_comment(work.qalita_issue_id, DELETED_IN_JIRA.format(
            key=work.jira_issue_key or work.jira_issue_id), "jira-sync:deleted", "jira-sync")
    except RemoteError as exc:
        journal(ctx, work, "missing", "skipped", f"could not tell QALITA that "
                f"{work.jira_issue_key} was deleted: {exc.reason}", level="warning")
    save_progress(ctx, work)


def check_missing(ctx: SyncContext, link_id: int) -> list[Due]:
    """A linked issue the reconciliation sweep no longer finds: the 404 checks decide
    whether it moved (adopted by its marker), was deleted, or is only hidden from us (left
    as it is, and logged)."""
    owner = leases.new_owner()
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, link_id)
        if link is None or link.state in FINAL_STATES or not leases.acquire(
                session, [link_id], owner, ctx.timings.lease_seconds):
            return []
        session.refresh(link)
        integration = session.get(Integration, link.integration_id)
        assert integration is not None
        work = Work.of(link, owner, integration)
        session.expunge(integration)
    mapping = ctx.mappings(work.integration).for_project(work.project_key or "")
    try:
        handle_missing(ctx, ctx.client(work.integration), mapping, work)
    except PermanentError as exc:
        journal(ctx, work, "reconcile", "skipped", exc.reason, level="warning")
    except TransientError as exc:
        journal(ctx, work, "reconcile", "retry", f"could not check {work.jira_issue_key}: "
                f"{exc.reason}", level="warning")
    return finish(ctx, work)
