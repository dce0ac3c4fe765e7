"""The simulator's stored issues and comments, plus Jira's timestamp format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jira_sync.simulators.jira.catalog import Named
from jira_sync.simulators.jira.config import ProjectDef, StatusDef, UserDef


def now() -> datetime:
    return datetime.now(UTC)


def jira_time(moment: datetime | None) -> str | None:
    """Jira's wire format: ``2026-11-28T10:15:30.000+0000``."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class Comment:
    id: str
    body: Any  # ADF (Cloud) or wiki string (Server), exactly as written
    author: UserDef
    update_author: UserDef
    created: datetime
    updated: datetime


@dataclass
class History:
    """One change to an issue as Jira keeps it: the changelog its webhook carried, readable later
    (``expand=changelog``, ``/changelog``) by a reconciliation that lost the webhook."""

    id: str
    author: UserDef
    created: datetime
    items: list[dict]


@dataclass
class Issue:
    id: str
    key: str
    project: ProjectDef
    issue_type: Named
    summary: str
    status: StatusDef
    priority: Named
    reporter: UserDef | None
    creator: UserDef
    created: datetime
    indexed_at: float  # wall-clock seconds; search ignores the issue until then
    description: Any = None
    labels: list[str] = field(default_factory=list)
    assignee: UserDef | None = None
    components: list[Named] = field(default_factory=list)
    resolution: Named | None = None
    resolution_date: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    histories: list[History] = field(default_factory=list)
    former_keys: list[str] = field(default_factory=list)  # keys it had before it was moved
    updated: datetime = field(default_factory=now)
    status_changed: datetime = field(default_factory=now)
    deleted: bool = False

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])

    def values(self) -> dict[str, Any]:
        """The editable state, for computing a changelog by difference."""
        return {
            "summary": self.summary, "description": self.description,
            "labels": list(self.labels), "assignee": self.assignee, "reporter": self.reporter,
            "priority": self.priority, "components": list(self.components),
            "resolution": self.resolution, "status": self.status, **self.custom,
        }

    def comment(self, comment_id: str) -> Comment | None:
        return next((c for c in self.comments if c.id == comment_id), None)
