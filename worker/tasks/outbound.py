"""Outbound sync: flushes of links and the sweep that finds work a lost worker left."""

from __future__ import annotations

from sqlalchemy.orm import Session

from jira_sync import intake
from jira_sync.broker import FLUSH_TASK
from jira_sync.store.types import utcnow
from jira_sync.sync import outbound, sweep
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.house import task


@task(name=FLUSH_TASK, queue=queues.OUTBOUND, transactional=False)
def flush_link(link_id: int) -> list[Due]:
    """Bring one link's Jira issue to its desired state; schedules its own next attempt."""
    return outbound.flush_link(runtime.sync_context(), link_id)


@task(name="jira_sync.sweep", queue=queues.MAINTENANCE)
def sweep_links(session: Session) -> list[Due]:
    """Flush links whose flush or wake-up was lost, and apply events that were waiting."""
    context = runtime.sync_context()
    now = utcnow()
    overdue = [Due(link_id, now) for link_id in
               sweep.overdue_links(session, context.timings.sweep_seconds)]
    return overdue + intake.pump_waiting(session, context)
