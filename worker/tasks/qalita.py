"""Intake of QALITA issue events published on the queue (CONTRACT §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from jira_sync import intake, telemetry
from jira_sync.publish import QALITA_EVENT_TASK
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.house import batch_task


@batch_task(name=QALITA_EVENT_TASK, queue=queues.QALITA, give_up=lambda event, reason:
            intake.give_up(runtime.sync_context(), event, reason))
def qalita_event(events: Sequence[Any]) -> list[Due]:
    """Validate, store and fold the events that arrived together into their links; their
    messages are acknowledged only after that commits, and the links' flushes are scheduled
    after it."""
    for event in events:
        telemetry.event_in("qalita", event.get("event_type") if isinstance(event, dict) else None)
    # A time limit is the batch's loss, not a bug in one event: it must reach the task.
    return intake.receive_batch(runtime.sync_context(), events,
                                passthrough=(SoftTimeLimitExceeded,))
