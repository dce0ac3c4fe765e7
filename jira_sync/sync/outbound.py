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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jira_sync.events.qalita_event import load_issue
from jira_sync.jira.client import JiraClient
from jira_sync.jira.workflow import WorkflowBlocked, move_to_category
from jira_sync.mapping import DesiredIssue, Mapping, desired_issue
from jira_sync.mapping.inbound import (
    description_text,
    is_managed_label,
    jira_text,
    normalize,
    text_key,
)
from jira_sync.remote import NotFound, PermanentError, TransientError
from jira_sync.render import from_text
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import creates, echoes, leases, pauses
from jira_sync.sync.comments import comments_to_jira
from jira_sync.sync.conflicts import JIRA, QALITA, mark_synced, settle, winner
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import resolve_user
from jira_sync.sync.jira_view import record_write
from jira_sync.sync.lifecycle import handle_missing
from jira_sync.sync.outcomes import (
    LeaseLost,
    Work,
    abandon,
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
    SEVERED,
    SEVERING,
    Due,
)

logger = logging.getLogger("jira_sync.outbound")
DELETED_NOTE = "The QALITA issue was deleted; jira-sync no longer updates this issue."


def flush_link(ctx: SyncContext, link_id: int) -> list[Due]:
    """Flush one link; returns the flushes to schedule next (parked retries, follow-ups)."""
    owner = leases.new_owner()
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, link_id)
        if link is None or (link.state in FINAL_STATES and link.state != SEVERING):
            return []
        if link.due_at is None and link.next_attempt_at is None:
            # Nothing asked for this flush any more: another flush (a bulk create, or the
            # window's earlier flush) already wrote the state it was scheduled for.
            return []
        if pauses.stopped(session.get_one(Integration, link.integration_id), inbound=False):
            return []  # held: the link stays due until the hold ends (``pauses.release``)
        if link.jira_issue_id is None and link.state != SEVERING and link.desired is not None \
                and not link.desired.get("deleted"):
            group = (link.integration_id, link.jira_project_key)
            work = None
        else:
            work, later = _lease_work(ctx, session, link, owner)
            if work is None:
                return later
            # The state as the lease found it: a sever takes effect between two flushes.
            if link.state in FINAL_STATES and link.state != SEVERING:
                leases.release(session, [link.id], owner)
                return []
            severing = link.state == SEVERING
    if work is None:
        return creates.flush_creates(ctx, group[0], group[1], link_id)
    if severing:
        return _sever(ctx, work)
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
        return abandon(ctx, work)
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
        comments_to_jira(ctx, client, mapping, work)
        move_status(ctx, client, mapping, work, want.status_category)
    except NotFound:
        handle_missing(ctx, client, mapping, work)


def update_issue(ctx: SyncContext, client: JiraClient, mapping: Mapping,
                 work: Work) -> DesiredIssue:
    """One edit for whatever changed among fields and labels, and what Jira lacks of it.

    Planned against the link's view of Jira; an edit is planned again against the issue as
    Jira shows it right before, so a value a person set meanwhile (still on its way as a
    webhook) is not written again.
    """
    want = work.want(mapping)
    issue = work.jira_issue_id
    assert issue is not None
    edit = _plan_edit(ctx, client, mapping, work, want, work.view)
    if edit.fields or edit.operations:
        shown = client.get_issue(issue, fields=("summary", "description", "labels", "assignee"))
        edit = _plan_edit(ctx, client, mapping, work, want, _overlay(work.view, shown))
    fields, operations, sent, written, edits = (edit.fields, edit.operations, edit.sent,
                                                edit.written, edit.edits)
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
        ignored_sent = {("labels", f"{sign}{mapping.ignored_label}") for sign in "+-"} & set(sent)
        record_write(ctx, work.link_id, sent_at, {
            name: value for name, value in (
                ("summary", normalize(want.summary)),
                ("description", {"text": normalize(edit.text),
                                 "top": description_text(edit.description)}),
                ("assignee", fields.get("assignee") and edit.ref),
            ) if name in fields}, [value for name, value in sent if name == "labels"],
            ignored_label=mapping.ignored_label)
        mark_synced(work, *edits.synced, *(f for f in ("summary", "description", "assignee")
                                             if f in fields),
                    *(["ignored"] if ignored_sent else []))
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


@dataclass
class _Edit:
    """One planned edit: fields, label operations, and what their echoes will carry."""

    fields: dict[str, Any]
    operations: list[dict[str, str]]
    sent: list[tuple[str, object]]
    written: dict[str, Any]
    edits: _Edits
    description: Any
    text: str
    ref: str | None


def _plan_edit(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work,
               want: DesiredIssue, view: dict[str, Any]) -> _Edit:
    fields: dict[str, Any] = {}
    written = dict(work.written)
    sent: list[tuple[str, object]] = []
    edits = _Edits(ctx, mapping, work, written, view)
    summary_print = fingerprint(want.summary)
    seen_summary = _value(view, "summary")
    if edits.wanted("summary", summary_print != written.get("summary"),
                    seen_summary is not None and text_key(seen_summary) == text_key(
                        want.summary), summary_print):
        fields["summary"], written["summary"] = want.summary, summary_print
        sent.append(("summary", want.summary))
    description = rich_text(client, want.description)
    text = jira_text(description)
    seen_text = (_value(view, "description") or {}).get("text")
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
                "assignee", True, "assignee" in view and _value(view, "assignee") == ref,
                want.assignee_email):
            fields["assignee"], written["assignee"] = client.user_ref(user), want.assignee_email
            sent.append(("assignee", ref))
    operations = _label_operations(mapping, work, want, edits, view)
    sent += [("labels", f"{'+' if 'add' in op else '-'}{next(iter(op.values()))}")
             for op in operations]
    return _Edit(fields, operations, sent, written, edits, description, text, ref)


def _overlay(view: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """The view with the values Jira shows now (read just before an edit)."""
    fields = shown.get("fields") or {}
    overlay = {name: dict(entry) for name, entry in view.items()}
    assignee = fields.get("assignee") or {}
    values = {"summary": normalize(fields.get("summary")),
              "description": {"text": normalize(jira_text(fields.get("description"))),
                              "top": description_text(fields.get("description"))},
              "labels": sorted(fields.get("labels") or []),
              "assignee": assignee.get("accountId") or assignee.get("name")}
    for name, value in values.items():
        if name in fields:
            overlay[name] = {**overlay.get(name, {}), "v": value}
    return overlay


class _Edits:
    """Whether each changed field is written: not when Jira already holds it (a person made
    the same change), nor when Jira's own later change wins the conflict (QALITA is told of
    it instead); a conflict QALITA wins drops Jira's pending change. What it decides is
    logged and done at ``close``, so a plan made again leaves no trace."""

    def __init__(self, ctx: SyncContext, mapping: Mapping, work: Work,
                 written: dict[str, Any], view: dict[str, Any]) -> None:
        self.ctx, self.mapping, self.work, self.written = ctx, mapping, work, written
        self.view = view
        self.synced: list[str] = []
        self.dropped: dict[str, Any] = {}
        self.notes: list[str] = []
        self.adopted = False

    def wanted(self, field: str, changed: bool, in_jira: bool, adopted_value: Any) -> bool:
        if not changed:
            return False
        verdict = winner(self.mapping, self.work, field)
        if verdict == JIRA:
            self.notes.append(f"{field}: both sides changed it; Jira's later change is kept "
                              "and goes to QALITA")
        elif verdict == QALITA:
            self.notes.append(f"{field}: both sides changed it; QALITA's value overwrites "
                              "Jira's")
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
        for note in self.notes:
            journal(self.ctx, self.work, "edit", "conflict", note)
        settle(self.work, self.dropped)


def _label_operations(mapping: Mapping, work: Work, want: DesiredIssue, edits: _Edits,
                      view: dict[str, Any]) -> list[dict[str, str]]:
    """Add what is wanted, remove only what jira-sync wrote (never the marker), and leave out
    what Jira's labels already show.

    Tags shown as labels (``tag_labels``) are one set on two sides: Jira's own labels are
    made QALITA's tags, except where a person's change in Jira is still on its way to
    QALITA (the view's labels against the set both sides last agreed on).
    """
    entry = view.get("labels") or {}
    have = set(entry["v"]) if entry.get("v") is not None else None
    wanted, managed = set(want.labels), set(work.managed_labels)
    pairs = [*((x, True) for x in sorted(wanted - managed)),
             *((x, False) for x in sorted(managed - wanted - {work.marker}))]
    if mapping.tag_labels and have is not None:
        base = set(entry.get("base") or [])
        pairs = [(x, add) for x, add in pairs if is_managed_label(mapping, x)]
        tags = {x for x in wanted if not is_managed_label(mapping, x)}
        people = {x for x in have if not is_managed_label(mapping, x)}
        pairs += [(x, True) for x in sorted(tags - have - (base - have))]
        pairs += [(x, False) for x in sorted(people - tags - (have - base))]
    operations = []
    for label, add in pairs:
        in_jira = have is not None and (label in have) == add
        if label == mapping.ignored_label:
            if not edits.wanted("ignored", True, in_jira, None):
                continue
        elif in_jira:
            edits.adopted = True
            continue
        operations.append({"add" if add else "remove": label})
    return operations


def _value(view: dict[str, Any], field: str) -> Any:
    return (view.get(field) or {}).get("v")


def _expect(ctx: SyncContext, work: Work, sent: list[tuple[str, object]]) -> None:
    """Record what is about to be written, before it is: its echo may beat the answer."""
    if not sent:
        return
    with ctx.database.unit_of_work() as session:
        echoes.expect(session, work.link_id, echoes.JIRA, sent, ctx.timings.echo_ttl_seconds)


def adopt(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work, field: str,
          issue: dict[str, Any]) -> None:
    """Jira holds what QALITA's ``issue`` says for ``field`` (it came from Jira, or Jira's
    change won): record that as written, so outbound writes the field again only once QALITA
    changes what it renders to."""
    want = desired_issue(mapping, load_issue(issue), work.tenant)
    if field == "status":
        seen = (_value(work.view, "status") or {}).get("category")
        work.written = {**work.written, "status": seen or want.status_category}
    elif field == "summary":
        work.written = {**work.written, "summary": fingerprint(want.summary)}
    elif field == "description":
        work.written = {**work.written,
                        "description": fingerprint(rich_text(client, want.description))}
    elif field == "assignee":
        work.written = {**work.written, "assignee": want.assignee_email}
    elif field == "ignored":
        managed = set(work.managed_labels) - {mapping.ignored_label}
        work.managed_labels = sorted(managed | ({mapping.ignored_label} if want.ignored
                                                else set()) | {work.marker})


def move_status(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work,
                category: str | None) -> None:
    if category is None or category == work.written.get("status"):
        return
    assert work.jira_issue_id is not None
    edits = _Edits(ctx, mapping, work, dict(work.written), work.view)
    seen = (_value(work.view, "status") or {}).get("category")
    wanted = edits.wanted("status", True, seen == category, category)
    edits.close()
    if not wanted:
        work.written = {**edits.written}
        mark_synced(work, *edits.synced)
        save_progress(ctx, work)
        return

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


def _sever(ctx: SyncContext, work: Work) -> list[Due]:
    """The last flush of a severed link: the marker label comes off its Jira issue, so no
    later create adopts the issue by it; the issue itself stays as it is.

    Whatever Jira answers the link ends severed (marker adoption skips a severed link's
    issue anyway, so a marker that stays does no harm); only a transient failure is tried
    again, and only until the maximum retry age.
    """
    client = ctx.client(work.integration)
    level = "info"
    try:
        if work.jira_issue_id is None and work.create_attempted_at is not None:
            wake = _find_attempted(ctx, client, work)
            if wake is not None:
                save_progress(ctx, work, next_attempt_at=wake)
                finish(ctx, work)
                return [Due(work.link_id, wake)]
        if work.jira_issue_id is None:
            outcome = "no Jira issue was created for it"
        else:
            renew(ctx, work)
            client.edit_issue(work.jira_issue_id,
                              update={"labels": [{"remove": work.marker}]})
            outcome = f"{work.jira_issue_key} stays in Jira, without the label {work.marker}"
    except LeaseLost:
        return abandon(ctx, work)
    except NotFound:
        outcome = f"{work.jira_issue_key} no longer exists in Jira"
    except PermanentError as exc:
        level, outcome = "warning", (f"{work.jira_issue_key} keeps the label {work.marker} "
                                     f"(no later create adopts it): {exc.reason}")
    except TransientError as exc:
        if not _retried_too_long(ctx, work):
            return park(ctx, work, exc)
        level, outcome = "warning", (f"{work.jira_issue_key} keeps the label {work.marker} "
                                     f"(no later create adopts it): {exc.reason}")
    except Exception as exc:
        logger.exception("sever of link %s failed unexpectedly", work.link_id)
        return park(ctx, work, unexpected(exc))
    journal(ctx, work, "sever", "severed", f"QALITA issue {work.qalita_issue_id} is no "
            f"longer linked: {outcome}", level=level)
    save_progress(ctx, work, state=SEVERED, jira_issue_id=work.jira_issue_id,
                  jira_issue_key=work.jira_issue_key, due_at=None, next_attempt_at=None,
                  attempts=0, first_failure_at=None)
    return finish(ctx, work)


def _find_attempted(ctx: SyncContext, client: JiraClient, work: Work) -> datetime | None:
    """The issue a create attempt may have made, by its marker (skipping severed links'
    issues); when to look again while Jira's index may not show it yet, else None."""
    found = list(client.search(f'labels = "{work.marker}"', fields=("labels",)))
    cut = creates.severed_issue_ids(ctx, work.integration.id, [str(i["id"]) for i in found])
    found = sorted((i for i in found if str(i["id"]) not in cut), key=lambda i: int(i["id"]))
    if found:
        work.jira_issue_id, work.jira_issue_key = str(found[0]["id"]), found[0].get("key")
        return None
    assert work.create_attempted_at is not None
    wake = work.create_attempted_at + timedelta(seconds=ctx.timings.index_lag_seconds)
    return wake if wake > utcnow() else None


def _retried_too_long(ctx: SyncContext, work: Work) -> bool:
    with ctx.database.unit_of_work() as session:
        first = session.scalar(select(IssueLink.first_failure_at).where(
            IssueLink.id == work.link_id))
    return first is not None and (utcnow() - first).total_seconds() \
        > ctx.timings.max_retry_age_seconds
