"""QALITA events become the desired state of links (DESIGN.md: sync by state).

An event never calls Jira. It replaces the link's desired snapshot when its ``issue.version``
is newer, and marks the link due once per debounce window: the first pending change starts
the window and later ones only update the snapshot, so a busy issue still flushes every
window and the flush writes the newest state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync.events.qalita_event import QalitaEvent, dump_issue
from jira_sync.mapping import MappingSet
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync.journal import entry, write

# Lifecycle of a link. Closed and tombstoned links take no more outbound changes.
PENDING, LINKED, BLOCKED, FAILED, CLOSED, TOMBSTONED = (
    "pending", "linked", "blocked", "failed", "closed", "tombstoned")
FINAL_STATES = (CLOSED, TOMBSTONED)
# A flush this late was lost (its worker died holding the countdown), not merely queued.
OVERDUE_SECONDS = 60.0
# Comment links: to post, in step, to delete from Jira, deleted, or deleted before posting.
C_PENDING, C_POSTED, C_DELETING, C_DELETED, C_TOMBSTONE = (
    "pending", "posted", "deleting", "deleted", "tombstone")


@dataclass(frozen=True)
class Due:
    """Flush ``link_id`` at ``at``: the caller schedules it (a countdown task)."""

    link_id: int
    at: datetime


def apply_events(session: Session, integration: Integration, mappings: MappingSet,
                 events: Sequence[QalitaEvent], debounce_seconds: float) -> list[Due]:
    """Fold ``events`` (one tenant's, in arrival order) into their links; returns the flushes
    of the debounce windows they start, one per link at most."""
    links = _links_for(session, integration, events)
    notes: list[dict[str, Any]] = []
    started: dict[int, Due] = {}
    for event in events:
        due = _fold(session, integration, mappings, links[event.issue.id], event,
                    debounce_seconds, notes)
        if due is not None:
            started[due.link_id] = due
    write(session, notes)
    return list(started.values())


def _links_for(session: Session, integration: Integration,
               events: Sequence[QalitaEvent]) -> dict[int, IssueLink]:
    """The link rows of the events' issues, created when missing and locked for this
    transaction.

    The unique key collapses concurrent first events for one issue into one row. Rows are
    inserted in key order and locked in id order, so two batches sharing issues wait for each
    other instead of deadlocking.
    """
    tenants = {event.tenant for event in events}
    assert len(tenants) == 1, "one tenant per call: an integration serves one tenant"
    tenant = tenants.pop()
    issue_ids = sorted({event.issue.id for event in events})
    now = utcnow()
    session.execute(insert(session, IssueLink).values([dict(
        integration_id=integration.id, tenant=tenant, qalita_issue_id=issue_id,
        state=PENDING, desired_version=0, applied_version=0, written={}, managed_labels=[],
        attempts=0, created_at=now, updated_at=now) for issue_id in issue_ids],
    ).on_conflict_do_nothing(index_elements=["tenant", "qalita_issue_id", "integration_id"]))
    links = session.scalars(select(IssueLink).where(
        IssueLink.integration_id == integration.id, IssueLink.tenant == tenant,
        IssueLink.qalita_issue_id.in_(issue_ids)).order_by(IssueLink.id).with_for_update())
    return {link.qalita_issue_id: link for link in links}


def _fold(session: Session, integration: Integration, mappings: MappingSet, link: IssueLink,
          event: QalitaEvent, debounce_seconds: float, notes: list[dict[str, Any]]) -> Due | None:
    """Fold one event into its link; returns when to flush if this starts a debounce window."""
    context = {"link_id": link.id, "event_id": event.event_id}
    if link.state in FINAL_STATES:
        notes.append(entry(integration.id, event.event_type, "ignored",
                           f"QALITA issue {event.issue.id}: link is {link.state}", **context))
        return None
    if event.is_comment:
        changed = _apply_comment(session, link, event, notes)
    else:
        changed = _apply_issue(integration, mappings, link, event, notes)
    if not changed or link.desired is None:
        return None
    if link.state in (BLOCKED, FAILED):  # New input deserves a new attempt.
        link.state, link.state_reason = (LINKED if link.jira_issue_id else PENDING), None
        link.next_attempt_at, link.attempts, link.first_failure_at = None, 0, None
    now = utcnow()
    if link.due_at is not None and link.due_at > now - timedelta(seconds=OVERDUE_SECONDS):
        notes.append(entry(integration.id, event.event_type, "coalesced",
                           f"QALITA issue {event.issue.id}: joins the flush due at "
                           f"{link.due_at.isoformat()}", **context))
        return None
    # A window long overdue lost its flush with a worker: this event schedules a new one, so
    # even a deployment without beat recovers at the issue's next change.
    link.due_at = now + timedelta(seconds=debounce_seconds)
    return Due(link.id, link.due_at)


def _apply_issue(integration: Integration, mappings: MappingSet, link: IssueLink,
                 event: QalitaEvent, notes: list[dict[str, Any]]) -> bool:
    version = event.issue.version
    deleted = event.event_type == "issue.deleted"
    current: dict[str, Any] = link.desired or {}
    if version < link.desired_version or (
            version == link.desired_version and link.desired is not None
            and (current.get("deleted") or not deleted)):
        decision = "stale" if version < link.desired_version else "duplicate"
        notes.append(entry(integration.id, event.event_type, decision,
                           f"QALITA issue {event.issue.id} version {version}: already have "
                           f"version {link.desired_version}", link_id=link.id,
                           event_id=event.event_id))
        return False
    issue = current.get("issue") if deleted and current.get("issue") else dump_issue(event.issue)
    link.desired = {"issue": issue, "deleted": deleted}
    link.desired_version = version
    if link.jira_issue_id is None and not deleted:
        # Routing decides where the issue is created; once it exists it stays where it is.
        route = mappings.route(event.issue, integration.project_key or "",
                               integration.issue_type or "")
        link.jira_project_key, link.jira_issue_type = route.project_key, route.issue_type
    notes.append(entry(integration.id, event.event_type, "accepted",
                       f"QALITA issue {event.issue.id} version {version}", link_id=link.id,
                       event_id=event.event_id))
    return True


def _apply_comment(session: Session, link: IssueLink, event: QalitaEvent,
                   notes: list[dict[str, Any]]) -> bool:
    comment = event.comment
    assert comment is not None  # the schema requires it on comment events
    session.execute(insert(session, CommentLink).values(
        link_id=link.id, origin="qalita", qalita_comment_id=comment.id, state=C_PENDING,
        created_at=utcnow(), updated_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["link_id", "qalita_comment_id"]))
    row = session.scalars(select(CommentLink).where(
        CommentLink.link_id == link.id, CommentLink.qalita_comment_id == comment.id)
        .with_for_update()).one()
    author = comment.author.name or comment.author.email if comment.author else None
    if row.state in (C_DELETED, C_TOMBSTONE):
        decision, changed = "ignored", False
    elif event.event_type == "issue.comment_deleted":
        known = row.jira_comment_id is not None or row.attempted_at is not None
        row.state = C_DELETING if known else C_TOMBSTONE
        decision, changed = ("accepted" if known else "tombstone"), known
    elif row.desired_at is not None and (
            event.event_type == "issue.comment_created" or event.occurred_at < row.desired_at):
        # A create after an edit, or an older edit, must not bring back older text.
        decision, changed = "stale", False
    else:
        row.body, row.author, row.desired_at = comment.body or "", author, event.occurred_at
        decision, changed = "accepted", True
    notes.append(entry(link.integration_id, event.event_type, decision,
                       f"QALITA comment {comment.id} of issue {event.issue.id}",
                       link_id=link.id, event_id=event.event_id))
    return changed
