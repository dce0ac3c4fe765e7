"""JSON representations, shaped after the OAS schemas and the captured webhook bodies.

One renderer per (base URL, REST version): v3 writes rich text as ADF, v2 as wiki markup, so the
webhook bodies (v2 even on Cloud) and the REST answers come from the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from jira_sync.simulators.jira import adf
from jira_sync.simulators.jira.catalog import CATEGORIES, Catalog, Named
from jira_sync.simulators.jira.config import ProjectDef, StatusDef, UserDef
from jira_sync.simulators.jira.model import Comment, History, Issue, jira_time

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
NON_NAVIGABLE = frozenset({"comment", "worklog"})


class FieldSelection:
    """Jira's ``fields`` parameter: names, ``*all``, ``*navigable`` and ``-name`` exclusions."""

    def __init__(self, tokens: list[str]) -> None:
        self.all = "*all" in tokens
        self.navigable = "*navigable" in tokens
        self.excluded = {t[1:] for t in tokens if t.startswith("-")}
        self.named = {t for t in tokens if not t.startswith(("-", "*"))}

    @classmethod
    def parse(cls, raw: str | list[str] | None, default: str) -> FieldSelection:
        if raw is None or raw == [] or raw == "":
            raw = default
        items = raw.split(",") if isinstance(raw, str) else [
            part for item in raw for part in str(item).split(",")]
        return cls([item.strip() for item in items if item.strip()])

    def includes(self, name: str) -> bool:
        if name in self.excluded:
            return False
        return (self.all or name in self.named
                or (self.navigable and name not in NON_NAVIGABLE))


class Renderer:
    def __init__(self, base_url: str, api: str, catalog: Catalog, deployment: str) -> None:
        self.base = base_url.rstrip("/")
        self.rest = f"{self.base}/rest/api/{api}"
        self.api, self.catalog, self.cloud = api, catalog, deployment == "cloud"

    # -- small things --------------------------------------------------------------------------

    def rich(self, stored: Any) -> Any:
        """Stored text as this API version shows it: ADF on v3, wiki markup on v2."""
        if self.api == "2" and isinstance(stored, dict):
            return adf.to_wiki(stored)
        return stored

    def _avatars(self, kind: str, owner: str) -> dict[str, str]:
        url = f"{self.base}/secure/{kind}avatar?ownerId={quote(owner)}"
        return {"48x48": url, "24x24": f"{url}&size=small", "16x16": f"{url}&size=xsmall",
                "32x32": f"{url}&size=medium"}

    def user(self, user: UserDef | None, *, email: bool = True) -> dict | None:
        if user is None:
            return None
        if self.cloud:
            out = {"self": f"{self.rest}/user?accountId={quote(user.account_id)}",
                   "accountId": user.account_id}
        else:
            out = {"self": f"{self.rest}/user?username={quote(user.name)}", "name": user.name,
                   "key": user.name}
        if email:
            out["emailAddress"] = user.email
        out.update({"avatarUrls": self._avatars("user", user.name),
                    "displayName": user.display_name, "active": True, "timeZone": "UTC"})
        if self.cloud:
            out["accountType"] = "atlassian"
        return out

    def myself(self, user: UserDef) -> dict:
        return {**self.user(user), "locale": "en_US", "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}

    def category(self, key: str) -> dict:
        category_id, category_key, color, name = CATEGORIES[key]
        return {"self": f"{self.rest}/statuscategory/{category_id}", "id": category_id,
                "key": category_key, "colorName": color, "name": name}

    def status(self, status: StatusDef) -> dict:
        return {"self": f"{self.rest}/status/{status.id}", "description": status.description,
                "iconUrl": f"{self.base}/images/icons/statuses/generic.png", "name": status.name,
                "id": status.id, "statusCategory": self.category(status.category)}

    def priority(self, priority: Named, *, full: bool = False) -> dict:
        out = {"self": f"{self.rest}/priority/{priority.id}",
               "iconUrl": f"{self.base}/images/icons/priorities/{priority.name.lower()}.svg",
               "name": priority.name, "id": priority.id}
        if full:
            out.update({"description": priority.description, "statusColor": "#ffab00",
                        "isDefault": priority.id == "3"})
        return out

    def resolution(self, resolution: Named | None) -> dict | None:
        if resolution is None:
            return None
        return {"self": f"{self.rest}/resolution/{resolution.id}", "id": resolution.id,
                "description": resolution.description, "name": resolution.name}

    def issue_type(self, issue_type: Named) -> dict:
        return {"self": f"{self.rest}/issuetype/{issue_type.id}", "id": issue_type.id,
                "description": issue_type.description,
                "iconUrl": f"{self.base}/images/icons/issuetypes/{issue_type.name.lower()}.svg",
                "name": issue_type.name, "subtask": False, "avatarId": 10318,
                "hierarchyLevel": 0}

    def component(self, component: Named) -> dict:
        return {"self": f"{self.rest}/component/{component.id}", "id": component.id,
                "name": component.name}

    def project(self, project: ProjectDef, *, full: bool = False) -> dict:
        out = {"self": f"{self.rest}/project/{project.id}", "id": project.id, "key": project.key,
               "name": project.name, "projectTypeKey": "software", "simplified": False,
               "avatarUrls": self._avatars("project", project.key)}
        if not full:
            return out
        return {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                **out, "description": "", "lead": self.user(self.catalog.service),
                "components": [self.component(c)
                               for c in self.catalog.components[project.key].values()],
                "issueTypes": [self.issue_type(self.catalog.issue_types[name])
                               for name in project.issue_types],
                "assigneeType": "UNASSIGNED", "versions": [], "roles": {},
                "style": "classic", "isPrivate": False, "properties": {}}

    # -- comments and issues ----------------------------------------------------------------

    def comment(self, issue: Issue, comment: Comment) -> dict:
        out = {"self": f"{self.rest}/issue/{issue.id}/comment/{comment.id}", "id": comment.id,
               "author": self.user(comment.author), "body": self.rich(comment.body),
               "updateAuthor": self.user(comment.update_author),
               "created": jira_time(comment.created), "updated": jira_time(comment.updated)}
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def comment_page(self, issue: Issue, comments: list[Comment], start: int, size: int) -> dict:
        page = comments[start:start + size]
        return {"comments": [self.comment(issue, c) for c in page],
                "self": f"{self.rest}/issue/{issue.id}/comment", "maxResults": size,
                "total": len(comments), "startAt": start}

    def issue(self, issue: Issue, selection: FieldSelection, properties: Sequence[str] = (),
              *, changelog: bool = False) -> dict:
        fields = {name: value for name, value in self.fields(issue).items()
                  if selection.includes(name)}
        out = {"expand": ISSUE_EXPAND, "id": issue.id, "self": f"{self.rest}/issue/{issue.id}",
               "key": issue.key, "fields": fields, **self.expansions(issue, changelog=changelog)}
        if properties:
            out["properties"] = {k: issue.properties[k] for k in properties
                                 if k in issue.properties}
        return out

    def expansions(self, issue: Issue, *, changelog: bool) -> dict:
        """What ``expand`` adds to an issue: ``changelog`` is every history, oldest first."""
        if not changelog:
            return {}
        total = len(issue.histories)
        return {"changelog": {"startAt": 0, "maxResults": total, "total": total,
                              "histories": [self.history(h) for h in issue.histories]}}

    def history(self, history: History) -> dict:
        """A changelog as REST reads it back: the items its webhook carried, with the author."""
        return {"id": history.id, "author": self.user(history.author),
                "created": jira_time(history.created), "items": [dict(i) for i in history.items]}

    def fields(self, issue: Issue, *, comments: bool = True) -> dict[str, Any]:
        """Every field of the issue, in the order real payloads list them."""
        watchers = f"{self.rest}/issue/{issue.key}"
        out: dict[str, Any] = {
            "statuscategorychangedate": jira_time(issue.status_changed),
            "issuetype": self.issue_type(issue.issue_type),
            "components": [self.component(c) for c in issue.components],
            "timespent": None, "timeoriginalestimate": None,
            "project": self.project(issue.project),
            "description": self.rich(issue.description),
            "fixVersions": [], "aggregatetimespent": None,
            "resolution": self.resolution(issue.resolution),
            "timetracking": {}, "security": None, "attachment": [],
            "aggregatetimeestimate": None, "resolutiondate": jira_time(issue.resolution_date),
            "workratio": -1, "summary": issue.summary,
            "watches": {"self": f"{watchers}/watchers", "watchCount": 0, "isWatching": False},
            "lastViewed": None, "creator": self.user(issue.creator), "subtasks": [],
            "created": jira_time(issue.created), "reporter": self.user(issue.reporter),
            "aggregateprogress": {"progress": 0, "total": 0},
            "priority": self.priority(issue.priority), "labels": list(issue.labels),
            "environment": None, "timeestimate": None, "aggregatetimeoriginalestimate": None,
            "versions": [], "duedate": None, "progress": {"progress": 0, "total": 0},
            "votes": {"self": f"{watchers}/votes", "votes": 0, "hasVoted": False},
            "issuelinks": [], "assignee": self.user(issue.assignee),
            "updated": jira_time(issue.updated), "status": self.status(issue.status),
        }
        if self.cloud:  # fields the Cloud captures carry and the Server ones do not
            out["statusCategory"] = self.category(issue.status.category)
            out["issuerestriction"] = {"issuerestrictions": {}, "shouldDisplay": True}
        else:
            del out["statuscategorychangedate"], out["security"]
        for custom in issue.project.fields:
            out[custom.id] = self.custom(custom.kind, issue.custom.get(custom.id), custom.options)
        if comments:
            out["comment"] = self.comment_page(issue, issue.comments, 0, len(issue.comments))
            out["worklog"] = {"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []}
        return out

    def custom(self, kind: str, value: Any, options: tuple[str, ...]) -> Any:
        if value is None:
            return None
        if kind == "textarea":
            return self.rich(value)
        if kind == "option":
            option_id = str(10100 + options.index(value))
            return {"self": f"{self.rest}/customFieldOption/{option_id}", "value": value,
                    "id": option_id}
        return value
