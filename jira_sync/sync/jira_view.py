"""The link's view of Jira, field by field, and one delivery (or one reading of the issue)
folded into it.

Per field the view holds the value, the changelog id and time that set it (the watermark)
and whether QALITA still has to hear of it. Only what a changelog names is taken from a
delivery (its issue snapshot may lag or lead). An item not newer than the watermark is
stale; one that matches what jira-sync wrote is its echo and changes nothing; anything else
is a person's change and marks the field for QALITA. What jira-sync writes to Jira is the
view's value at once (``record_write``), before its echo comes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from jira_sync.events.jira_webhook import (
    ChangeItem,
    History,
    IssueSnapshot,
    JiraComment,
    JiraWebhook,
)
from jira_sync.mapping import Mapping
from jira_sync.mapping.inbound import description_text, jira_text, normalize, text_key
from jira_sync.store.models import InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import echoes, jira_comments
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import entry

if TYPE_CHECKING:
    from jira_sync.sync.jira_changes import Batch

COMMENT_EVENTS = {"comment_created": "created", "comment_updated": "updated",
                  "comment_deleted": "deleted"}
# jira:issue_updated also reports comment activity (Jira delivers it twice).
COMMENT_TYPE_NAMES = {"issue_commented": "created", "issue_comment_edited": "updated",
                      "issue_comment_deleted": "deleted"}
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
            return self._save(self.comment(COMMENT_EVENTS[event], comment))
        changes = self._changes()
        if event == "jira:issue_created":
            self.note("unchanged", f"{self.link.jira_issue_key} was created by jira-sync: its "
                      "first values are jira-sync's own")
            return self._save(self._created(changes))
        applied = [self._apply(change) for change in changes]
        if comment is not None:  # Jira reports comment activity on issue updates too
            kind = COMMENT_TYPE_NAMES.get(self.webhook.event_type_name or "", "created")
            applied.append(self.comment(kind, comment))
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
            wanted = jira_comments.fold_current(self) or wanted
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

    def comment(self, kind: str, comment: JiraComment) -> bool:
        if DELETED in self.view:
            self.note("ignored", f"comment {comment.id}: its issue was deleted")
            return False
        return jira_comments.fold_comment(self, kind, comment)


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
                 labels: Sequence[str] = (), *, ignored_label: str | None = None) -> None:
    """What jira-sync wrote to Jira is now the view's value of those fields (as of ``at``,
    when it was sent), unless a newer change arrived meanwhile; ``labels`` are the label
    operations (``+x``, ``-y``), and one on ``ignored_label`` sets the ignored flag too, as a
    delivery's would. The echoes still come back, and are recognised as such."""
    ignored = [op[0] == "+" for op in labels if op[1:] == ignored_label]
    if ignored:
        values = {**values, IGNORED: ignored[-1]}
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
