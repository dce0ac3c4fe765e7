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

from jira_sync.events.qalita_event import Comment, QalitaEvent, dump_issue
from jira_sync.mapping import MappingSet
from jira_sync.mapping.inbound import text_key
from jira_sync.store.models import LIVE_LINK, CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync import echoes
from jira_sync.sync.journal import entry, write

# Lifecycle of a link. Closed, tombstoned and severed links take no more changes from either
# side. A severing link is as good as severed for both sides; its one remaining flush takes
# the marker label off its Jira issue (outbound.flush_link), then it is severed: the row stays
# with its history, outside the unique keys (``LIVE_LINK``), so the issue can be linked anew.
PENDING, LINKED, BLOCKED, FAILED, CLOSED, TOMBSTONED, SEVERING, SEVERED = (
    "pending", "linked", "blocked", "failed", "closed", "tombstoned", "severing", "severed")
FINAL_STATES = (CLOSED, TOMBSTONED, SEVERING, SEVERED)
# A flush this late was lost (its worker died holding the countdown), not merely queued.
OVERDUE_SECONDS = 60.0
# Comment links: to post, in step, to delete from Jira, deleted, or deleted before posting.
C_PENDING, C_POSTED, C_DELETING, C_DELETED, C_TOMBSTONE = (
    "pending", "posted", "deleting", "deleted", "tombstone")
# Where a mirrored comment was written first: that side owns it.
JIRA_ORIGIN = "jira"


@dataclass(frozen=True)
class Due:
    """Flush ``link_id`` at ``at``: the caller schedules it (a countdown task). ``inbound``
    flushes write Jira's changes to QALITA, the others QALITA's to Jira."""

    link_id: int
    at: datetime
    inbound: bool = False


def apply_events(session: Session, integration: Integration, mappings: MappingSet,
                 events: Sequence[QalitaEvent], debounce_seconds: float, *,
                 relink: bool = False) -> list[Due]:
    """Fold ``events`` (one tenant's, in arrival order) into their links; returns the flushes
    of the debounce windows they start, one per link at most.

    An issue whose links were all severed gets no new one from an event (an operator cut it
    off); ``relink`` is Create External Issue's way of linking it again.
    """
    links = _links_for(session, integration, events, relink)
    expected = echoes.Expected(session, [link.id for link in links.values()], echoes.QALITA)
    notes: list[dict[str, Any]] = []
    started: dict[int, Due] = {}
    for event in events:
        due = _fold(session, integration, mappings, links[event.issue.id], event,
                    debounce_seconds, notes, expected)
        if due is not None:
            started[due.link_id] = due
    expected.close()
    write(session, notes)
    return list(started.values())


def _links_for(session: Session, integration: Integration, events: Sequence[QalitaEvent],
               relink: bool) -> dict[int, IssueLink]:
    """The link rows of the events' issues, created when missing and locked for this
    transaction: the live link of each, else (``relink`` unset) its newest severed one.

    The unique key collapses concurrent first events for one issue into one row. Rows are
    inserted in key order and locked in id order, so two batches sharing issues wait for each
    other instead of deadlocking.
    """
    tenants = {event.tenant for event in events}
    assert len(tenants) == 1, "one tenant per call: an integration serves one tenant"
    tenant = tenants.pop()
    issue_ids = sorted({event.issue.id for event in events})
    ours = (IssueLink.integration_id == integration.id, IssueLink.tenant == tenant,
            IssueLink.qalita_issue_id.in_(issue_ids))
    # Severed rows are outside the unique key, so the insert would not collapse on them.
    severed = set() if relink else set(session.scalars(select(IssueLink.qalita_issue_id).where(
        *ours, IssueLink.state == SEVERED)))
    now = utcnow()
    fresh = [issue_id for issue_id in issue_ids if issue_id not in severed]
    if fresh:
        session.execute(insert(session, IssueLink).values([dict(
            integration_id=integration.id, tenant=tenant, qalita_issue_id=issue_id,
            state=PENDING, desired_version=0, applied_version=0, written={},
            managed_labels=[], attempts=0, created_at=now, updated_at=now)
            for issue_id in fresh],
        ).on_conflict_do_nothing(index_elements=["tenant", "qalita_issue_id", "integration_id"],
                                 index_where=LIVE_LINK))
    links: dict[int, IssueLink] = {}
    for link in session.scalars(select(IssueLink).where(*ours).order_by(IssueLink.id)
                                .with_for_update()):
        known = links.get(link.qalita_issue_id)
        if known is None or known.state == SEVERED:
            links[link.qalita_issue_id] = link
    return links


def _fold(session: Session, integration: Integration, mappings: MappingSet, link: IssueLink,
          event: QalitaEvent, debounce_seconds: float, notes: list[dict[str, Any]],
          expected: echoes.Expected) -> Due | None:
    """Fold one event into its link; returns when to flush if this starts a debounce window."""
    context = {"link_id": link.id, "event_id": event.event_id}
    if link.state in FINAL_STATES:
        hint = "; Create External Issue links it again" if link.state == SEVERED else ""
        notes.append(entry(integration.id, event.event_type, "ignored",
                           f"QALITA issue {event.issue.id}: link is {link.state}{hint}",
                           **context))
        return None
    if event.is_comment:
        changed = _apply_comment(session, link, event, notes)
    else:
        changed = _apply_issue(integration, mappings, link, event, notes, expected)
    if not changed or link.desired is None:
        return None
    if link.state in (BLOCKED, FAILED):  # New input deserves a new attempt.
        try_again(link)
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


def try_again(link: IssueLink) -> None:
    """A blocked or failed link is worked on again, from the start of its backoff."""
    link.state, link.state_reason = (LINKED if link.jira_issue_id else PENDING), None
    link.next_attempt_at, link.attempts, link.first_failure_at = None, 0, None


# The QALITA fields the inbound sync writes, as events show them, and their PUT keys.
WRITTEN_BACK = {"status": "status", "title": "title", "description": "description",
                "owner": "assignee_email", "tags": "labels"}


def _shown(issue: dict[str, Any], field: str) -> Any:
    if field == "owner":
        return ((issue.get("owner") or {}).get("email") or "").lower() or None
    if field == "tags":
        return sorted(issue.get("tags") or [])
    return issue.get(field)


def _apply_issue(integration: Integration, mappings: MappingSet, link: IssueLink,
                 event: QalitaEvent, notes: list[dict[str, Any]],
                 expected: echoes.Expected) -> bool:
    """Take the snapshot if it is newer; False when it changes nothing outbound must write
    (stale, a duplicate, or only the echo of what jira-sync wrote to QALITA)."""
    version = event.issue.version
    deleted = event.event_type == "issue.deleted"
    current: dict[str, Any] = link.desired or {}
    if version < link.desired_version or (
            version == link.desired_version and link.desired is not None
            and (current.get("deleted") or not deleted)):
        decision = "stale" if version < link.desired_version else "duplicate"
        message = f"already have version {link.desired_version}"
        if decision == "duplicate" and not deleted:
            # QALITA's answer to an inbound write already gave this version: its event is
            # that write's echo, and uses up what it matches.
            known = dump_issue(event.issue)
            echoed = [field for field, key in WRITTEN_BACK.items()
                      if expected.consume(link.id, key, _shown(known, field))]
            if echoed:
                decision, message = "echo", (f"the echo of jira-sync's own write "
                                             f"({', '.join(echoed)}); nothing to write to Jira")
        notes.append(entry(integration.id, event.event_type, decision,
                           f"QALITA issue {event.issue.id} version {version}: {message}",
                           link_id=link.id, event_id=event.event_id))
        return False
    issue = current.get("issue") if deleted and current.get("issue") else dump_issue(event.issue)
    before = current.get("issue")
    changed = dict(current.get("changed") or {})
    echoed, real = [], []
    for field, key in WRITTEN_BACK.items():
        same = before is not None and _shown(before, field) == _shown(issue, field)
        # Matched even when unchanged: the inbound flush records its write as QALITA's state
        # before the event about it comes back.
        if before is not None and not deleted and expected.consume(link.id, key,
                                                                   _shown(issue, field)):
            echoed.append(field)
        elif not same:
            real.append(field)
            changed[field] = event.occurred_at.isoformat()
    link.desired = {"issue": issue, "deleted": deleted, "changed": changed}
    previous_version, link.desired_version = link.desired_version, version
    if link.jira_issue_id is None and not deleted:
        # Routing decides where the issue is created; once it exists it stays where it is.
        route = mappings.route(event.issue, integration.project_key or "",
                               integration.issue_type or "")
        link.jira_project_key, link.jira_issue_type = route.project_key, route.issue_type
    others = before is not None and any(
        before.get(k) != issue.get(k) for k in issue if k not in (*WRITTEN_BACK, "version",
                                                                 "updated_at"))
    if echoed and not real and not others:
        notes.append(entry(integration.id, event.event_type, "echo",
                           f"QALITA issue {event.issue.id} version {version}: the echo of "
                           f"jira-sync's own write ({', '.join(echoed)}); nothing to write "
                           "to Jira", link_id=link.id, event_id=event.event_id))
        if link.applied_version == previous_version and link.due_at is None \
                and link.next_attempt_at is None and link.lease_owner is None:
            link.applied_version = version  # in step already: Jira holds these values
        return False
    notes.append(entry(integration.id, event.event_type, "accepted",
                       f"QALITA issue {event.issue.id} version {version}", link_id=link.id,
                       event_id=event.event_id))
    return True


def _posted_from_jira(session: Session, link: IssueLink,
                      comment: Comment) -> CommentLink | None:
    """The Jira comment jira-sync posted to QALITA that this QALITA comment is: by QALITA's
    id, by the external id QALITA may echo, or a post still waiting for its answer whose text
    it has (a reserved link is what lets an echo beat the answer)."""
    jira_rows = select(CommentLink).where(CommentLink.link_id == link.id,
                                          CommentLink.origin == JIRA_ORIGIN)
    found = session.scalars(jira_rows.where(
        CommentLink.qalita_comment_id == comment.id)).one_or_none()
    external = comment.external_id or ""
    if found is None and external.startswith("jira:"):
        found = session.scalars(jira_rows.where(
            CommentLink.jira_comment_id == external.removeprefix("jira:"))).one_or_none()
    if found is None:
        key = text_key(comment.body)
        found = next((row for row in session.scalars(jira_rows.where(
            CommentLink.qalita_comment_id.is_(None), CommentLink.attempted_at.is_not(None)))
            if text_key(row.body) == key), None)
    return found


def _apply_comment(session: Session, link: IssueLink, event: QalitaEvent,
                   notes: list[dict[str, Any]]) -> bool:
    comment = event.comment
    assert comment is not None  # the schema requires it on comment events
    posted = _posted_from_jira(session, link, comment)
    if posted is not None:
        if posted.qalita_comment_id is None:
            posted.qalita_comment_id = comment.id  # the echo beat the POST's answer
        notes.append(entry(link.integration_id, event.event_type, "echo",
                           f"QALITA comment {comment.id} is Jira comment "
                           f"{posted.jira_comment_id}, written by jira-sync; Jira owns it",
                           link_id=link.id, event_id=event.event_id))
        return False
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
