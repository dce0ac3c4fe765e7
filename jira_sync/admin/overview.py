"""One integration's health at a glance: what an operator checks first when asked "is the
Jira sync working?"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from jira_sync.admin import dead_letters
from jira_sync.admin.integrations import paused
from jira_sync.deliveries import HELD, RECEIVED
from jira_sync.store.models import InboxEvent, Integration, IssueLink, LogEntry
from jira_sync.store.types import utcnow

# The log rows that stand for a write to Jira (outbound), by action and decision.
JIRA_WRITES = (("create", "created"), ("edit", "applied"), ("transition", "applied"),
               ("comment", "applied"))


def overview(session: Session, integration: Integration) -> dict[str, Any]:
    now = utcnow()
    links = dict(session.execute(
        select(IssueLink.state, func.count()).where(IssueLink.integration_id == integration.id)
        .group_by(IssueLink.state)).all())
    dead = dead_letters.count(session, integration_id=integration.id, state=dead_letters.OPEN)
    backlog = session.scalar(select(func.count()).select_from(InboxEvent).where(
        InboxEvent.integration_id == integration.id,
        InboxEvent.state.in_((RECEIVED, HELD)))) or 0
    last_webhook = session.scalar(select(func.max(InboxEvent.received_at)).where(
        InboxEvent.integration_id == integration.id, InboxEvent.source == "jira"))
    last_write = session.scalar(select(func.max(LogEntry.created_at)).where(
        LogEntry.integration_id == integration.id,
        tuple_(LogEntry.action, LogEntry.decision).in_(JIRA_WRITES)))
    limited = session.scalar(select(func.count()).select_from(LogEntry).where(
        LogEntry.integration_id == integration.id, LogEntry.decision == "rate_limited",
        LogEntry.created_at >= now - timedelta(hours=1))) or 0
    return {"id": integration.id, "tenant": integration.tenant,
            "enabled": integration.enabled, "paused": paused(integration), "links_by_state": links,
            "dead_letters_open": dead, "inbox_backlog": backlog, "last_webhook_at": last_webhook,
            "last_jira_write_at": last_write, "rate_limited_last_hour": limited}
