"""The outbound flush: bring one link's Jira issue to its desired state with the fewest calls.

A flush leases the link, compares the desired snapshot with the per-field fingerprints of
what it last wrote, and makes only the calls that close the difference: one edit for fields
and labels, comments, then transitions through the workflow planner. Running it twice changes
nothing the second time. No database transaction stays open across a Jira call.

Links without a Jira issue go through ``creates`` (bulk create); the outcomes (in step,
parked, dead-lettered, blocked) are ``outcomes``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jira_sync.jira.client import JiraClient
from jira_sync.jira.workflow import WorkflowBlocked, move_to_category
from jira_sync.mapping import DesiredIssue, Mapping
from jira_sync.remote import NotFound, PermanentError, TransientError
from jira_sync.render import from_text
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import creates, leases
from jira_sync.sync.comments import sync_comments
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import resolve_user
from jira_sync.sync.lifecycle import handle_missing
from jira_sync.sync.outcomes import (
    LeaseLost,
    Work,
    fail,
    finish,
    journal,
    look_again_at,
    park,
    renew,
    save_progress,
    unexpected,
)
from jira_sync.sync.rendering import fingerprint, plain_text, rich_text
from jira_sync.sync.state import (
    BLOCKED,
    C_DELETING,
    C_PENDING,
    C_POSTED,
    CLOSED,
    FINAL_STATES,
    Due,
)

logger = logging.getLogger("jira_sync.outbound")
DELETED_NOTE = "The QALITA issue was deleted; jira-sync no longer updates this issue."


def flush_link(ctx: SyncContext, link_id: int) -> list[Due]:
    """Flush one link; returns the flushes to schedule next (parked retries, follow-ups)."""
    owner = leases.new_owner()
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, link_id)
        if link is None or link.state in FINAL_STATES:
            return []
        if link.due_at is None and link.next_attempt_at is None:
            # Nothing asked for this flush any more: another flush (a bulk create, or the
            # window's earlier flush) already wrote the state it was scheduled for.
            return []
        if link.jira_issue_id is None and link.desired is not None \
                and not link.desired.get("deleted"):
            group = (link.integration_id, link.jira_project_key)
            work = None
        else:
            work, later = _lease_work(ctx, session, link, owner)
            if work is None:
                return later
    if work is None:
        return creates.flush_creates(ctx, group[0], group[1], link_id)
    return _flush_guarded(ctx, work)


def postpone(ctx: SyncContext, link_ids: list[int], until: datetime) -> None:
    """Move the pending flushes and parked retries of ``link_ids`` to ``until``, so the sweep
    does not take a flush that waits for queued events for a lost one."""
    with ctx.database.unit_of_work() as session:
        # A link being folded right now is passed over: the next round postpones it.
        for column in (IssueLink.due_at, IssueLink.next_attempt_at):
            earlier = (column.is_not(None), column < until)
            ids = leases.locked_in_order(session, IssueLink.id.in_(link_ids), *earlier,
                                         skip_locked=True)
            session.execute(update(IssueLink).where(IssueLink.id.in_(ids), *earlier).values(
                {column: until}).execution_options(synchronize_session=False))


def _lease_work(ctx: SyncContext, session: Session, link: IssueLink,
                owner: str) -> tuple[Work | None, list[Due]]:
    """Lease the link for this flush and detach what the flush needs, or say when to look
    again."""
    now = utcnow()
    if not leases.acquire(session, [link.id], owner, ctx.timings.lease_seconds):
        session.refresh(link)
        return None, [Due(link.id, look_again_at(link, now))]
    session.refresh(link)
    link.due_at = None  # the flush, or the parked wake-up, writes the newest state
    if link.next_attempt_at is not None and link.next_attempt_at > now:
        leases.release(session, [link.id], owner)
        return None, [Due(link.id, link.next_attempt_at)]
    integration = session.get(Integration, link.integration_id)
    assert integration is not None
    work = Work.of(link, owner, integration)
    work.comments = list(session.scalars(select(CommentLink).where(
        CommentLink.link_id == link.id, CommentLink.origin == "qalita",
        CommentLink.state.in_((C_PENDING, C_POSTED, C_DELETING))).order_by(CommentLink.id)))
    session.expunge(integration)
    for row in work.comments:
        session.expunge(row)
    return work, []


def _flush_guarded(ctx: SyncContext, work: Work) -> list[Due]:
    """Sync a leased link and turn the outcome or failure into its state; always releases
    the lease (unless another flush has taken it over)."""
    try:
        _sync_existing(ctx, work)
    except LeaseLost:
        return []
    except WorkflowBlocked as exc:
        return finish(ctx, work, state=BLOCKED, reason=exc.reason, decision="blocked")
    except TransientError as exc:
        return park(ctx, work, exc)
    except PermanentError as exc:
        return fail(ctx, work, exc)
    except Exception as exc:
        logger.exception("flush of link %s failed unexpectedly", work.link_id)
        return park(ctx, work, unexpected(exc))
    return finish(ctx, work)


def _sync_existing(ctx: SyncContext, work: Work) -> None:
    desired = work.desired
    if desired is None:
        return  # Only comments so far; they wait for the issue.
    if work.jira_issue_id is None:
        _close_locally(ctx, work, "deleted in QALITA before a Jira issue was created")
        return
    client = ctx.client(work.integration)
    mapping = ctx.mappings(work.integration).for_project(work.project_key or "")
    try:
        if desired.get("deleted"):
            _apply_qalita_delete(ctx, client, mapping, work)
            return
        want = update_issue(ctx, client, mapping, work)
        # Comments first: a workflow that blocks must not hold them back.
        sync_comments(ctx, client, mapping, work)
        move_status(ctx, client, mapping, work, want.status_category)
    except NotFound:
        handle_missing(ctx, client, mapping, work)


def update_issue(ctx: SyncContext, client: JiraClient, mapping: Mapping,
                 work: Work) -> DesiredIssue:
    """One edit for whatever changed among fields and labels."""
    want = work.want(mapping)
    issue = work.jira_issue_id
    assert issue is not None
    fields: dict[str, Any] = {}
    written = dict(work.written)
    if fingerprint(want.summary) != written.get("summary"):
        fields["summary"], written["summary"] = want.summary, fingerprint(want.summary)
    description = rich_text(client, want.description)
    if fingerprint(description) != written.get("description"):
        fields["description"], written["description"] = description, fingerprint(description)
    if want.priority and want.priority != written.get("priority"):
        fields["priority"], written["priority"] = {"name": want.priority}, want.priority
    components = sorted(want.components)
    if components != written.get("components", []):
        fields["components"] = [{"name": name} for name in components]
        written["components"] = components
    if want.assignee_email and want.assignee_email != written.get("assignee"):
        user = resolve_user(ctx, client, work.integration.id, want.assignee_email)
        if user is not None:  # An unresolvable owner never clears an existing assignee.
            fields["assignee"], written["assignee"] = client.user_ref(user), want.assignee_email
    wanted = set(want.labels)
    managed = set(work.managed_labels)
    operations = [{"add": label} for label in sorted(wanted - managed)]
    # Only labels jira-sync wrote itself are ever removed; the marker never is.
    operations += [{"remove": label} for label in sorted(managed - wanted - {work.marker})]
    if fields or operations:
        renew(ctx, work)
        try:
            client.edit_issue(issue, fields=fields or None,
                              update={"labels": operations} if operations else None)
        except PermanentError as exc:
            if "assignee" not in fields or "assignee" not in exc.reason:
                raise
            # An owner Jira will not take as assignee: everything else still goes through.
            fields.pop("assignee")
            written.pop("assignee", None)
            client.edit_issue(issue, fields=fields or None,
                              update={"labels": operations} if operations else None)
        work.written, work.managed_labels = written, sorted(wanted | {work.marker})
        journal(ctx, work, "edit", "applied",
                f"edited {work.jira_issue_key}: {', '.join(sorted(fields)) or 'labels'}"
                + (f" (labels {len(operations)} changes)" if operations and fields else ""))
        save_progress(ctx, work)  # a later failure never repeats the edit
    else:
        journal(ctx, work, "edit", "unchanged", f"{work.jira_issue_key} already in step")
    return want


def move_status(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work,
                category: str | None) -> None:
    if category is None or category == work.written.get("status"):
        return
    assert work.jira_issue_id is not None
    try:
        hops = move_to_category(client, work.jira_issue_id, category, graph=ctx.graph,
                                field_defaults=mapping.field_defaults,
                                before_write=lambda: renew(ctx, work))
    except WorkflowBlocked as exc:
        if exc.made:
            journal(ctx, work, "transition", "applied", f"moved {work.jira_issue_key} through "
                    f"{' -> '.join(exc.made)} before stopping")
        raise
    work.written = {**work.written, "status": category}
    save_progress(ctx, work)
    if hops:
        journal(ctx, work, "transition", "applied",
                f"{work.jira_issue_key} to a {category} status via {' -> '.join(hops)}")


def _apply_qalita_delete(ctx: SyncContext, client: JiraClient, mapping: Mapping,
                         work: Work) -> None:
    action = mapping.on_qalita_delete
    if action == "close":
        move_status(ctx, client, mapping, work, "done")
    elif action == "comment":
        issue = work.jira_issue_id or ""
        # Looked for first: an earlier attempt may have posted it before failing.
        if not any(plain_text(client, c.get("body")).startswith(DELETED_NOTE)
                   for c in client.comments(issue)):
            renew(ctx, work)
            client.add_comment(issue, rich_text(client, from_text(DELETED_NOTE)))
    _close_locally(ctx, work, f"deleted in QALITA ({action})")


def _close_locally(ctx: SyncContext, work: Work, reason: str) -> None:
    save_progress(ctx, work, state=CLOSED, state_reason=reason)
    journal(ctx, work, "delete", "closed", f"QALITA issue {work.qalita_issue_id}: {reason}")
