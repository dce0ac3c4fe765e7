"""The simulated site's issues and every change to them, each change firing its webhooks.

One re-entrant lock guards all state; webhook bodies are rendered under it, so each body is an
exact snapshot of the issue right after its change.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from jira_sync.simulators.jira import events
from jira_sync.simulators.jira.catalog import DEFAULT_PRIORITY, Catalog
from jira_sync.simulators.jira.config import SimulatorConfig, TransitionDef, UserDef
from jira_sync.simulators.jira.errors import JiraError, bad_request, issue_not_found
from jira_sync.simulators.jira.fields import Draft, FieldReader
from jira_sync.simulators.jira.jql import Query
from jira_sync.simulators.jira.model import Comment, Issue, jira_time, now
from jira_sync.simulators.jira.render import Renderer
from jira_sync.simulators.jira.search import Compiler
from jira_sync.simulators.jira.webhooks import WebhookDispatcher

BULK_LIMIT = 50
_ATTRIBUTES = {"summary": "summary", "description": "description", "labels": "labels",
               "assignee": "assignee", "reporter": "reporter", "priority": "priority",
               "components": "components"}


@dataclass(frozen=True)
class Actor:
    """Who is calling, and the base URL their links must use."""

    user: UserDef
    base_url: str


class IssueStore:
    def __init__(self, config: SimulatorConfig, catalog: Catalog,
                 dispatcher: WebhookDispatcher) -> None:
        self.config, self.catalog, self.dispatcher = config, catalog, dispatcher
        self.reader = FieldReader(catalog, config.deployment)
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.issues: dict[str, Issue] = {}
            self._by_key: dict[str, Issue] = {}
            self._next_issue_id = 10000
            self._next_number = {key: 1 for key in self.catalog.projects}
            self._next_comment_id = 10000
            self._next_changelog_id = 10000

    # -- reads -------------------------------------------------------------------------------

    def find(self, id_or_key: str) -> Issue:
        """By id, or by key case-insensitively (Jira answers under the current key)."""
        with self.lock:
            issue = self.issues.get(id_or_key) or self._by_key.get(id_or_key.upper())
            if issue is None or issue.deleted:
                raise issue_not_found()
            return issue

    def transitions(self, id_or_key: str) -> tuple[Issue, list[TransitionDef]]:
        with self.lock:
            issue = self.find(id_or_key)
            return issue, self.catalog.transitions_from(issue.project, issue.status.id)

    def search(self, query: Query, reconcile: set[str]) -> list[Issue]:
        """Issues the index has seen (plus ``reconcile`` ids, read-after-write), sorted."""
        with self.lock:
            live = {i.id: i for i in self.issues.values() if not i.deleted}
            compiler = Compiler(self.catalog, live, now(), self.config.deployment == "cloud")
            matches = compiler.predicate(query)
            clock = time.time()
            found = [i for i in live.values()
                     if (i.indexed_at <= clock or i.id in reconcile) and matches(i)]
            return compiler.sort(query, found)

    # -- issues ------------------------------------------------------------------------------

    def create(self, body: Any, actor: Actor) -> Issue:
        draft = self.reader.create(body)
        with self.lock:
            return self._insert(draft, actor)

    def bulk_create(self, body: Any, actor: Actor) -> tuple[list[Issue], list[dict]]:
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list):
            raise bad_request(None, "'issueUpdates' must be a list of issues to create.")
        if len(updates) > BULK_LIMIT:
            raise bad_request(None, f"Too many issues: at most {BULK_LIMIT} issues can be "
                              "created in one request.")
        created, errors = [], []
        with self.lock:
            for number, update in enumerate(updates):
                try:
                    created.append(self._insert(self.reader.create(update), actor))
                except JiraError as exc:
                    errors.append({"status": exc.status, "elementErrors": exc.body(),
                                   "failedElementNumber": number})
        return created, errors

    def _insert(self, draft: Draft, actor: Actor) -> Issue:
        project, values, moment = draft.project, draft.values, now()
        number = self._next_number[project.key]
        self._next_number[project.key] += 1
        issue = Issue(
            id=str(self._next_issue_id), key=f"{project.key}-{number}", project=project,
            issue_type=draft.issue_type, summary=values["summary"],
            status=self.catalog.statuses[project.initial_status],
            priority=values.get("priority") or self.catalog.priorities[DEFAULT_PRIORITY],
            reporter=values.get("reporter", actor.user), creator=actor.user, created=moment,
            updated=moment, status_changed=moment,
            indexed_at=time.time() + self.config.index_lag_ms / 1000,
            description=values.get("description"), labels=values.get("labels", []),
            assignee=values.get("assignee"), components=values.get("components", []),
            custom={f.id: values[f.id] for f in project.fields if values.get(f.id) is not None},
            properties=draft.properties)
        self._next_issue_id += 1
        self.issues[issue.id] = issue
        self._by_key[issue.key] = issue
        renderer = self._webhook_renderer(actor)
        changelog = self._changelog(events.Changelog(renderer, project).items(
            {}, issue.values(), created=True))
        self._issue_event(actor, "jira:issue_created", "issue_created", issue,
                          changelog=changelog)
        return issue

    def edit(self, id_or_key: str, body: Any, actor: Actor) -> Issue:
        with self.lock:
            issue = self.find(id_or_key)
            values = self.reader.edit(body, issue.project, issue.values())
            issue.properties.update(self.reader.properties(body.get("properties")))
            self._apply(issue, values, actor)
            return issue

    def assign(self, id_or_key: str, body: Any, actor: Actor) -> None:
        with self.lock:
            issue = self.find(id_or_key)
            if body in ({"accountId": "-1"}, {"name": "-1"}):
                user = None  # the project's default assignee: unassigned here
            else:
                if not isinstance(body, dict) or not body.keys() & {"accountId", "name", "key"}:
                    raise bad_request(None, "'accountId' or 'name' must be given.")
                user = self.reader.user(body)
            self._apply(issue, {"assignee": user}, actor)

    def delete(self, id_or_key: str, actor: Actor) -> None:
        with self.lock:
            issue = self.find(id_or_key)
            issue.deleted = True
            self._issue_event(actor, "jira:issue_deleted", "issue_deleted", issue)

    def transition(self, id_or_key: str, body: Any, actor: Actor) -> None:
        requested = body.get("transition") if isinstance(body, dict) else None
        transition_id = requested.get("id") if isinstance(requested, dict) else None
        if transition_id is None:
            raise bad_request(None, "Missing 'transition' identifier")
        with self.lock:
            issue, available = self.transitions(id_or_key)
            transition = next((t for t in available if t.id == str(transition_id)), None)
            if transition is None:
                raise bad_request(None, f"Transition id '{transition_id}' is not valid for this "
                                  "issue.")
            values = self.reader.transition(body, issue.project, transition.screen,
                                            transition.required)
            target = self.catalog.statuses[transition.to]
            before, moment = issue.values(), now()
            if target.category != issue.status.category:
                issue.status_changed = moment
            if target.category == "done":
                issue.resolution = (values.get("resolution") or issue.resolution
                                    or self.catalog.resolutions["10000"])
                issue.resolution_date = issue.resolution_date or moment
            else:
                issue.resolution, issue.resolution_date = None, None
            issue.status = target
            self._record(issue, before, actor, "issue_generic")

    def _apply(self, issue: Issue, values: dict[str, Any], actor: Actor) -> None:
        before = issue.values()
        for field_id, value in values.items():
            if field_id in _ATTRIBUTES:
                setattr(issue, _ATTRIBUTES[field_id], value)
            elif value is None:
                issue.custom.pop(field_id, None)
            else:
                issue.custom[field_id] = value
        changed = [k for k in values if before.get(k) != issue.values().get(k)]
        self._record(issue, before, actor,
                     "issue_assigned" if changed == ["assignee"] else "issue_updated")

    def _record(self, issue: Issue, before: dict[str, Any], actor: Actor, type_name: str) -> None:
        renderer = self._webhook_renderer(actor)
        items = events.Changelog(renderer, issue.project).items(before, issue.values())
        if not items:
            return  # nothing changed: Jira writes no history and sends nothing
        issue.updated = now()
        self._issue_event(actor, "jira:issue_updated", type_name, issue,
                          changelog=self._changelog(items))

    # -- comments ----------------------------------------------------------------------------

    def comment(self, id_or_key: str, comment_id: str) -> tuple[Issue, Comment]:
        with self.lock:
            issue = self.find(id_or_key)
            comment = issue.comment(comment_id)
            if comment is None:
                raise JiraError(404, [f"Can not find a comment for the id: {comment_id}."])
            return issue, comment

    def add_comment(self, id_or_key: str, body: Any, actor: Actor) -> tuple[Issue, Comment]:
        text = self.reader.comment_body(body)
        with self.lock:
            issue, moment = self.find(id_or_key), now()
            comment = Comment(str(self._next_comment_id), text, actor.user, actor.user, moment,
                              moment)
            self._next_comment_id += 1
            issue.comments.append(comment)
            issue.updated = moment
            self._comment_events(actor, "comment_created", "issue_commented", issue, comment)
            return issue, comment

    def edit_comment(self, id_or_key: str, comment_id: str, body: Any,
                     actor: Actor) -> tuple[Issue, Comment]:
        text = self.reader.comment_body(body)
        with self.lock:
            issue, comment = self.comment(id_or_key, comment_id)
            comment.body, comment.update_author, comment.updated = text, actor.user, now()
            issue.updated = comment.updated
            self._comment_events(actor, "comment_updated", "issue_comment_edited", issue,
                                 comment)
            return issue, comment

    def delete_comment(self, id_or_key: str, comment_id: str, actor: Actor) -> None:
        with self.lock:
            issue, comment = self.comment(id_or_key, comment_id)
            issue.comments.remove(comment)
            issue.updated = now()
            self._comment_events(actor, "comment_deleted", "issue_comment_deleted", issue,
                                 comment)

    # -- entity properties -------------------------------------------------------------------

    def set_property(self, id_or_key: str, key: str, value: Any) -> bool:
        if not 0 < len(key) <= 255:
            raise bad_request(None, "The property key must be 1 to 255 characters long.")
        value = self.reader.property_value(value)
        with self.lock:
            issue = self.find(id_or_key)
            created = key not in issue.properties
            issue.properties[key] = value
            return created

    def delete_property(self, id_or_key: str, key: str) -> None:
        with self.lock:
            if self.find(id_or_key).properties.pop(key, None) is None:
                raise JiraError(404, [f"The property with key '{key}' does not exist."])

    # -- webhooks ------------------------------------------------------------------------------

    def _webhook_renderer(self, actor: Actor) -> Renderer:
        return Renderer(actor.base_url, "2", self.catalog, self.config.deployment)

    def _changelog(self, items: list[dict]) -> dict:
        self._next_changelog_id += 1
        return {"id": str(self._next_changelog_id), "items": items}

    def _issue_event(self, actor: Actor, event: str, type_name: str, issue: Issue, *,
                     changelog: dict | None = None, comment: Comment | None = None) -> None:
        renderer = self._webhook_renderer(actor)
        self.dispatcher.submit(event, lambda: events.issue_event(
            renderer, event, type_name, issue, actor.user, changelog=changelog,
            comment=comment))

    def _comment_events(self, actor: Actor, event: str, type_name: str, issue: Issue,
                        comment: Comment) -> None:
        renderer = self._webhook_renderer(actor)
        self.dispatcher.submit(event, lambda: events.comment_event(renderer, event, issue,
                                                                   comment))
        if self.config.comment_issue_updated:
            self._issue_event(actor, "jira:issue_updated", type_name, issue, comment=comment)

    # -- inspection --------------------------------------------------------------------------

    def inspect(self) -> list[dict]:
        with self.lock:
            return [_internal(issue) for issue in self.issues.values()]


def _email(user: UserDef | None) -> str | None:
    return user.email if user else None


def _internal(issue: Issue) -> dict:
    """Stored state, not a Jira representation: what tests assert on."""
    return {
        "id": issue.id, "key": issue.key, "project": issue.project.key,
        "issuetype": issue.issue_type.name, "summary": issue.summary,
        "description": issue.description, "labels": list(issue.labels),
        "status": {"id": issue.status.id, "name": issue.status.name,
                   "category": issue.status.category},
        "resolution": issue.resolution.name if issue.resolution else None,
        "assignee": _email(issue.assignee), "reporter": _email(issue.reporter),
        "creator": _email(issue.creator), "priority": issue.priority.name,
        "components": [c.name for c in issue.components], "custom": dict(issue.custom),
        "properties": dict(issue.properties),
        "comments": [{"id": c.id, "body": c.body, "author": c.author.email,
                      "update_author": c.update_author.email, "created": jira_time(c.created),
                      "updated": jira_time(c.updated)} for c in issue.comments],
        "created": jira_time(issue.created), "updated": jira_time(issue.updated),
        "indexed": issue.indexed_at <= time.time(), "deleted": issue.deleted,
    }
