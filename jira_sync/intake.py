"""Intake of QALITA events: store first, decide later.

An event is durable once its inbox row commits; only then is the broker message acknowledged
(the task acks late). Redelivered or re-sent events collapse on ``event_id``. What cannot be
keyed becomes a dead letter with the reason instead of vanishing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync.store.models import DeadLetter, InboxEvent
from jira_sync.store.upsert import insert

QALITA = "qalita"
MAX_EVENT_ID_LENGTH = 255


def store_qalita_event(session: Session, event: Any) -> InboxEvent | DeadLetter:
    """Store ``event`` in the inbox, or record why it cannot be stored as a dead letter."""
    if not isinstance(event, dict):
        return _dead(session, {"event": event}, f"event is a {type(event).__name__}, "
                     "not a JSON object")
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        return _dead(session, event, "event_id: required, a string of 1 to "
                     f"{MAX_EVENT_ID_LENGTH} characters")
    tenant = event.get("tenant") if isinstance(event.get("tenant"), str) else "default"
    event_type = event.get("event_type") if isinstance(event.get("event_type"), str) else None
    session.execute(insert(session, InboxEvent).values(
        source=QALITA, dedupe_key=event_id, tenant=tenant[:64],
        event_type=event_type and event_type[:64], payload=event, state="received",
        attempts=0,
    ).on_conflict_do_nothing(index_elements=["source", "dedupe_key"]))
    return session.scalars(select(InboxEvent).where(
        InboxEvent.source == QALITA, InboxEvent.dedupe_key == event_id)).one()


def _dead(session: Session, payload: dict[str, Any], reason: str) -> DeadLetter:
    letter = DeadLetter(kind="invalid_event", reason=reason, payload=payload)
    session.add(letter)
    session.flush()
    return letter
