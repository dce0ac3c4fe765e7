"""Intake of QALITA events: validate, store, fold into the desired state, a batch per transaction.

An event is durable once its inbox row commits; only then is the broker message acknowledged
(the task acks late) or the HTTP sender answered. Redelivered or re-sent events collapse on
``event_id``. An invalid event becomes a dead letter with the validation errors and is never
retried. An event for a tenant no integration serves waits in the inbox until one exists
(``pump_waiting``); a disabled integration takes its events into its links as usual, and
holds their flushes until it is enabled (``sync.pauses``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
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
from jira_sync.sync.journal import dead_letter, entry, write
from jira_sync.sync.state import Due, apply_events

logger = logging.getLogger("jira_sync.intake")
QALITA = "qalita"
WAITING, PROCESSED = "waiting", "processed"
PUMP_BATCH = 500


def receive_batch(ctx: SyncContext, payloads: Sequence[Any], *,
                  passthrough: tuple[type[BaseException], ...] = ()) -> list[Due]:
    """The queue path: a batch of messages stored in one transaction, losing nothing.

    A database that cannot be reached raises (the batch is sent again: each event must be
    stored before its message is acknowledged, and ``event_id`` makes the retry harmless).
    Any other failure is a bug in handling some event, so the batch is taken again one event
    at a time and only the event that trips it becomes an ``intake_failed`` dead letter,
    instead of being retried forever or acknowledged and lost. Exceptions in ``passthrough``
    (the worker's time limit) are the caller's to handle.
    """
    try:
        with ctx.database.unit_of_work() as session:
            return receive(session, ctx, payloads)
    except (OperationalError, *passthrough):
        raise
    except Exception as exc:  # Kept as a dead letter; the traceback goes to the log.
        if len(payloads) > 1:
            return [due for payload in payloads
                    for due in receive_batch(ctx, [payload], passthrough=passthrough)]
        logger.exception("QALITA event could not be processed; kept as a dead letter")
        give_up(ctx, payloads[0], f"processing failed: {type(exc).__name__}: {str(exc)[:500]}")
        return []


def give_up(ctx: SyncContext, payload: Any, reason: str) -> None:
    """Keep an event that cannot be processed as an ``intake_failed`` dead letter, unless it
    was stored after all (by the run that was lost, before it was)."""
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    with ctx.database.unit_of_work() as session:
        if isinstance(event_id, str) and session.scalar(select(InboxEvent.id).where(
                InboxEvent.source == QALITA, InboxEvent.dedupe_key == event_id)):
            return
        dead_letter(session, "intake_failed", reason, payload=_kept(payload))


def receive(session: Session, ctx: SyncContext, payloads: Sequence[Any]) -> list[Due]:
    """Parse, then accept: an event the schema rejects is a dead letter, never an exception."""
    valid: list[tuple[QalitaEvent, dict[str, Any]]] = []
    for payload in payloads:
        try:
            valid.append((parse_event(payload), payload))
        except InvalidEvent as exc:
            dead_letter(session, "invalid_event", f"invalid QALITA event: {exc.reason}",
                        payload=_kept(payload), request={"errors": exc.errors})
    return accept(session, ctx, valid)


def accept(session: Session, ctx: SyncContext,
           events: Sequence[tuple[QalitaEvent, dict[str, Any]]]) -> list[Due]:
    """Store valid events (once per ``event_id``) and apply those whose tenant is served."""
    notes: list[dict[str, Any]] = []
    fresh: dict[str, tuple[QalitaEvent, dict[str, Any]]] = {}
    for event, payload in events:
        if event.event_id in fresh:
            notes.append(_duplicate(event))
        else:
            fresh[event.event_id] = (event, payload)
    # Which integration serves each tenant is decided once, for the row and the fold alike.
    served_by = {tenant: ctx.serving(session, tenant)
               for tenant in {event.tenant for event, _ in fresh.values()}}
    stored: set[str] = set()
    if fresh:
        now = utcnow()
        rows = []
        # In key order, so two batches holding the same event ids wait instead of deadlocking.
        for event_id in sorted(fresh):
            event, payload = fresh[event_id]
            integration = served_by[event.tenant]
            rows.append(dict(
                source=QALITA, dedupe_key=event_id, tenant=event.tenant,
                event_type=event.event_type, payload=payload, attempts=1, received_at=now,
                state=PROCESSED if integration else WAITING,
                integration_id=integration.id if integration else None,
                processed_at=now if integration else None))
        stored = set(session.scalars(insert(session, InboxEvent).values(rows)
                                     .on_conflict_do_nothing(index_elements=["source",
                                                                             "dedupe_key"])
                                     .returning(InboxEvent.dedupe_key)))
    by_tenant: dict[str, list[QalitaEvent]] = defaultdict(list)
    for event, _ in fresh.values():
        if event.event_id not in stored:
            notes.append(_duplicate(event))
        elif served_by[event.tenant] is None:
            notes.append(_waiting(event))
        else:
            by_tenant[event.tenant].append(event)
    write(session, notes)
    dues: list[Due] = []
    # Tenant by tenant in one order, so the links of a batch are locked in one global order.
    for tenant in sorted(by_tenant):
        integration = served_by[tenant]
        assert integration is not None  # grouped for that
        dues += apply_events(session, integration, ctx.mappings(integration), by_tenant[tenant],
                             ctx.debounce_seconds)
    return dues


def pump_waiting(session: Session, ctx: SyncContext) -> list[Due]:
    """Apply held events whose tenant now has an integration, oldest first."""
    served = select(Integration.tenant).where(Integration.deleted_at.is_(None))
    rows = session.scalars(select(InboxEvent).where(
        InboxEvent.source == QALITA, InboxEvent.state == WAITING,
        InboxEvent.tenant.in_(served)).order_by(InboxEvent.id).limit(PUMP_BATCH)
        .with_for_update(skip_locked=True)).all()
    by_tenant: dict[str, list[InboxEvent]] = defaultdict(list)
    for inbox in rows:
        by_tenant[inbox.tenant].append(inbox)
    dues: list[Due] = []
    for tenant, held in sorted(by_tenant.items()):
        integration = serving(session, tenant)
        assert integration is not None  # selected for that
        dues += apply_events(session, integration, ctx.mappings(integration),
                             [parse_event(inbox.payload) for inbox in held],
                             ctx.debounce_seconds)
        for inbox in held:
            inbox.state, inbox.integration_id, inbox.processed_at = (
                PROCESSED, integration.id, utcnow())
            inbox.attempts += 1
    return dues


def _kept(payload: Any) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else {"event": payload}


def _duplicate(event: QalitaEvent) -> dict[str, Any]:
    return entry(None, event.event_type, "duplicate",
                 f"event {event.event_id} was already received", event_id=event.event_id)


def _waiting(event: QalitaEvent) -> dict[str, Any]:
    return entry(None, event.event_type, "waiting",
                 f"no integration serves tenant {event.tenant!r}; the event waits",
                 event_id=event.event_id)
