"""Intake of QALITA issue events published on the queue (CONTRACT §4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jira_sync import intake
from jira_sync.publish import QALITA_EVENT_TASK
from worker import queues
from worker.house import task


@task(name=QALITA_EVENT_TASK, queue=queues.QALITA)
def qalita_event(session: Session, event: Any) -> None:
    """Store the event in the inbox; the message is acknowledged only after that commits."""
    intake.store_qalita_event(session, event)
