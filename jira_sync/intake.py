"""Intake of QALITA events: validate, store, fold into the desired state, in one transaction.

An event is durable once its inbox row commits; only then is the broker message acknowledged
(the task acks late) or the HTTP sender answered. Redelivered or re-sent events collapse on
``event_id``. An invalid event becomes a dead letter with the validation errors and is never
retried. An event for a tenant with no enabled integration waits in the inbox until one
exists (``pump_waiting``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jira_sync.events.qalita_event import InvalidEvent, QalitaEvent, parse_event
from jira_sync.integrations import serving
from jira_sync.store.models import InboxEvent, Integration
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import dead_letter, log
from jira_sync.sync.state import Due, apply_event

logger = logging.getLogger("jira_sync.intake")
QALITA = "qalita"
WAITING, PROCESSED = "waiting", "processed"
PUMP_BATCH = 500


def receive_event(ctx: SyncContext, payload: Any) -> list[Due]:
    """The queue path, in its own transaction, losing nothing.

    A database that cannot be reached raises (the task is retried: the event must be stored
    before the message is acknowledged); any other failure is a bug in handling this one
    event, so the event becomes an ``intake_failed`` dead letter instead of being retried
    forever or acknowledged and lost.
    """
    try:
        with ctx.database.unit_of_work() as session:
            return receive(session, ctx, payload)
    except OperationalError:
        raise
    except Exception as exc:  # Kept as a dead letter; the traceback goes to the log.
        logger.exception("QALITA event could not be processed; kept as a dead letter")
        kept = payload if isinstance(payload, dict) else {"event": payload}
        with ctx.database.unit_of_work() as session:
            dead_letter(session, "intake_failed",
                        f"processing failed: {type(exc).__name__}: {str(exc)[:500]}",
                        payload=kept)
        return []


def receive(session: Session, ctx: SyncContext, payload: Any) -> list[Due]:
    """The queue path: an event the schema rejects is a dead letter, never an exception."""
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        kept = payload if isinstance(payload, dict) else {"event": payload}
        dead_letter(session, "invalid_event", f"invalid QALITA event: {exc.reason}",
                    payload=kept, request={"errors": exc.errors})
        return []
    return accept(session, ctx, event, payload)


def accept(session: Session, ctx: SyncContext, event: QalitaEvent,
           payload: dict[str, Any]) -> list[Due]:
    """Store a valid event (once per ``event_id``) and apply it when its tenant is served."""
    integration = ctx.serving(session, event.tenant)
    inbox_id = session.scalar(insert(session, InboxEvent).values(
        source=QALITA, dedupe_key=event.event_id, tenant=event.tenant,
        event_type=event.event_type, payload=payload, attempts=1, received_at=utcnow(),
        state=PROCESSED if integration else WAITING,
        integration_id=integration.id if integration else None,
        processed_at=utcnow() if integration else None,
    ).on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
        .returning(InboxEvent.id))
    if inbox_id is None:
        log(session, None, event.event_type, "duplicate",
            f"event {event.event_id} was already received", event_id=event.event_id)
        return []
    if integration is None:
        _log_waiting(session, event)
        return []
    due = apply_event(session, integration, ctx.mappings(integration), event,
                      ctx.debounce_seconds)
    return [due] if due else []


def pump_waiting(session: Session, ctx: SyncContext) -> list[Due]:
    """Apply held events whose tenant now has an enabled integration, oldest first."""
    served = select(Integration.tenant).where(Integration.enabled.is_(True))
    rows = session.scalars(select(InboxEvent).where(
        InboxEvent.source == QALITA, InboxEvent.state == WAITING,
        InboxEvent.tenant.in_(served)).order_by(InboxEvent.id).limit(PUMP_BATCH)
        .with_for_update(skip_locked=True)).all()
    dues: list[Due] = []
    for inbox in rows:
        event = parse_event(inbox.payload)
        integration = serving(session, event.tenant)
        assert integration is not None  # selected for that
        due = apply_event(session, integration, ctx.mappings(integration), event,
                          ctx.debounce_seconds)
        dues += [due] if due else []
        inbox.state, inbox.integration_id, inbox.processed_at = (
            PROCESSED, integration.id, utcnow())
        inbox.attempts += 1
    return dues


def _log_waiting(session: Session, event: QalitaEvent) -> None:
    log(session, None, event.event_type, "waiting",
        f"no enabled integration serves tenant {event.tenant!r}; the event waits",
        event_id=event.event_id)
