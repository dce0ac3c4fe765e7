"""Outbound sync: flushes of links and the sweep that finds work a lost worker left."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy.orm import Session

from jira_sync import intake
from jira_sync.broker import FLUSH_TASK, PROBE_TASK, queue_depth
from jira_sync.store.types import utcnow
from jira_sync.sync import outbound, pauses, sweep
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.batching import BatchTask
from worker.celery_app import TASK_SOFT_TIME_LIMIT, app
from worker.house import task

logger = logging.getLogger("jira_sync.worker")
# While more QALITA events than one intake batch wait on the queue, the state a flush would
# write is likely out of date already and Jira calls are the scarce resource: the flush waits
# this long and looks again, for at most JIRA_SYNC_BACKLOG_WAIT_SECONDS, so a burst of updates
# costs one edit per issue and a steady flood still flushes.
DEFER_STEP_SECONDS = 2.0
# A flush message of many links is split into messages this small once it no longer waits,
# so the pool shares them; one that runs past the budget sends the rest on (time limits).
FLUSH_CHUNK_LINKS = 20
FLUSH_BUDGET_SECONDS = TASK_SOFT_TIME_LIMIT / 4
BACKLOG_CHECK_SECONDS = 1.0
_backlog: dict[str, tuple[float, int]] = {}


@task(name=FLUSH_TASK, queue=queues.OUTBOUND, transactional=False)
def flush_links(link_ids: list[int], since: float | None = None) -> list[Due]:
    """Bring each link's Jira issue to its desired state; schedules their next attempts."""
    context = runtime.sync_context()
    since = since or time.time()
    if (time.time() - since + DEFER_STEP_SECONDS <= context.timings.backlog_wait_seconds
            and intake_backlog() > BatchTask.flush_every):
        outbound.postpone(context, link_ids, utcnow() + timedelta(seconds=DEFER_STEP_SECONDS))
        _send_on(link_ids, since, countdown=DEFER_STEP_SECONDS)
        return []
    if len(link_ids) > FLUSH_CHUNK_LINKS:
        # The wait is over: spread the links over the pool in small messages.
        for start in range(0, len(link_ids), FLUSH_CHUNK_LINKS):
            _send_on(link_ids[start:start + FLUSH_CHUNK_LINKS], since)
        return []
    started, dues = time.monotonic(), []
    for done, link_id in enumerate(link_ids):
        if time.monotonic() - started > FLUSH_BUDGET_SECONDS:
            _send_on(link_ids[done:], since)
            break
        dues += outbound.flush_link(context, link_id)
    return dues


def _send_on(link_ids: list[int], since: float, countdown: float | None = None) -> None:
    """The same flush, later or in parts, keeping when its wait began."""
    app.send_task(FLUSH_TASK, args=(link_ids, since), queue=queues.OUTBOUND,
                  countdown=countdown)


def intake_backlog() -> int:
    return queue_backlog(queues.QALITA)


def queue_backlog(queue: str) -> int:
    """Messages waiting on ``queue``, read at most once a second per process and queue; 0
    when the broker cannot say."""
    checked, count = _backlog.get(queue, (0.0, 0))
    if time.monotonic() - checked > BACKLOG_CHECK_SECONDS:
        try:
            count = queue_depth(app, queue)
        except Exception as exc:  # A guess only: never a reason to fail the caller.
            logger.debug("backlog of %s unknown: %s", queue, type(exc).__name__)
            count = 0
        _backlog[queue] = (time.monotonic(), count)
    return count


@task(name="jira_sync.sweep", queue=queues.MAINTENANCE)
def sweep_links(session: Session) -> list[Due]:
    """Flush links whose flush or wake-up was lost, apply events that were waiting, and have
    paused integrations probed (a pause ends at the first call that succeeds)."""
    context = runtime.sync_context()
    # Held events first: they wait for link locks tenant by tenant, as intake does, while
    # marking the overdue ones skips any locked link and so never waits while holding them.
    pumped = intake.pump_waiting(session, context)
    if pauses.any_paused(session):
        # The probe calls out, so it is a task of its own; sent only when something is
        # paused, since even an empty extra task per sweep delayed intake (filesystem broker).
        app.send_task(PROBE_TASK, queue=queues.MAINTENANCE)
    now = utcnow()
    grace = context.timings.sweep_seconds
    return pumped + [Due(link_id, now) for link_id in sweep.overdue_links(session, grace)] \
        + [Due(link_id, now, inbound=True)
           for link_id in sweep.overdue_inbound(session, grace)]
