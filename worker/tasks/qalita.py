"""Intake of QALITA issue events published on the queue (CONTRACT §4)."""

from __future__ import annotations

from typing import Any

from jira_sync import intake
from jira_sync.publish import QALITA_EVENT_TASK
from jira_sync.sync.state import Due
from worker import queues, runtime
from worker.house import task


@task(name=QALITA_EVENT_TASK, queue=queues.QALITA, transactional=False)
def qalita_event(event: Any) -> list[Due]:
    """Validate, store and fold the event into its link; the message is acknowledged only
    after that commits, and the link's flush is scheduled after it."""
    return intake.receive_event(runtime.sync_context(), event)
