"""The simulated site's issues and every change to them, each change firing its webhooks.

One re-entrant lock guards all state; webhook bodies are rendered under it, so each body is an
exact snapshot of the issue right after its change. Every change that writes a changelog also
keeps it as the issue's history, under the id its webhook carried.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from jira_sync.simulators.jira import events
from jira_sync.simulators.jira.catalog import DEFAULT_PRIORITY, Catalog, Named
from jira_sync.simulators.jira.config import (
    ProjectDef,
    SimulatorConfig,
    StatusDef,
    TransitionDef,
    UserDef,
)
from jira_sync.simulators.jira.errors import JiraError, bad_request, issue_not_found
from jira_sync.simulators.jira.fields import Draft, FieldReader, not_on_screen
from jira_sync.simulators.jira.jql import Query
from jira_sync.simulators.jira.model import Comment, History, Issue, jira_time, now
from jira_sync.simulators.jira.render import Renderer
from jira_sync.simulators.jira.search import Compiler
from jira_sync.simulators.jira.webhooks import WebhookDispatcher

BULK_LIMIT = 50
BULK_FETCH_LIMIT = 100
_ATTRIBUTES = {"summary": "summary", "description": "description", "labels": "labels",
               "assignee": "assignee", "reporter": "reporter", "priority": "priority",
               "components": "components"}


@dataclass(frozen=True)
class Actor:
    """Who is calling, and the base URL their links must use."""

    user: UserDef
    base_url: str


class _Changes(threading.local):
    """Whether the current request (one thread) changed the site. A write's answer does not
    always say (204 either way), and a fault injected after the change must still count."""

    changed = False


class IssueStore:
    def __init__(self, config: SimulatorConfig, catalog: Catalog,
                 dispatcher: WebhookDispatcher) -> None:
        self.config, self.catalog, self.dispatcher = config, catalog, dispatcher
        self.reader = FieldReader(catalog, config.deployment)
        self.lock = threading.RLock()
        self._changes = _Changes()
        self.reset()

    def watch(self) -> None:
        """Start noting changes for the calling thread's request."""
        self._changes.changed = False

    def changed(self) -> bool:
        """Whether anything changed since ``watch`` on this thread."""
        return self._changes.changed

    def _touch(self) -> None:
        self._changes.changed = True

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

    def histories(self, id_or_key: str) -> tuple[Issue, list[History]]:
        with self.lock:
            issue = self.find(id_or_key)
            return issue, list(issue.histories)

    def bulk_find(self, ids_or_keys: list[str]) -> list[Issue]:
        """The issues found, each once, by ascending id, as Jira answers a bulk fetch (what
        finds nothing is left out)."""
        if not ids_or_keys:
            raise bad_request(None, "At least one issue ID or key must be provided.")
        if len(ids_or_keys) > BULK_FETCH_LIMIT:
            raise bad_request(None, f"Too many issues requested: at most {BULK_FETCH_LIMIT} "
                              "issue IDs or keys can be fetched in one request.")
        found: dict[str, Issue] = {}
        with self.lock:
            for wanted in ids_or_keys:
                try:
                    issue = self.find(wanted)
                except JiraError:
                    continue
                found[issue.id] = issue
        return [found[i] for i in sorted(found, key=int)]

    def search(self, query: Query, reconcile: set[str], *,
               validate: bool = True) -> tuple[list[Issue], list[str]]:
        """Issues the index has seen (plus ``reconcile`` ids, read-after-write), sorted, and the
        warnings that replace value errors when the query is not validated."""
        with self.lock:
            live = {i.id: i for i in self.issues.values() if not i.deleted}
            compiler = Compiler(self.catalog, live, now(), self.config.deployment == "cloud",
                                validate=validate)
            matches = compiler.predicate(query)
            clock = time.time()
            found = [i for i in live.values()
                     if (i.indexed_at <= clock or i.id in reconcile) and matches(i)]
            return compiler.sort(query, found), compiler.warnings

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
        self._touch()
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
            properties = self.reader.properties(body.get("properties"))
            if any(issue.properties.get(k) != v for k, v in properties.items()):
                issue.properties.update(properties)
                self._touch()
            self._apply(issue, values, actor)
            return issue

    def assign(self, id_or_key: str, body: Any, actor: Actor) -> Issue:
        with self.lock:
            issue = self.find(id_or_key)
            if body in ({"accountId": "-1"}, {"name": "-1"}):
                user = None  # the project's default assignee: unassigned here
            else:
                if not isinstance(body, dict) or not body.keys() & {"accountId", "name", "key"}:
                    raise bad_request(None, "'accountId' or 'name' must be given.")
                user = self.reader.user(body)
            self._apply(issue, {"assignee": user}, actor)
            return issue

    def delete(self, id_or_key: str, actor: Actor) -> Issue:
        """Jira sends ``jira:issue_deleted``, then a Secondary ``comment_deleted`` per comment
        the issue had (consequences of the delete, which receivers must not act on twice)."""
        with self.lock:
            issue = self.find(id_or_key)
            issue.deleted = True
            self._touch()
            self._issue_event(actor, "jira:issue_deleted", "issue_deleted", issue)
            renderer = self._webhook_renderer(actor)
            for comment in issue.comments:
                self.dispatcher.submit("comment_deleted", lambda c=comment: events.comment_event(
                    renderer, "comment_deleted", issue, c), flow="Secondary")
            return issue

    def move(self, id_or_key: str, project_key: str, type_name: str | None,
             actor: Actor) -> Issue:
        """Jira's move: the next key of the target project, the same id, the old key kept as
        an alias. Components and custom fields the target does not have are dropped, and a
        status its workflow does not use becomes its initial status."""
        with self.lock:
            issue = self.find(id_or_key)
            target = self.catalog.project(project_key)
            if target is None:
                raise bad_request(None, f"No project could be found with key '{project_key}'.")
            if target is issue.project:
                raise bad_request(None, f"The issue is already in project '{target.key}'.")
            issue_type = self.catalog.issue_type(target, name=type_name or issue.issue_type.name)
            if issue_type is None:
                raise bad_request(None, f"Issue type '{type_name or issue.issue_type.name}' is "
                                  f"not available in project '{target.key}': give issue_type.")
            source, old_key, old_type, before = (issue.project, issue.key, issue.issue_type,
                                                 issue.values())
            self._rehome(issue, target)
            issue.issue_type = issue_type
            items = [*events.Changelog.moved(source, old_key, old_type, issue),
                     *self._diff(source, before, issue, actor)]
            self._record(issue, items, actor, "issue_moved")
            return issue

    def _rehome(self, issue: Issue, target: ProjectDef) -> None:
        number = self._next_number[target.key]
        self._next_number[target.key] += 1
        issue.former_keys.append(issue.key)
        issue.key, issue.project = f"{target.key}-{number}", target
        self._by_key[issue.key] = issue
        issue.components = []
        issue.custom = {k: v for k, v in issue.custom.items()
                        if Catalog.custom_field(target, k) is not None}
        if issue.status.id not in self.catalog.statuses_of(target):
            self._set_status(issue, self.catalog.statuses[target.initial_status], None)

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
            self._transition(issue, transition, body, actor)

    def take(self, id_or_key: str, name_or_id: str, fields: dict, actor: Actor) -> Issue:
        """A person clicking one transition, named as the UI shows it (or by id)."""
        with self.lock:
            issue, available = self.transitions(id_or_key)
            transition = next((t for t in available
                               if name_or_id.lower() in (t.id, t.name.lower())), None)
            if transition is None:
                raise bad_request(None, f"No transition '{name_or_id}' is available from status "
                                  f"'{issue.status.name}'.")
            self._hops(issue, [transition], fields, actor)
            return issue

    def walk(self, id_or_key: str, status_name: str, fields: dict, actor: Actor) -> Issue:
        """A person clicking through the shortest path to a status: one change per hop."""
        with self.lock:
            issue = self.find(id_or_key)
            target = self.catalog.status_by_name(status_name)
            if target is None:
                raise bad_request(None, f"There is no status '{status_name}'.")
            path = self.catalog.path(issue.project, issue.status.id, target.id)
            if path is None:
                raise bad_request(None, f"No transitions lead from '{issue.status.name}' to "
                                  f"'{target.name}' in project '{issue.project.key}'.")
            self._hops(issue, path, fields, actor)
            return issue

    def _hops(self, issue: Issue, path: list[TransitionDef], fields: dict, actor: Actor) -> None:
        """Take each transition with the screen fields it shows: those given when on its
        screen, else the first resolution where one is required. Every hop's fields are read
        before the first is taken, so a bad value changes nothing."""
        unused = set(fields) - {field_id for hop in path for field_id in hop.screen}
        if unused:
            raise bad_request({field_id: not_on_screen(field_id) for field_id in sorted(unused)})
        bodies = []
        for hop in path:
            given = {k: v for k, v in fields.items() if k in hop.screen}
            if "resolution" in hop.required:
                given.setdefault("resolution", {"id": next(iter(self.catalog.resolutions))})
            bodies.append({"transition": {"id": hop.id}, "fields": given})
            self.reader.transition(bodies[-1], issue.project, hop.screen, hop.required)
        for hop, body in zip(path, bodies, strict=True):
            self._transition(issue, hop, body, actor)

    def _transition(self, issue: Issue, transition: TransitionDef, body: dict,
                    actor: Actor) -> None:
        values = self.reader.transition(body, issue.project, transition.screen,
                                        transition.required)
        before = issue.values()
        self._set_status(issue, self.catalog.statuses[transition.to], values.get("resolution"))
        self._record(issue, self._diff(issue.project, before, issue, actor), actor,
                     "issue_generic")

    def _set_status(self, issue: Issue, target: StatusDef, resolution: Named | None) -> None:
        """A done status carries a resolution (the given one, the one it had, else Done);
        leaving done clears it. Status category changes are dated, as Jira does."""
        moment = now()
        if target.category != issue.status.category:
            issue.status_changed = moment
        if target.category == "done":
            issue.resolution = (resolution or issue.resolution
                                or self.catalog.resolutions["10000"])
            issue.resolution_date = issue.resolution_date or moment
        else:
            issue.resolution, issue.resolution_date = None, None
        issue.status = target

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
        self._record(issue, self._diff(issue.project, before, issue, actor), actor,
                     "issue_assigned" if changed == ["assignee"] else "issue_updated")

    def _diff(self, project: ProjectDef, before: dict[str, Any], issue: Issue,
              actor: Actor) -> list[dict]:
        renderer = self._webhook_renderer(actor)
        return events.Changelog(renderer, project).items(before, issue.values())

    def _record(self, issue: Issue, items: list[dict], actor: Actor, type_name: str) -> None:
        """One change: its changelog goes out with ``jira:issue_updated`` and stays as the
        issue's history under the same id."""
        if not items:
            return  # nothing changed: Jira writes no history and sends nothing
        issue.updated = now()
        changelog = self._changelog(items)
        issue.histories.append(History(changelog["id"], actor.user, issue.updated, items))
        self._touch()
        self._issue_event(actor, "jira:issue_updated", type_name, issue, changelog=changelog)

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
            self._touch()
            self._comment_events(actor, "comment_created", "issue_commented", issue, comment)
            return issue, comment

    def edit_comment(self, id_or_key: str, comment_id: str, body: Any,
                     actor: Actor) -> tuple[Issue, Comment]:
        text = self.reader.comment_body(body)
        with self.lock:
            issue, comment = self.comment(id_or_key, comment_id)
            if text == comment.body:
                return issue, comment  # the same text: nothing to change, nothing to send
            comment.body, comment.update_author, comment.updated = text, actor.user, now()
            issue.updated = comment.updated
            self._touch()
            self._comment_events(actor, "comment_updated", "issue_comment_edited", issue,
                                 comment)
            return issue, comment

    def delete_comment(self, id_or_key: str, comment_id: str, actor: Actor) -> None:
        with self.lock:
            issue, comment = self.comment(id_or_key, comment_id)
            issue.comments.remove(comment)
            issue.updated = now()
            self._touch()
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
            if issue.properties.get(key) != value:
                issue.properties[key] = value
                self._touch()
            return created

    def delete_property(self, id_or_key: str, key: str) -> None:
        with self.lock:
            if self.find(id_or_key).properties.pop(key, None) is None:
                raise JiraError(404, [f"The property with key '{key}' does not exist."])
            self._touch()

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

    def view(self, id_or_key: str) -> dict:
        """One issue's stored state, deleted or not, by id, key or a key it had before a move."""
        with self.lock:
            issue = self.issues.get(id_or_key) or self._by_key.get(id_or_key.upper())
            if issue is None:
                raise JiraError(404, [f"No issue '{id_or_key}' was ever created."])
            return _internal(issue)


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
        "comments": [comment_view(c) for c in issue.comments],
        "histories": [{"id": h.id, "author": h.author.email, "created": jira_time(h.created),
                       "items": h.items} for h in issue.histories],
        "previous_keys": list(issue.former_keys),
        "created": jira_time(issue.created), "updated": jira_time(issue.updated),
        "indexed": issue.indexed_at <= time.time(), "deleted": issue.deleted,
    }


def comment_view(comment: Comment) -> dict:
    """A comment's stored state, as the inspection API shows it."""
    return {"id": comment.id, "body": comment.body, "author": comment.author.email,
            "update_author": comment.update_author.email, "created": jira_time(comment.created),
            "updated": jira_time(comment.updated)}
