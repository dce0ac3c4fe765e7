"""Integration Logs: every decision of the sync and every admin action, newest first.

Rows are written without secrets, but a remote's answer quoted in a message could still echo
a credential back; so the integration's own secrets are masked again on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync.admin.paging import Page, page
from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.store.models import Integration, IssueLink, LogEntry

MASK = "***"


def list_logs(session: Session, integration: Integration, box: SecretBox, *,
              qalita_issue_id: int | None = None, jira_key: str | None = None,
              level: str | None = None, decision: str | None = None,
              since: datetime | None = None, limit: int | None = None,
              cursor: str | None = None) -> Page:
    query = select(LogEntry).where(LogEntry.integration_id == integration.id)
    if qalita_issue_id is not None or jira_key is not None:
        links = select(IssueLink.id).where(IssueLink.integration_id == integration.id)
        if qalita_issue_id is not None:
            links = links.where(IssueLink.qalita_issue_id == qalita_issue_id)
        if jira_key is not None:
            links = links.where(IssueLink.jira_issue_key == jira_key.upper())
        query = query.where(LogEntry.link_id.in_(links))
    if level is not None:
        query = query.where(LogEntry.level == level)
    if decision is not None:
        query = query.where(LogEntry.decision == decision)
    if since is not None:
        query = query.where(LogEntry.created_at >= since)
    rows = page(session, query, LogEntry.id, lambda row: row, limit=limit, cursor=cursor)
    secrets = _secrets(integration, box)
    issues = _issues_of(session, {row.link_id for row in rows.items if row.link_id})
    return Page([entry_view(row, secrets, issues) for row in rows.items], rows.next_cursor)


def entry_view(row: LogEntry, secrets: Iterable[str],
               issues: dict[int, tuple[int, str | None]]) -> dict[str, Any]:
    qalita_issue_id, jira_key = issues.get(row.link_id or 0, (None, None))
    return {
        "id": row.id, "created_at": row.created_at, "level": row.level, "action": row.action,
        "decision": row.decision, "message": mask(row.message, secrets),
        "details": json.loads(mask(json.dumps(row.details or {}), secrets)),
        "link_id": row.link_id, "qalita_issue_id": qalita_issue_id, "jira_key": jira_key,
    }


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _secrets(integration: Integration, box: SecretBox) -> list[str]:
    try:
        values = box.open(integration.secrets_sealed).values()
    except SecretsUnreadable:
        return []
    # Longest first, so a secret containing another is masked whole; JSON-escaped forms too.
    found = {form for value in values if len(value) >= 4
             for form in (value, json.dumps(value)[1:-1])}
    return sorted(found, key=len, reverse=True)


def _issues_of(session: Session, link_ids: set[int]) -> dict[int, tuple[int, str | None]]:
    """Which issue each link of a page is (one query, not one per row)."""
    if not link_ids:
        return {}
    rows = session.execute(select(IssueLink.id, IssueLink.qalita_issue_id,
                                  IssueLink.jira_issue_key)
                           .where(IssueLink.id.in_(link_ids)))
    return {link_id: (qalita_id, key) for link_id, qalita_id, key in rows}
