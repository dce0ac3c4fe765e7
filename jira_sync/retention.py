"""Retention: the log and finished inbox rows are pruned, and pending writes and the rate
limiter's rows once expired; dead letters are kept until handled."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from jira_sync.store.models import InboxEvent, LogEntry, RateLimitState
from jira_sync.store.types import utcnow
from jira_sync.sync import echoes


def prune(session: Session, days: int) -> dict[str, int]:
    cutoff = utcnow() - timedelta(days=days)
    logs = session.execute(delete(LogEntry).where(LogEntry.created_at < cutoff))
    # Processed rows only: a waiting or dead event is still somebody's business. The event
    # id dedupe window is therefore the retention period, far longer than any redelivery.
    inbox = session.execute(delete(InboxEvent).where(
        InboxEvent.state == "processed", InboxEvent.processed_at < cutoff))
    limits = session.execute(delete(RateLimitState).where(
        RateLimitState.expires_at < time.time()))
    return {"integration_log": logs.rowcount, "inbox": inbox.rowcount,
            "pending_writes": echoes.prune(session), "rate_limits": limits.rowcount}
