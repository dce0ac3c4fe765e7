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
from jira_sync.mapping.inbound import description_text, jira_text, normalize, text_key
from jira_sync.remote import NotFound, PermanentError, TransientError
from jira_sync.render import from_text
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import creates, echoes, leases
from jira_sync.sync.comments import sync_comments
from jira_sync.sync.conflicts import JIRA, QALITA, mark_synced, settle, winner
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import resolve_user
from jira_sync.sync.jira_changes import record_write
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
    """One edit for whatever changed among fields and labels, and what Jira lacks of it."""
    want = work.want(mapping)
    issue = work.jira_issue_id
    assert issue is not None
    fields: dict[str, Any] = {}
    written = dict(work.written)
    sent: list[tuple[str, object]] = []  # what the echoes will carry
    edits = _Edits(ctx, mapping, work, written)
    summary_print = fingerprint(want.summary)
    if edits.wanted("summary", summary_print != written.get("summary"),
                    text_key(_view(work, "summary")) == text_key(want.summary)
                    if _view(work, "summary") is not None else False, summary_print):
        fields["summary"], written["summary"] = want.summary, summary_print
        sent.append(("summary", want.summary))
    description = rich_text(client, want.description)
    text = jira_text(description)
    seen_text = (_view(work, "description") or {}).get("text")
    if edits.wanted("description", fingerprint(description) != written.get("description"),
                    seen_text is not None and text_key(seen_text) == text_key(text),
                    fingerprint(description)):
        fields["description"], written["description"] = description, fingerprint(description)
        sent.append(("description", text))
    if want.priority and want.priority != written.get("priority"):
        fields["priority"], written["priority"] = {"name": want.priority}, want.priority
    components = sorted(want.components)
    if components != written.get("components", []):
        fields["components"] = [{"name": name} for name in components]
        written["components"] = components
    ref = None
    if want.assignee_email and want.assignee_email != written.get("assignee"):
        user = resolve_user(ctx, client, work.integration.id, want.assignee_email)
        ref = user and (user.get("accountId") if client.is_cloud else user.get("name"))
        # An unresolvable owner never clears an existing assignee.
        if user is not None and edits.wanted(
                "assignee", True, "assignee" in work.view and _view(work, "assignee") == ref,
                want.assignee_email):
            fields["assignee"], written["assignee"] = client.user_ref(user), want.assignee_email
            sent.append(("assignee", ref))
    operations = _label_operations(mapping, work, want, edits)
    sent += [("labels", f"{'+' if 'add' in op else '-'}{next(iter(op.values()))}")
             for op in operations]
    if fields or operations:
        _expect(ctx, work, sent)
        renew(ctx, work)
        sent_at = utcnow()
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
        work.written = written
        work.managed_labels = sorted(set(want.labels) | {work.marker})
        record_write(ctx, work.link_id, sent_at, {
            field: value for field, value in (
                ("summary", normalize(want.summary)),
                ("description", {"text": normalize(text), "top": description_text(description)}),
                ("assignee", fields.get("assignee") and ref),
            ) if field in fields}, [value for field, value in sent if field == "labels"])
        mark_synced(work, *edits.synced, *(f for f in ("summary", "description", "assignee")
                                             if f in fields),
                    *(["ignored"] if ("labels", f"+{mapping.ignored_label}") in sent
                      or ("labels", f"-{mapping.ignored_label}") in sent else []))
        journal(ctx, work, "edit", "applied",
                f"edited {work.jira_issue_key}: {', '.join(sorted(fields)) or 'labels'}"
                + (f" (labels {len(operations)} changes)" if operations and fields else ""))
        save_progress(ctx, work)  # a later failure never repeats the edit
    else:
        work.written = written
        if edits.adopted:
            work.managed_labels = sorted(set(want.labels) | {work.marker})
        mark_synced(work, *edits.synced)
        journal(ctx, work, "edit", "unchanged", f"{work.jira_issue_key} already in step")
    edits.close()
    return want


class _Edits:
    """Whether each changed field is written: not when Jira already holds it (a person made
    the same change), nor when Jira's own later change wins the conflict (QALITA is told of
    it instead); a conflict QALITA wins drops Jira's pending change."""

    def __init__(self, ctx: SyncContext, mapping: Mapping, work: Work,
                 written: dict[str, Any]) -> None:
        self.ctx, self.mapping, self.work, self.written = ctx, mapping, work, written
        self.synced: list[str] = []
        self.dropped: dict[str, Any] = {}
        self.adopted = False

    def wanted(self, field: str, changed: bool, in_jira: bool, adopted_value: Any) -> bool:
        if not changed:
            return False
        verdict = winner(self.mapping, self.work, field)
        if verdict == JIRA:
            journal(self.ctx, self.work, "edit", "conflict", f"{field}: both sides changed it; "
                    "Jira's later change is kept and goes to QALITA")
        elif verdict == QALITA:
            journal(self.ctx, self.work, "edit", "conflict", f"{field}: both sides changed it; "
                    "QALITA's value overwrites Jira's")
            self.dropped[field] = self.work.view[field]
        if verdict == JIRA or (in_jira and verdict is None):
            self._adopt(field, adopted_value)
            return False
        return True

    def _adopt(self, field: str, value: Any) -> None:
        """Record as written what Jira already holds (or what Jira's change replaces)."""
        key = {"ignored": None}.get(field, field)
        if key is not None:
            self.written[key] = value
        self.synced.append(field)
        self.adopted = True

    def close(self) -> None:
        settle(self.ctx, self.work.link_id, self.dropped)


def _label_operations(mapping: Mapping, work: Work, want: DesiredIssue,
                      edits: _Edits) -> list[dict[str, str]]:
    """Add what is wanted, remove only what jira-sync wrote (never the marker), and leave out
    what Jira's labels already show."""
    wanted, managed = set(want.labels), set(work.managed_labels)
    labels = (work.view.get("labels") or {}).get("v")
    have = set(labels) if labels is not None else None
    operations = []
    for label, add in [*((x, True) for x in sorted(wanted - managed)),
                       *((x, False) for x in sorted(managed - wanted - {work.marker}))]:
        in_jira = have is not None and (label in have) == add
        if label == mapping.ignored_label:
            if not edits.wanted("ignored", True, in_jira, None):
                continue
        elif in_jira:
            edits.adopted = True
            continue
        operations.append({"add" if add else "remove": label})
    return operations


def _view(work: Work, field: str) -> Any:
    return (work.view.get(field) or {}).get("v")


def _expect(ctx: SyncContext, work: Work, sent: list[tuple[str, object]]) -> None:
    """Record what is about to be written, before it is: its echo may beat the answer."""
    if not sent:
        return
    with ctx.database.unit_of_work() as session:
        echoes.expect(session, work.link_id, echoes.JIRA, sent, ctx.timings.echo_ttl_seconds)


def adopt(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work,
          field: str) -> None:
    """Jira's change of ``field`` beat QALITA's: outbound must not write QALITA's older value,
    so it is recorded as written (QALITA's echo of Jira's value then finds Jira holding it)."""
    want = work.want(mapping)
    if field == "status":
        work.written = {**work.written, "status": want.status_category}
    elif field == "summary":
        work.written = {**work.written, "summary": fingerprint(want.summary)}
    elif field == "description":
        work.written = {**work.written,
                        "description": fingerprint(rich_text(client, want.description))}
    elif field == "assignee":
        work.written = {**work.written, "assignee": want.assignee_email}
    elif field == "ignored":
        labels = set(work.managed_labels)
        labels = labels | {mapping.ignored_label} if want.ignored \
            else labels - {mapping.ignored_label}
        work.managed_labels = sorted(labels)
    mark_synced(work, field)


def move_status(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work,
                category: str | None) -> None:
    if category is None or category == work.written.get("status"):
        return
    assert work.jira_issue_id is not None
    edits = _Edits(ctx, mapping, work, dict(work.written))
    seen = (_view(work, "status") or {}).get("category")
    if not edits.wanted("status", True, seen == category, category):
        work.written = {**edits.written}
        mark_synced(work, *edits.synced)
        save_progress(ctx, work)
        return
    edits.close()

    def before_hop(to: Any) -> None:
        renew(ctx, work)
        _expect(ctx, work, [("status", (to.get("statusCategory") or {}).get("key"))])

    sent_at = utcnow()
    try:
        hops = move_to_category(client, work.jira_issue_id, category, graph=ctx.graph,
                                field_defaults=mapping.field_defaults,
                                before_write=before_hop)
    except WorkflowBlocked as exc:
        if exc.made:
            journal(ctx, work, "transition", "applied", f"moved {work.jira_issue_key} through "
                    f"{' -> '.join(exc.made)} before stopping")
        raise
    work.written = {**work.written, "status": category}
    mark_synced(work, "status")
    if hops:
        record_write(ctx, work.link_id, sent_at,
                     {"status": {"category": category, "name": None, "id": None}})
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
