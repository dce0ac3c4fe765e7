"""Jira deliveries become the link's view of Jira (DESIGN.md: a webhook is a hint).

A worker takes stored deliveries by inbox id, a batch per transaction, parses each, finds
its link by Jira issue id and folds its changelog into the link's last view of Jira, field
by field. Only what the changelog names is taken from a delivery (its issue snapshot may
lag or lead). An item not newer than what the view holds (by changelog id) is stale; one
that matches what jira-sync wrote is its echo and changes nothing; anything else is a
person's change: it marks the field for QALITA and starts the link's inbound window.
Comments are mirrored the same way, ordered by their ``updated`` time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jira_sync.deliveries import FAILED, HELD, JIRA, PROCESSED, RECEIVED
from jira_sync.events.jira_webhook import (
    ChangeItem,
    History,
    InvalidWebhook,
    IssueSnapshot,
    JiraComment,
    JiraWebhook,
    jira_time,
    parse,
)
from jira_sync.mapping import Mapping, find_comment_marker
from jira_sync.mapping.inbound import description_text, jira_text, normalize, text_key
from jira_sync.store.models import CommentLink, InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync import echoes
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import dead_letter, entry, write
from jira_sync.sync.state import (
    C_DELETED,
    C_DELETING,
    C_PENDING,
    C_POSTED,
    C_TOMBSTONE,
    FINAL_STATES,
    Due,
)

logger = logging.getLogger("jira_sync.jira_changes")
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
COMMENT_EVENTS = {"comment_created": "created", "comment_updated": "updated",
                  "comment_deleted": "deleted"}
# jira:issue_updated also reports comment activity (Jira delivers it twice).
COMMENT_TYPE_NAMES = {"issue_commented": "created", "issue_comment_edited": "updated",
                      "issue_comment_deleted": "deleted"}
# Fields of the view, by the changelog field id that sets them.
FIELDS = ("status", "labels", "assignee", "summary", "description")
IGNORED = "ignored"
DELETED = "deleted"


@dataclass
class Change:
    """One delivery's change to one field of the view."""

    field: str
    value: Any
    echo_value: Any
    cl: int | None
    at: datetime


def receive_deliveries(ctx: SyncContext, inbox_ids: Sequence[int], *,
                       passthrough: tuple[type[BaseException], ...] = ()) -> list[Due]:
    """Fold stored deliveries into their links, a batch per transaction, losing nothing.

    An unreachable database raises (the messages are sent again); any other failure is a bug
    in handling some delivery, so the batch is taken again one delivery at a time and the one
    that trips it is kept as an ``intake_failed`` dead letter.
    """
    try:
        with ctx.database.unit_of_work() as session:
            return fold_deliveries(session, ctx, inbox_ids)
    except (OperationalError, *passthrough):
        raise
    except Exception as exc:
        if len(inbox_ids) > 1:
            return [due for inbox_id in inbox_ids
                    for due in receive_deliveries(ctx, [inbox_id], passthrough=passthrough)]
        logger.exception("Jira delivery %s could not be processed; kept as a dead letter",
                         inbox_ids[0] if inbox_ids else None)
        give_up(ctx, inbox_ids[0], f"processing failed: {type(exc).__name__}: "
                                   f"{str(exc)[:500]}")
        return []


def give_up(ctx: SyncContext, inbox_id: Any, reason: str) -> None:
    """Keep a delivery that cannot be processed as an ``intake_failed`` dead letter."""
    with ctx.database.unit_of_work() as session:
        row = session.get(InboxEvent, inbox_id) if isinstance(inbox_id, int) else None
        if row is not None and row.state != RECEIVED:
            return  # done after all, by the run that was lost
        if row is not None:
            row.state, row.processed_at = FAILED, utcnow()
        dead_letter(session, "intake_failed", reason,
                    integration_id=row.integration_id if row else None,
                    inbox_id=row.id if row else None,
                    payload=row.payload if row else {"message": inbox_id})


def fold_deliveries(session: Session, ctx: SyncContext, inbox_ids: Sequence[int]) -> list[Due]:
    rows = list(session.scalars(select(InboxEvent).where(
        InboxEvent.id.in_(list(inbox_ids)), InboxEvent.source == JIRA,
        InboxEvent.state == RECEIVED).order_by(InboxEvent.id).with_for_update(skip_locked=True)))
    folding = Batch(session, ctx)
    for row in rows:
        folding.take(row)
    return folding.close()


class Batch:
    """The deliveries of one transaction: their integrations and links read once, locked in
    the order intake locks links in (tenant, then id), so the two never deadlock."""

    def __init__(self, session: Session, ctx: SyncContext) -> None:
        self.session, self.ctx = session, ctx
        self.notes: list[dict[str, Any]] = []
        self.integrations: dict[int, Integration | None] = {}
        self.parsed: list[tuple[InboxEvent, JiraWebhook]] = []
        self.touched: dict[int, IssueLink] = {}

    def take(self, row: InboxEvent) -> None:
        integration = self._integration(row.integration_id)
        row.attempts += 1
        if integration is None:
            self._done(row, None, "ignored", "its integration no longer exists")
            return
        if not integration.enabled:
            row.state = HELD  # released when the integration is enabled again
            self.notes.append(entry(integration.id, "webhook", "held",
                                    f"delivery {row.id} waits: the integration is disabled",
                                    inbox_id=row.id))
            return
        try:
            webhook = parse(row.payload)
        except InvalidWebhook as exc:
            row.state, row.processed_at = FAILED, utcnow()
            dead_letter(self.session, "invalid_webhook", f"invalid Jira webhook: {exc}",
                        integration_id=integration.id, inbox_id=row.id, payload=row.payload)
            return
        event = webhook.event or ""
        if webhook.issue is None:
            self._done(row, integration, "ignored", f"{event or 'a delivery'} about no issue")
        elif event not in ISSUE_EVENTS and event not in COMMENT_EVENTS:
            self._done(row, integration, "ignored", f"event type {event or 'none'} is not "
                                                    "synced")
        else:
            self.parsed.append((row, webhook))

    def close(self) -> list[Due]:
        links = self._links()
        expected = echoes.Expected(self.session, [link.id for link in links.values()],
                                   echoes.JIRA)
        for row, webhook in self.parsed:
            assert webhook.issue is not None and row.integration_id is not None
            integration = self.integrations[row.integration_id]
            assert integration is not None
            link = links.get((integration.id, webhook.issue.id))
            if link is None:
                self._done(row, integration, "unlinked", f"Jira issue "
                           f"{webhook.issue.key or webhook.issue.id} is linked to no QALITA "
                           "issue")
                continue
            if link.state in FINAL_STATES:
                self._done(row, integration, "ignored", f"{webhook.event} for "
                           f"{link.jira_issue_key}: the link is {link.state}", link=link)
                continue
            fold = Fold(self, integration, link, expected, row, webhook)
            if fold.run():
                self.touched[link.id] = link
            row.state, row.processed_at = PROCESSED, utcnow()
        expected.close()
        return self.schedule()

    def _integration(self, integration_id: int | None) -> Integration | None:
        if integration_id is None:
            return None
        if integration_id not in self.integrations:
            self.integrations[integration_id] = self.session.get(Integration, integration_id)
        return self.integrations[integration_id]

    def _links(self) -> dict[tuple[int, str], IssueLink]:
        wanted: dict[int, set[str]] = {}
        for row, webhook in self.parsed:
            assert row.integration_id is not None and webhook.issue is not None
            wanted.setdefault(row.integration_id, set()).add(webhook.issue.id)
        found: dict[tuple[int, str], IssueLink] = {}
        tenants = sorted({(self.integrations[i].tenant, i) for i in wanted})  # type: ignore
        for _, integration_id in tenants:
            for link in self.session.scalars(select(IssueLink).where(
                    IssueLink.integration_id == integration_id,
                    IssueLink.jira_issue_id.in_(sorted(wanted[integration_id])),
            ).order_by(IssueLink.id).with_for_update()):
                found[(integration_id, link.jira_issue_id or "")] = link
        return found

    def _done(self, row: InboxEvent, integration: Integration | None, decision: str,
              message: str, link: IssueLink | None = None) -> None:
        row.state, row.processed_at = PROCESSED, utcnow()
        self.notes.append(entry(integration.id if integration else None, "webhook", decision,
                                message, link_id=link.id if link else None, inbox_id=row.id))

    def schedule(self) -> list[Due]:
        """Start the inbound window of links with something for QALITA (never restarted)."""
        dues = []
        now = utcnow()
        for link in self.touched.values():
            integration = self.integrations[link.integration_id]
            assert integration is not None
            if self.ctx.qalita(integration) is None:
                self.notes.append(entry(integration.id, "webhook", "ignored",
                                        "a Jira change is not written back: QALITA_API_URL "
                                        "and QALITA_API_TOKEN are not configured",
                                        link_id=link.id))
                continue
            if link.inbound_state is not None:  # new input deserves a new attempt
                link.inbound_state, link.inbound_reason = None, None
                link.inbound_attempts, link.inbound_first_failure_at = 0, None
            if link.inbound_due_at is None:
                link.inbound_due_at = now + timedelta(seconds=self.ctx.debounce_seconds)
            dues.append(Due(link.id, link.inbound_due_at, inbound=True))
        write(self.session, self.notes)
        self.notes = []
        return dues


class Fold:
    """One delivery folded into one link."""

    def __init__(self, batch: Batch, integration: Integration, link: IssueLink,
                 expected: echoes.Expected, row: InboxEvent | None,
                 webhook: JiraWebhook) -> None:
        self.batch, self.integration, self.link = batch, integration, link
        self.expected, self.row, self.webhook = expected, row, webhook
        self.issue: IssueSnapshot = webhook.issue  # type: ignore[assignment]
        self.mapping: Mapping = batch.ctx.mappings(integration).for_project(
            link.jira_project_key or "")
        self.at = webhook.timestamp or utcnow()
        self.view: dict[str, Any] = dict(link.jira_view or {})

    def note(self, decision: str, message: str, **details: Any) -> None:
        where = {"inbox_id": self.row.id} if self.row is not None else {}
        self.batch.notes.append(entry(self.integration.id, self.webhook.event or "webhook",
                                      decision, message, link_id=self.link.id, **where,
                                      **details))

    def run(self) -> bool:
        """Fold the delivery; True when QALITA has something new to be told."""
        self.batch.ctx.learn_category(self.integration.id, self.issue.status_id,
                                      self.issue.status_category)
        self._follow_move()
        event = self.webhook.event
        if event == "jira:issue_deleted":
            self.view[DELETED] = {"at": self.at.isoformat()}
            self.note("accepted", f"{self.link.jira_issue_key} was deleted in Jira")
            return self._save(True)
        comment = self.webhook.comment
        if event in COMMENT_EVENTS:
            if comment is None:
                self.note("ignored", f"{event} carries no comment")
                return self._save(False)
            return self._save(self._comment(COMMENT_EVENTS[event], comment))
        changes = self._changes()
        if event == "jira:issue_created":
            self.note("unchanged", f"{self.link.jira_issue_key} was created by jira-sync: its "
                      "first values are jira-sync's own")
            return self._save(self._created(changes))
        applied = [self._apply(change) for change in changes]
        if comment is not None:  # Jira reports comment activity on issue updates too
            kind = COMMENT_TYPE_NAMES.get(self.webhook.event_type_name or "", "created")
            applied.append(self._comment(kind, comment))
        elif not changes:
            self.note("unchanged", f"{self.link.jira_issue_key}: no field jira-sync syncs "
                      "changed")
        return self._save(any(applied))

    def _save(self, wanted: bool) -> bool:
        self.link.jira_view = self.view
        return wanted

    def _follow_move(self) -> None:
        """The link follows its issue's id: a new key or project is the issue moved."""
        key, project = self.issue.key, self.issue.project_key
        if key and key != self.link.jira_issue_key:
            self.note("moved", f"{self.link.jira_issue_key} is now {key}",
                      jira_issue=key)
            self.link.jira_issue_key = key
        if project and project != self.link.jira_project_key:
            self.link.jira_project_key = project

    def current(self, histories: Sequence[History]) -> bool:
        """Fold Jira's current values (a reconciliation read) into the view: a value that
        differs from it, set by a change the view has not seen, is applied as a delivery's
        would be; the newest changelog id read becomes every field's watermark, so a late
        delivery older than this read applies nothing. True when QALITA has news."""
        self.batch.ctx.learn_category(self.integration.id, self.issue.status_id,
                                      self.issue.status_category)
        self._follow_move()
        newest = max((h.id for h in histories), default=None)
        wanted = False
        for change in self._current_values(histories):
            known = self.view.get(change.field) or {}
            if change.field == IGNORED and "v" not in known and "labels" in self.view:
                known = {**self.view["labels"], "v": self.mapping.ignored_label in (
                    self.view["labels"].get("v") or [])}
            if "v" not in known:
                self.view[change.field] = _entry(change, dirty=False)
                if change.field == "labels":
                    self.view["labels"]["base"] = change.value
            elif not _same(change.field, known.get("v"), change.value) \
                    and change.cl is not None and not _older(change, known):
                if change.field == "labels":
                    change.echo_value = _operations(known.get("v") or [], change.value)
                wanted = self._apply(change) or wanted
        if newest is not None:
            for field, known in list(self.view.items()):
                if field != DELETED and (known.get("cl") or 0) < newest:
                    self.view[field] = {**known, "cl": newest}
        if self.issue.comments or self.issue.comments_complete:
            wanted = self._current_comments() or wanted
        self.link.jira_view = self.view
        return wanted

    def _current_values(self, histories: Sequence[History]) -> list[Change]:
        issue, changes = self.issue, []

        def last(field: str) -> tuple[int | None, datetime]:
            touched = [h for h in histories if any(i.field_id == field for i in h.items)]
            if not touched:
                return None, self.at
            newest = max(touched, key=lambda h: h.id)
            return newest.id, newest.created or self.at

        def add(field: str, value: Any, echo: Any, touched_by: str | None = None) -> None:
            cl, at = last(touched_by or field)
            changes.append(Change(field, value, echo, cl, at))

        if "status" in issue.present:
            add("status", {"category": issue.status_category, "name": issue.status,
                           "id": issue.status_id}, issue.status_category)
        if "assignee" in issue.present:
            ref = issue.assignee.ref if issue.assignee else None
            add("assignee", ref, ref)
        if "summary" in issue.present:
            add("summary", normalize(issue.summary), normalize(issue.summary))
        if "description" in issue.present:
            whole = normalize(jira_text(issue.description))
            add("description", {"text": whole, "top": description_text(issue.description)},
                whole)
        if "labels" in issue.present:
            labels = sorted(issue.labels or ())
            # The ignored label first: until it has a field of its own, the labels' field
            # says what was known of it.
            add(IGNORED, self.mapping.ignored_label in labels, None, touched_by="labels")
            add("labels", labels, [])
        return changes

    def _current_comments(self) -> bool:
        """Comments no delivery brought: new and edited ones, and, when Jira listed them
        all, the ones deleted."""
        session = self.batch.session
        rows = {row.jira_comment_id: row for row in session.scalars(select(CommentLink).where(
            CommentLink.link_id == self.link.id, CommentLink.origin == JIRA))}
        wanted = False
        for comment in self.issue.comments:
            row = rows.get(comment.id)
            updated = jira_time(comment.updated) or self.at
            if row is None or (row.desired_at is not None and updated > row.desired_at):
                wanted = self._comment("created" if row is None else "updated", comment) \
                    or wanted
        if self.issue.comments_complete:
            listed = {comment.id for comment in self.issue.comments}
            for jira_id, row in rows.items():
                if jira_id not in listed and row.state in (C_PENDING, C_POSTED):
                    wanted = self._comment_deleted(row, JiraComment(
                        jira_id or "", None, None, None, None, None)) or wanted
        return wanted

    # -- fields -------------------------------------------------------------------------

    def _changes(self) -> list[Change]:
        cl = self.webhook.changelog_id
        changes = []
        for item in self.webhook.changelog:
            field = item.field_id
            if field == "status":
                category = self.issue.status_category if self.issue.status_id == item.to_value \
                    else self.batch.ctx.status_category(self.integration.id, item.to_value)
                value = {"category": category, "name": item.to_string, "id": item.to_value}
                changes.append(Change(field, value, category, cl, self.at))
            elif field == "labels":
                changes.extend(self._labels(item, cl))
            elif field == "assignee":
                changes.append(Change(field, item.to_value, item.to_value, cl, self.at))
            elif field == "summary":
                text = normalize(item.to_string)
                changes.append(Change(field, text, text, cl, self.at))
            elif field == "description":
                # The body's own field is the whole text; the changelog may shorten it.
                raw = self.issue.description if "description" in self.issue.present \
                    else item.to_string
                whole = normalize(jira_text(raw))
                changes.append(Change(field, {"text": whole, "top": description_text(raw)},
                                      whole, cl, self.at))
        return changes

    def _labels(self, item: ChangeItem, cl: int | None) -> list[Change]:
        """The labels after the change, with the additions and removals it made (``+x``,
        ``-y``); the ignored label is a field of its own, since it stands for a status."""
        before = set((item.from_string or "").split())
        after = set((item.to_string or "").split())
        ignored = self.mapping.ignored_label
        operations = [f"+{x}" for x in sorted(after - before) if x != ignored] + \
            [f"-{x}" for x in sorted(before - after) if x != ignored]
        changes = [Change("labels", sorted(after), operations, cl, self.at)]
        if (ignored in after) != (ignored in before):
            changes.append(Change(IGNORED, ignored in after, None, cl, self.at))
        return changes

    def _created(self, changes: list[Change]) -> bool:
        """jira-sync created every linked issue: its first values are what jira-sync sent,
        never a person's change. They fill what the view does not know yet."""
        for change in changes:
            current = self.view.get(change.field) or {}
            if "v" not in current:
                self.view[change.field] = _entry(change, dirty=False)
                if change.field == "labels":
                    self.view["labels"]["base"] = change.value
            elif not _older(change, current):
                self.view[change.field] = {**current, "cl": change.cl}
        return False

    def _apply(self, change: Change) -> bool:
        current = self.view.get(change.field) or {}
        if change.field == "labels":
            return self._apply_labels(change, current)
        if _older(change, current):
            # Stale, but an echo still uses up its entry: left, it would swallow a person's
            # later change to the same value.
            self._consume(change)
            self.note("stale", f"{change.field} of {self.link.jira_issue_key}: Jira's change "
                      f"{change.cl} is older than what is already known")
            return False
        if self._consume(change):
            self.view[change.field] = _entry(change, dirty=False)
            self.note("echo", f"{change.field} of {self.link.jira_issue_key}: the echo of "
                      "jira-sync's own write; nothing to write back")
            return False
        dirty = bool(current.get("dirty")) or current.get("v") != change.value
        self.view[change.field] = _entry(change, dirty=dirty)
        self.note("accepted", f"{change.field} of {self.link.jira_issue_key} changed in Jira",
                  changelog=change.cl)
        return dirty

    def _consume(self, change: Change) -> bool:
        """Whether ``change`` is the echo of a write of jira-sync's (its entries used up);
        labels: whether every addition and removal was."""
        if change.field == "labels":
            return all([self.expected.consume(self.link.id, "labels", op)
                        for op in change.echo_value])
        if change.field == IGNORED:
            sign = "+" if change.value else "-"
            return self.expected.consume(self.link.id, "labels",
                                         sign + self.mapping.ignored_label)
        return self.expected.consume(self.link.id, change.field, change.echo_value)

    def _apply_labels(self, change: Change, current: dict[str, Any]) -> bool:
        """Labels are a set whose members change one by one, and people and jira-sync change
        different members at once: each addition or removal is ordered on its own label
        (the newest change of a label wins, whatever order deliveries come in), and is an
        echo of jira-sync's own write or a person's. What QALITA must be told is the set's
        difference from the one both sides last agreed on (``base``)."""
        have = set(current.get("v") or _before(change))
        base = current.get("base")
        if base is None:  # first seen: what it changed from is what was agreed
            base = sorted(have)
        ordered = dict(current.get("ops") or {})
        people, stale = [], []
        for op in change.echo_value:
            sign, label = op[0], op[1:]
            echo = self.expected.consume(self.link.id, "labels", op)
            if _older(change, ordered.get(label) or {}):
                stale.append(op)
                continue
            (have.add if sign == "+" else have.discard)(label)
            ordered[label] = {"cl": change.cl, "at": change.at.astimezone(UTC).isoformat()}
            if not echo:
                people.append(op)
        self.view["labels"] = {**_entry(change, dirty=False), "v": sorted(have), "base": base,
                               "ops": ordered}
        if people:
            self.note("accepted", f"labels of {self.link.jira_issue_key} changed in Jira: "
                      f"{' '.join(people)}", changelog=change.cl)
        if stale:
            self.note("stale", f"labels of {self.link.jira_issue_key}: {' '.join(stale)} is "
                      "older than what is already known of those labels")
        if not people and not stale and change.echo_value:
            self.note("echo", f"labels of {self.link.jira_issue_key}: the echo of jira-sync's "
                      "own write; nothing to write back")
        return bool(people)

    # -- comments -----------------------------------------------------------------------

    def _comment(self, kind: str, comment: JiraComment) -> bool:
        if DELETED in self.view:
            self.note("ignored", f"comment {comment.id}: its issue was deleted")
            return False
        text = jira_text(comment.body)
        # In the markup: read as wiki, an unescaped marker would be taken for a link.
        posted_for = find_comment_marker(comment.body if isinstance(comment.body, str)
                                         else text)
        if posted_for is not None:
            return self._own_comment(kind, comment, posted_for)
        if not self.mapping.inbound["comments"]:
            self.note("ignored", f"comment {comment.id}: comments do not flow back (mapping)")
            return False
        session = self.batch.session
        # A deletion that comes first leaves a tombstone, so a late creation is not posted.
        session.execute(insert(session, CommentLink).values(
            link_id=self.link.id, origin=JIRA, jira_comment_id=comment.id,
            state=C_TOMBSTONE if kind == "deleted" else C_PENDING,
            created_at=utcnow(), updated_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["link_id", "jira_comment_id"]))
        row = session.scalars(select(CommentLink).where(
            CommentLink.link_id == self.link.id, CommentLink.jira_comment_id == comment.id)
            .with_for_update()).one()
        if kind == "deleted":
            return self._comment_deleted(row, comment)
        updated = jira_time(comment.updated) or self.at
        if row.state in (C_DELETED, C_DELETING, C_TOMBSTONE):
            self.note("ignored", f"comment {comment.id} was deleted in Jira")
            return False
        if row.desired_at is not None and updated <= row.desired_at:
            self.note("stale", f"comment {comment.id}: a newer version is already known")
            return False
        actor = comment.author if kind == "created" or comment.update_author is None \
            else comment.update_author
        row.body, row.desired_at = text, updated
        row.author = (actor.display_name or actor.name) if actor else row.author
        self.note("accepted", f"comment {comment.id} {kind} in Jira")
        return True

    def _comment_deleted(self, row: CommentLink, comment: JiraComment) -> bool:
        if row.state in (C_DELETED, C_DELETING):
            self.note("ignored", f"comment {comment.id} deleted again")
            return False
        if row.qalita_comment_id is None and row.attempted_at is None:
            row.state = C_TOMBSTONE  # never posted to QALITA: nothing to delete there
            self.note("accepted", f"comment {comment.id} deleted in Jira before it reached "
                                  "QALITA")
            return False
        row.state = C_DELETING
        self.note("accepted", f"comment {comment.id} deleted in Jira")
        return True

    def _own_comment(self, kind: str, comment: JiraComment, posted_for: int) -> bool:
        """A comment jira-sync posted for QALITA: its creation is an echo; QALITA owns it,
        so what a person does to it in Jira is not written back."""
        session = self.batch.session
        row = session.scalars(select(CommentLink).where(
            CommentLink.link_id == self.link.id,
            CommentLink.qalita_comment_id == posted_for)).one_or_none()
        if kind == "created":
            if row is not None and row.jira_comment_id is None:
                row.jira_comment_id = comment.id
            self.note("echo", f"comment {comment.id} is QALITA comment {posted_for}, posted by "
                              "jira-sync")
        else:
            self.note("skipped", f"comment {comment.id} (QALITA comment {posted_for}) was "
                      f"{kind} in Jira; QALITA owns it, so this is not written back")
        return False


def _same(field: str, known: Any, seen: Any) -> bool:
    """Whether a value read from Jira says what the view already holds."""
    if field == "status":
        known, seen = known or {}, seen or {}
        return known.get("category") == seen.get("category") and (
            known.get("id") is None or known.get("id") == seen.get("id"))
    if field == "summary":
        return text_key(known) == text_key(seen)
    if field == "description":
        return text_key((known or {}).get("text")) == text_key((seen or {}).get("text"))
    if field == "labels":
        return sorted(known or []) == sorted(seen or [])
    return known == seen


def _operations(before: Sequence[str], after: Sequence[str]) -> list[str]:
    return [f"+{x}" for x in sorted(set(after) - set(before))] + \
        [f"-{x}" for x in sorted(set(before) - set(after))]


def _before(change: Change) -> set[str]:
    """The label set a labels change started from."""
    after = set(change.value)
    for op in change.echo_value:
        (after.discard if op[0] == "+" else after.add)(op[1:])
    return after


def _entry(change: Change, *, dirty: bool) -> dict[str, Any]:
    return {"v": change.value, "cl": change.cl, "at": change.at.astimezone(UTC).isoformat(),
            "dirty": dirty}


def _older(change: Change, current: dict[str, Any]) -> bool:
    """Not newer than what the view holds: by changelog id when both have one, else by time."""
    if change.cl is not None and current.get("cl") is not None:
        return change.cl <= current["cl"]
    if current.get("at") is None:
        return False
    return change.at <= datetime.fromisoformat(current["at"])


def record_write(ctx: SyncContext, link_id: int, at: datetime, values: dict[str, Any],
                 labels: Sequence[str] = ()) -> None:
    """What jira-sync wrote to Jira is now the view's value of those fields (as of ``at``,
    when it was sent), unless a newer change arrived meanwhile; ``labels`` are the label
    operations (``+x``, ``-y``). The echoes still come back, and are recognised as such."""
    with ctx.database.unit_of_work() as session:
        link = session.scalars(select(IssueLink).where(IssueLink.id == link_id)
                               .with_for_update()).one_or_none()
        if link is None:
            return
        view = {field: dict(entry) for field, entry in (link.jira_view or {}).items()}
        for field, value in values.items():
            current = view.get(field) or {}
            if not _newer_than(current, at):
                view[field] = _entry(Change(field, value, None, None, at), dirty=False)
        current = view.get("labels")
        if labels and current is not None:
            sets = {key: set(current.get(key) or []) for key in ("v", "base")}
            ordered = dict(current.get("ops") or {})
            for op in labels:
                if _newer_than(ordered.get(op[1:]) or {}, at):
                    continue  # a person changed that label since: their change stands
                for kept in sets.values():
                    (kept.add if op[0] == "+" else kept.discard)(op[1:])
                ordered[op[1:]] = {"cl": None, "at": at.astimezone(UTC).isoformat()}
            view["labels"] = {**current, **{key: sorted(kept) for key, kept in sets.items()},
                              "ops": ordered}
        link.jira_view = view


def _newer_than(current: dict[str, Any], at: datetime) -> bool:
    return current.get("at") is not None and datetime.fromisoformat(current["at"]) > at
