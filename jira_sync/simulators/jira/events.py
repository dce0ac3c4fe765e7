"""Webhook bodies and changelogs, shaped like the captured samples in tests/fixtures.

Jira sends the REST v2 representation even on Cloud (wiki text, ``/rest/api/2`` self links), so
every body here is rendered by a v2 renderer.
"""

from __future__ import annotations

import time
from typing import Any

from jira_sync.simulators.jira.catalog import Named
from jira_sync.simulators.jira.config import ProjectDef, UserDef
from jira_sync.simulators.jira.model import Comment, Issue
from jira_sync.simulators.jira.render import Renderer


def _millis() -> int:
    return int(time.time() * 1000)


def issue_event(renderer: Renderer, event: str, type_name: str, issue: Issue, actor: UserDef,
                *, changelog: dict | None = None, comment: Comment | None = None) -> dict:
    body: dict[str, Any] = {
        "timestamp": _millis(), "webhookEvent": event, "issue_event_type_name": type_name,
        "user": renderer.user(actor, email=not renderer.cloud),
        "issue": {"id": issue.id, "self": f"{renderer.rest}/issue/{issue.id}", "key": issue.key,
                  "fields": renderer.fields(issue, comments=not renderer.cloud)},
    }
    if changelog is not None:
        body["changelog"] = changelog
    if comment is not None:
        body["comment"] = renderer.comment(issue, comment)
    return body


def comment_event(renderer: Renderer, event: str, issue: Issue, comment: Comment) -> dict:
    """``comment_*`` bodies carry no ``user`` and only a few issue fields, as captured."""
    fields = renderer.fields(issue, comments=False)
    keep = ("summary", "issuetype", "project", "assignee", "priority", "status")
    return {
        "timestamp": _millis(), "webhookEvent": event,
        "comment": renderer.comment(issue, comment),
        "issue": {"id": issue.id, "self": f"{renderer.rest}/issue/{issue.id}", "key": issue.key,
                  "fields": {name: fields[name] for name in keep}},
    }


class Changelog:
    """Changelog items by difference of two ``Issue.values()`` snapshots."""

    def __init__(self, renderer: Renderer, project: ProjectDef) -> None:
        self.renderer, self.project = renderer, project

    def items(self, before: dict[str, Any], after: dict[str, Any], *,
              created: bool = False) -> list[dict]:
        items = []
        order = ["resolution", "status"] if not created else []
        for field_id in [*(k for k in after if k not in order), *order]:
            old, new = before.get(field_id), after.get(field_id)
            if old == new or (created and new in (None, [], "")):
                continue
            if field_id == "components":
                items += self._components(old or [], new or [])
            else:
                items.append(self._item(field_id, old, new, created=created))
        return items

    @staticmethod
    def moved(source: ProjectDef, old_key: str, old_type: Named, issue: Issue) -> list[dict]:
        """What a move records besides the fields it changes: the project (ids, and names as
        the UI shows them), the key (a string only: keys have no id) and a new issue type."""
        base = {"fieldtype": "jira"}
        items = [
            {"field": "project", **base, "fieldId": "project", "from": source.id,
             "fromString": source.name, "to": issue.project.id, "toString": issue.project.name},
            {"field": "Key", **base, "fieldId": "issuekey", "from": None, "fromString": old_key,
             "to": None, "toString": issue.key},
        ]
        if old_type != issue.issue_type:
            items.append({"field": "issuetype", **base, "fieldId": "issuetype",
                          "from": old_type.id, "fromString": old_type.name,
                          "to": issue.issue_type.id, "toString": issue.issue_type.name})
        return items

    def _item(self, field_id: str, old: Any, new: Any, *, created: bool) -> dict:
        custom = next((f for f in self.project.fields if f.id == field_id), None)
        name = custom.name if custom else field_id
        if created and field_id == "status":
            name = "Status"  # as the 2026 Cloud capture spells it
        item = {"field": name, "fieldtype": "custom" if custom else "jira", "fieldId": field_id}
        item.update(self._side("from", old, field_id))
        item.update(self._side("to", new, field_id))
        if field_id in ("assignee", "reporter") and self.renderer.cloud:
            item["tmpFromAccountId"] = item["from"]
            item["tmpToAccountId"] = item["to"]
        return item

    def _side(self, side: str, value: Any, field_id: str) -> dict:
        if value is None:
            return {side: None, f"{side}String": None}
        if isinstance(value, UserDef):
            user_id = value.account_id if self.renderer.cloud else value.name
            return {side: user_id, f"{side}String": value.display_name}
        if field_id in ("priority", "resolution", "status"):
            return {side: value.id, f"{side}String": value.name}
        if field_id == "labels":
            return {side: None, f"{side}String": " ".join(value)}
        return {side: None, f"{side}String": str(self.renderer.rich(value))}

    def _components(self, old: list, new: list) -> list[dict]:
        base = {"field": "Component", "fieldtype": "jira", "fieldId": "components"}
        removed = [{**base, "from": c.id, "fromString": c.name, "to": None, "toString": None}
                   for c in old if c not in new]
        added = [{**base, "from": None, "fromString": None, "to": c.id, "toString": c.name}
                 for c in new if c not in old]
        return removed + added
