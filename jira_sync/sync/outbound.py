"""The flush: bring one link's Jira issue to its desired state with the fewest calls.

A flush leases the link, compares the desired snapshot with the per-field fingerprints of
what it last wrote, and makes only the calls that close the difference: one edit for fields
and labels, transitions through the workflow planner, then comments. Running it twice changes
nothing the second time. No database transaction stays open across a Jira call; progress is
saved as it is made, so a failure part-way never repeats a write that already landed.

Links without a Jira issue go through ``creates`` (bulk create). Failures become state:
transient ones park the link with backoff, permanent ones dead-letter it, a workflow that
cannot be walked blocks it with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jira_sync.events.qalita_event import load_issue
from jira_sync.jira.client import JiraClient
from jira_sync.jira.workflow import WorkflowBlocked, move_to_category
from jira_sync.mapping import DesiredIssue, Mapping, comment_text, desired_issue, marker_label
from jira_sync.mapping.issue import find_comment_marker
from jira_sync.remote import NotFound, PermanentError, RemoteError, TransientError
from jira_sync.render import Document, adf_to_text, from_text, to_adf, to_wiki, wiki_to_text
from jira_sync.store.models import CommentLink, Integration, IssueLink, UserIdentity
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync import leases
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import dead_letter, log
from jira_sync.sync.state import (
    BLOCKED,
    C_DELETED,
    C_DELETING,
    C_PENDING,
    C_POSTED,
    CLOSED,
    FAILED,
    FINAL_STATES,
    LINKED,
    PENDING,
    TOMBSTONED,
    Due,
)

logger = logging.getLogger("jira_sync.outbound")
# A flush that finds the link leased by another looks again this soon (or when the lease ends).
BUSY_RETRY_SECONDS = 2.0
DELETED_NOTE = "The QALITA issue was deleted; jira-sync no longer updates this issue."
# An unresolvable owner is looked up again after this long, not at every flush.
IDENTITY_RECHECK = timedelta(hours=12)


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def rich_text(client: JiraClient, doc: Document) -> Any:
    """ADF on Cloud, wiki markup on Server/DC: the only place the two differ for the flush."""
    return to_adf(doc) if client.is_cloud else to_wiki(doc)


def plain_text(client: JiraClient, body: Any) -> str:
    return adf_to_text(body) if client.is_cloud else wiki_to_text(body)


@dataclass
class Work:
    """A leased link, detached from its session, and what the flush learns as it goes."""

    link_id: int
    owner: str
    integration: Integration
    tenant: str
    qalita_issue_id: int
    jira_issue_id: str | None
    jira_issue_key: str | None
    project_key: str | None
    issue_type: str | None
    desired: dict[str, Any] | None
    desired_version: int
    create_attempted_at: datetime | None
    written: dict[str, Any] = field(default_factory=dict)
    managed_labels: list[str] = field(default_factory=list)
    comments: list[CommentLink] = field(default_factory=list)
    # Log rows written with the next save, so the log and the link's state commit together.
    notes: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    # Set when the flush learnt something that needs another pass at once (an adopted issue).
    again: bool = False
    # Set once the link's outcome is written and its lease released.
    done: bool = False

    @property
    def marker(self) -> str:
        return marker_label(self.tenant, self.qalita_issue_id)

    @classmethod
    def of(cls, link: IssueLink, owner: str, integration: Integration) -> Work:
        return cls(link.id, owner, integration, link.tenant, link.qalita_issue_id,
                   link.jira_issue_id, link.jira_issue_key, link.jira_project_key,
                   link.jira_issue_type, link.desired, link.desired_version,
                   link.create_attempted_at, dict(link.written or {}),
                   list(link.managed_labels or []))

    def want(self, mapping: Mapping) -> DesiredIssue:
        assert self.desired is not None
        return desired_issue(mapping, load_issue(self.desired["issue"]), self.tenant)


def flush_link(ctx: SyncContext, link_id: int) -> list[Due]:
    """Flush one link; returns the flushes to schedule next (parked retries, follow-ups)."""
    from jira_sync.sync import creates  # creates builds on this module

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


def look_again_at(link: IssueLink, now: datetime) -> datetime:
    """When a flush that found the link leased (or parked) should try again: when that may be
    over, but soon, since a live holder usually finishes in well under a lease."""
    until = max(link.lease_expires_at or now, link.next_attempt_at or now)
    wait = min(max((until - now).total_seconds(), 0.2), BUSY_RETRY_SECONDS)
    return now + timedelta(seconds=wait)


def unexpected(exc: Exception) -> TransientError:
    """A bug or a broken setting, treated as transient: retried with backoff, then a dead
    letter past the maximum age, rather than dropping the link."""
    return TransientError(f"unexpected {type(exc).__name__}: {str(exc)[:300]}")


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


class LeaseLost(Exception):
    """Another flush took the link over (this one outlived its lease): stop writing."""


def renew(ctx: SyncContext, work: Work) -> None:
    """Extend the lease before a Jira write; a flush that lost it must not write at all."""
    with ctx.database.unit_of_work() as session:
        if not leases.renew(session, work.link_id, work.owner, ctx.timings.lease_seconds):
            raise LeaseLost(work.link_id)


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


def sync_comments(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work) -> None:
    """Post, edit and delete the QALITA comments of the link, each at most once."""
    issue = work.jira_issue_id
    assert issue is not None
    rows = work.comments
    existing: list[dict[str, Any]] | None = None

    def find(comment_id: int) -> dict[str, Any] | None:
        nonlocal existing
        if existing is None:
            existing = list(client.comments(issue))
        return next((c for c in existing
                     if find_comment_marker(plain_text(client, c.get("body"))) == comment_id),
                    None)

    for row in rows:
        assert row.qalita_comment_id is not None
        text = comment_text(mapping, row.qalita_comment_id, row.author, row.body or "")
        print_ = fingerprint(text)
        if row.state == C_DELETING:
            target = row.jira_comment_id or (
                (found := find(row.qalita_comment_id)) and str(found["id"]))
            if target:
                renew(ctx, work)
                client.delete_comment(issue, target)
            _save_comment(ctx, row.id, state=C_DELETED)
            journal(ctx, work, "comment", "applied",
                    f"deleted QALITA comment {row.qalita_comment_id} from {work.jira_issue_key}")
            continue
        if row.jira_comment_id is None and row.attempted_at is not None:
            found = find(row.qalita_comment_id)
            if found is not None:  # The earlier post landed: adopt it, never post twice.
                row.jira_comment_id = str(found["id"])
                row.body_fingerprint = fingerprint(plain_text(client, found.get("body")))
                _posted(ctx, row.id, row.jira_comment_id, row.body_fingerprint)
        if row.jira_comment_id is None:
            # Claimed only while still wanted: a delete taken in meanwhile wins.
            if not _claim_comment(ctx, row.id):
                continue
            renew(ctx, work)
            posted = client.add_comment(issue, rich_text(client, from_text(text)))
            _posted(ctx, row.id, str(posted["id"]), print_)
            journal(ctx, work, "comment", "applied",
                    f"posted QALITA comment {row.qalita_comment_id} on {work.jira_issue_key}")
        elif row.body_fingerprint != print_:
            renew(ctx, work)
            try:
                client.edit_comment(issue, row.jira_comment_id,
                                    rich_text(client, from_text(text)))
            except NotFound:  # Deleted in Jira by someone: that deletion stands.
                _save_comment(ctx, row.id, state=C_DELETED)
                journal(ctx, work, "comment", "skipped", f"QALITA comment "
                        f"{row.qalita_comment_id} was deleted in Jira; its edit is not posted")
                continue
            _posted(ctx, row.id, row.jira_comment_id, print_)
            journal(ctx, work, "comment", "applied",
                    f"edited QALITA comment {row.qalita_comment_id} on {work.jira_issue_key}")


def _claim_comment(ctx: SyncContext, row_id: int) -> bool:
    with ctx.database.unit_of_work() as session:
        return session.execute(
            update(CommentLink).where(CommentLink.id == row_id, CommentLink.state == C_PENDING)
            .values(attempted_at=utcnow())).rowcount == 1


def _posted(ctx: SyncContext, row_id: int, jira_comment_id: str, body_print: str) -> None:
    """Record the Jira comment; the state becomes posted only if no delete came meanwhile
    (a deleting row keeps its state, and now knows what to delete)."""
    with ctx.database.unit_of_work() as session:
        session.execute(update(CommentLink).where(CommentLink.id == row_id).values(
            jira_comment_id=jira_comment_id, body_fingerprint=body_print))
        session.execute(update(CommentLink).where(
            CommentLink.id == row_id, CommentLink.state.in_((C_PENDING, C_POSTED)))
            .values(state=C_POSTED))


def _save_comment(ctx: SyncContext, row_id: int, **values: Any) -> None:
    with ctx.database.unit_of_work() as session:
        row = session.get(CommentLink, row_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)


def resolve_user(ctx: SyncContext, client: JiraClient, integration_id: int,
                 email: str) -> dict[str, Any] | None:
    """The Jira user behind a QALITA e-mail, through the identity map, then user search.

    Unresolvable is not an error (the issue stays unassigned): no match, several, or a search
    this account may not make all count as unresolved, and are asked again only later.
    """
    key = email.strip().lower()
    with ctx.database.unit_of_work() as session:
        known = session.scalar(select(UserIdentity).where(
            UserIdentity.integration_id == integration_id, UserIdentity.email == key))
        if known is not None and (known.resolved or known.checked_at > utcnow() - IDENTITY_RECHECK):
            if not known.resolved:
                return None
            return {"accountId": known.jira_account_id, "name": known.jira_username}
    try:
        user = client.find_user(key)
    except PermanentError:
        user = None
    values = {"resolved": user is not None, "checked_at": utcnow(),
              "jira_account_id": user and user.get("accountId"),
              "jira_username": user and user.get("name"),
              "display_name": user and user.get("displayName")}
    with ctx.database.unit_of_work() as session:
        session.execute(insert(session, UserIdentity).values(
            integration_id=integration_id, email=key, **values,
        ).on_conflict_do_update(index_elements=["integration_id", "email"], set_=values))
    return user


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
    if found:
        issue = found[0]
        work.jira_issue_id, work.jira_issue_key = str(issue["id"]), issue.get("key")
        save_progress(ctx, work, jira_issue_id=work.jira_issue_id,
                      jira_issue_key=work.jira_issue_key)
        journal(ctx, work, "missing", "adopted",
                f"issue moved: now {work.jira_issue_key}, found by its marker")
        work.again = True  # what hit the 404 is written at once to the adopted issue
        return
    if mapping.on_jira_delete == "recreate":
        save_progress(ctx, work, jira_issue_id=None, jira_issue_key=None, written={},
                      managed_labels=[], create_attempted_at=None, state=PENDING,
                      due_at=utcnow())
        with ctx.database.unit_of_work() as session:
            session.execute(update(CommentLink).where(
                CommentLink.link_id == work.link_id, CommentLink.state == C_POSTED)
                .values(state=C_PENDING, jira_comment_id=None, attempted_at=None))
        journal(ctx, work, "missing", "recreate",
                f"{work.jira_issue_key} was deleted in Jira; creating it again")
        work.jira_issue_id = None
    else:
        save_progress(ctx, work, state=TOMBSTONED, state_reason="deleted in Jira")
        journal(ctx, work, "missing", "tombstoned",
                f"{work.jira_issue_key} was deleted in Jira; the link is closed")


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


def save_progress(ctx: SyncContext, work: Work, **values: Any) -> None:
    """Record what now holds in Jira at once, so a later failure never repeats it."""
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        if link is not None:
            persist(session, work, link)
            for name, value in values.items():
                setattr(link, name, value)


def persist(session: Session, work: Work, link: IssueLink) -> None:
    """What the flush wrote so far, and its log rows, into the session's transaction."""
    link.written, link.managed_labels = work.written, work.managed_labels
    for action, decision, message, details in work.notes:
        log(session, work.integration.id, action, decision, message, link_id=work.link_id,
            **details)
    work.notes.clear()


def journal(ctx: SyncContext, work: Work, action: str, decision: str, message: str,
            **details: Any) -> None:
    """Note a decision; it is logged with the next save of the link."""
    work.notes.append((action, decision, message, details))


def finish(ctx: SyncContext, work: Work, *, state: str | None = None, reason: str | None = None,
           decision: str | None = None, retry_now: bool = False) -> list[Due]:
    """Release the lease; a change that arrived during the flush gets its own flush."""
    work.done = True
    now = utcnow()
    retry_now = retry_now or work.again
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        if link is None:
            return []
        if link.lease_owner != work.owner and link.lease_owner is not None:
            return []  # taken over by another flush, which now owns the link's state
        persist(session, work, link)
        if link.state not in FINAL_STATES:
            if state is not None:
                link.state, link.state_reason = state, reason
            elif link.state != PENDING or link.jira_issue_id is not None:
                link.state, link.state_reason = (LINKED if link.jira_issue_id else PENDING), None
            if state is None and not retry_now:
                link.applied_version = max(link.applied_version, work.desired_version)
                link.attempts, link.first_failure_at, link.next_attempt_at = 0, None, None
        if decision:
            log(session, work.integration.id, "flush", decision, reason or decision,
                link_id=work.link_id, level="warning")
        leases.release(session, [work.link_id], work.owner)
        if link.state in FINAL_STATES:
            return []
        if retry_now:
            link.due_at = now  # due, so the flush it schedules is not taken for a stale one
            return [Due(link.id, now)]
        if link.due_at is not None:
            return [Due(link.id, max(link.due_at, now))]
        if link.jira_issue_id is None and link.state == PENDING and link.desired is not None:
            return [Due(link.id, now)]  # recreate after a deletion in Jira
    return []


def park(ctx: SyncContext, work: Work, error: TransientError) -> list[Due]:
    """Wait with capped, jittered backoff (never less than Retry-After), then try again;
    past the maximum age the link becomes a dead letter."""
    work.done = True
    now = utcnow()
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        if link is None:
            return []
        persist(session, work, link)
        link.attempts += 1
        link.first_failure_at = link.first_failure_at or now
        age = (now - link.first_failure_at).total_seconds()
        if age > ctx.timings.max_retry_age_seconds:
            leases.release(session, [work.link_id], work.owner)
            letter_for(session, work, error, "retries_exhausted",
                       f"still failing after {age / 3600:.1f} h: {error.reason}")
            link.state, link.state_reason = FAILED, error.reason
            return []
        delay = min(ctx.timings.backoff_cap_seconds,
                    ctx.timings.backoff_base_seconds * 2 ** min(link.attempts - 1, 30))
        delay = max(delay * (0.5 + random.random() / 2), error.retry_after or 0.0)
        link.next_attempt_at = now + timedelta(seconds=delay)
        log(session, work.integration.id, "flush",
            "rate_limited" if error.status == 429 else "retry",
            f"attempt {link.attempts} failed, next in {delay:.1f}s: {error.reason}",
            link_id=work.link_id, level="warning", status=error.status)
        leases.release(session, [work.link_id], work.owner)
        return [Due(link.id, link.next_attempt_at)]


def fail(ctx: SyncContext, work: Work, error: RemoteError) -> list[Due]:
    work.done = True
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        leases.release(session, [work.link_id], work.owner)
        if link is None:
            return []
        persist(session, work, link)
        letter_for(session, work, error, "jira_rejected", error.reason)
        link.state, link.state_reason = FAILED, error.reason
    return []


def letter_for(session: Session, work: Work, error: RemoteError, kind: str, reason: str) -> None:
    dead_letter(session, kind, reason, integration_id=work.integration.id,
                link_id=work.link_id, payload=work.desired,
                request={"jira_issue": work.jira_issue_key, "project": work.project_key,
                         "desired_version": work.desired_version}, error=error)
