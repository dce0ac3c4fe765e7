"""Maintenance tasks: queue heartbeats, retention, and the probe of paused integrations."""

from __future__ import annotations

import socket
from datetime import datetime

from sqlalchemy.orm import Session

from jira_sync import heartbeats, retention
from jira_sync.broker import PROBE_TASK
from jira_sync.store.types import utcnow
from jira_sync.sync import pauses
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.house import task


@task(name="jira_sync.ping", queue=queues.MAINTENANCE)
def ping(session: Session, queue: str, sent_at: str) -> None:
    """Record that a probe sent through ``queue`` was consumed (see jira_sync.heartbeats)."""
    heartbeats.record(session, queue, socket.gethostname(), datetime.fromisoformat(sent_at))


@task(name="jira_sync.send_heartbeats", queue=queues.MAINTENANCE)
def send_heartbeats(session: Session) -> None:
    """Send one probe through every queue of the service."""
    sent_at = utcnow().isoformat()
    for queue in queues.ALL:
        ping.apply_async((queue, sent_at), queue=queue)


@task(name="jira_sync.prune", queue=queues.MAINTENANCE)
def prune(session: Session) -> dict[str, int]:
    """Delete log and processed inbox rows past the retention period."""
    return retention.prune(session, runtime.settings().retention_days)


@task(name=PROBE_TASK, queue=queues.MAINTENANCE, transactional=False)
def probe_paused() -> list[Due]:
    """Try each paused integration's refused side again; one that answers resumes, and the
    work its pause held is flushed."""
    return pauses.probe(runtime.sync_context())
