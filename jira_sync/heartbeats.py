"""Queue heartbeats: proof that each queue is being consumed, not merely that workers live.

Beat sends a probe through every queue; the worker that consumes it records when. A queue
whose heartbeat ages past a few intervals has a stuck or missing consumer (anchors R8).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync.store.models import QueueHeartbeat
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert


def record(session: Session, queue: str, hostname: str, sent_at: datetime) -> None:
    values = {"queue": queue, "hostname": hostname, "sent_at": sent_at, "seen_at": utcnow()}
    statement = insert(session, QueueHeartbeat).values(values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[QueueHeartbeat.queue],
        set_={k: statement.excluded[k] for k in ("hostname", "sent_at", "seen_at")},
    ))


def latest(session: Session) -> dict[str, QueueHeartbeat]:
    """The newest consumed probe of each queue."""
    return {b.queue: b for b in session.scalars(select(QueueHeartbeat))}


def ages(session: Session) -> dict[str, float]:
    """Seconds since each queue's last probe was consumed."""
    now = utcnow()
    return {queue: (now - b.seen_at).total_seconds() for queue, b in latest(session).items()}
