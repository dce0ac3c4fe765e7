"""Counts operators alert on, read straight from the tables (same answer in every process)."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from jira_sync.store.models import DeadLetter, InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow


def inbox_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(InboxEvent.source, InboxEvent.state, func.count())
                           .group_by(InboxEvent.source, InboxEvent.state))
    return {(source, state): count for source, state, count in rows}


def links_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(IssueLink.state, func.count()).group_by(IssueLink.state))
    return {state: count for state, count in rows}


def open_dead_letters(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter).where(
        DeadLetter.replayed_at.is_(None), DeadLetter.discarded_at.is_(None),
        DeadLetter.resolved_at.is_(None))) or 0


def inbound_lanes(session: Session) -> dict[str, int]:
    """Links whose Jira changes still have to reach QALITA: due, parked after a failure,
    dead-lettered (``failed``) or whose QALITA issue is ``gone``."""
    lane = case((IssueLink.inbound_state.is_not(None), IssueLink.inbound_state),
                (IssueLink.inbound_attempts > 0, "parked"), else_="due")
    rows = session.execute(select(lane, func.count()).where(
        IssueLink.inbound_due_at.is_not(None) | IssueLink.inbound_state.is_not(None))
        .group_by(lane))
    return {state: count for state, count in rows}


def oldest_waiting_delivery_seconds(session: Session) -> float:
    """How long the oldest Jira delivery has waited for a worker (0 when none waits)."""
    oldest = session.scalar(select(func.min(InboxEvent.received_at)).where(
        InboxEvent.source == "jira", InboxEvent.state == "received"))
    return max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0


def reconciliation_ages(session: Session) -> dict[str, float]:
    """Per running integration's tenant (enabled, not deleted, not paused: those are not
    reconciled), seconds since its last reconciliation sweep."""
    now = utcnow()
    rows = session.execute(select(Integration.tenant, Integration.reconciled_at).where(
        Integration.enabled.is_(True), Integration.deleted_at.is_(None),
        Integration.jira_paused_at.is_(None), Integration.reconciled_at.is_not(None)))
    return {tenant: max((now - at).total_seconds(), 0.0) for tenant, at in rows}


def paused_sides(session: Session) -> dict[tuple[str, str], int]:
    """Per integration (not deleted) and side (``jira``, ``qalita``): 1 while an
    integration-wide refusal pauses it, else 0, so an alert sees the pause end too."""
    rows = session.execute(select(Integration.tenant, Integration.jira_paused_at,
                                  Integration.qalita_paused_at)
                           .where(Integration.deleted_at.is_(None)))
    return {key: int(at is not None) for tenant, jira_at, qalita_at in rows
            for key, at in (((tenant, "jira"), jira_at), ((tenant, "qalita"), qalita_at))}
