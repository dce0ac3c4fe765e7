"""Inbound sync: Jira's webhook deliveries into the links, and their flushes to QALITA."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from jira_sync import deliveries
from jira_sync.broker import DELIVERY_TASK, INBOUND_FLUSH_TASK, send_deliveries
from jira_sync.sync import inbound, jira_changes, reconcile
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.celery_app import app
from worker.house import batch_task, task
from worker.tasks.outbound import FLUSH_BUDGET_SECONDS, queue_backlog

logger = logging.getLogger("jira_sync.worker")


@batch_task(name=DELIVERY_TASK, queue=queues.JIRA_INBOUND, give_up=lambda ids, reason:
            _give_up(ids, reason))
def jira_delivery(messages: Sequence[Any]) -> list[Due]:
    """Fold the stored deliveries whose messages arrived together into their links; the
    messages are acknowledged only after that commits, and the links' flushes scheduled after
    it. A message holds the ids the web stored together."""
    inbox_ids = [item for message in messages
                 for item in (message if isinstance(message, list) else [message])]
    # A time limit is the batch's loss, not a bug in one delivery: it must reach the task.
    return jira_changes.receive_deliveries(runtime.sync_context(), inbox_ids,
                                           passthrough=(SoftTimeLimitExceeded,))


def _give_up(message: Any, reason: str) -> None:
    """A message that kept losing its worker: one holding several deliveries is split, so
    only the delivery that causes it ends as a dead letter."""
    if isinstance(message, list) and len(message) > 1:
        logger.warning("a message of %d Jira deliveries lost its worker too often; sent again "
                       "as one message each", len(message))
        for inbox_id in message:
            send_deliveries(app, [inbox_id])
        return
    inbox_id = message[0] if isinstance(message, list) and message else message
    jira_changes.give_up(runtime.sync_context(), inbox_id, reason)


@task(name=INBOUND_FLUSH_TASK, queue=queues.JIRA_INBOUND, transactional=False)
def flush_inbound(link_ids: list[int]) -> list[Due]:
    """Write each link's pending Jira changes to QALITA, a few links leased at a time;
    schedules their next attempts."""
    context = runtime.sync_context()
    started, dues = time.monotonic(), []
    for done in range(0, len(link_ids), inbound.LINKS_PER_LEASE):
        if time.monotonic() - started > FLUSH_BUDGET_SECONDS:
            app.send_task(INBOUND_FLUSH_TASK, args=(link_ids[done:],),
                          queue=queues.JIRA_INBOUND)
            break
        dues += inbound.flush_inbound(context, link_ids[done:done + inbound.LINKS_PER_LEASE])
    return dues


@task(name="jira_sync.sweep_deliveries", queue=queues.MAINTENANCE, transactional=False)
def sweep_deliveries() -> None:
    """Hand the workers the stored deliveries nobody took (the broker was down when they
    came) and those held for an integration that is enabled again."""
    context = runtime.sync_context()
    with context.database.unit_of_work() as session:
        released = deliveries.release_held(session)
    send_deliveries(app, released)
    if queue_backlog(queues.JIRA_INBOUND):
        return  # what waits there is on its way; the rows may be among it
    with context.database.unit_of_work() as session:
        lost = deliveries.unclaimed(session, context.timings.sweep_seconds)
    send_deliveries(app, lost)


@task(name="jira_sync.reconcile", queue=queues.MAINTENANCE, transactional=False)
def reconcile_all() -> list[Due]:
    """One reconciliation sweep of every enabled integration with linked issues."""
    context = runtime.sync_context()
    dues: list[Due] = []
    for integration_id in reconcile.due_integrations(context):
        try:
            _, found = reconcile.reconcile(context, integration_id)
        except Exception:  # One site's failure does not stop the others' sweeps.
            logger.exception("reconciliation of integration %s failed", integration_id)
            continue
        dues += found
    return dues
