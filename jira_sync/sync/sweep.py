"""The sweep beat runs: work a lost worker left behind, found without waiting for the broker.

Redis redelivers an unacknowledged message only after its visibility timeout (an hour), and a
countdown task dies with the worker that held it. So the state in the database is the truth:
a link whose flush is overdue, whose parked retry is overdue, or whose lease expired with its
holder is flushed again, and events held for a tenant without an integration are applied
once one exists. Inbound flushes (Jira's changes to QALITA) are found the same way. The
links of a held integration (disabled, deleted, paused) are left to its release.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from jira_sync.store.models import IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import pauses
from jira_sync.sync.state import BLOCKED, FAILED, FINAL_STATES, SEVERING

SWEEP_BATCH = 1000


def overdue_links(session: Session, grace_seconds: float) -> list[int]:
    """Links whose flush should have happened ``grace_seconds`` ago and is not running; they
    are marked due now."""
    now = utcnow()
    late = now - timedelta(seconds=grace_seconds)
    free = or_(IssueLink.lease_owner.is_(None), IssueLink.lease_expires_at < now)
    ids = list(session.scalars(select(IssueLink.id).where(
        # Blocked and failed links wait for a new event or a replay; of the final ones, only
        # a severing link has a flush left (the one taking its marker off).
        or_(IssueLink.state == SEVERING,
            IssueLink.state.not_in((*FINAL_STATES, BLOCKED, FAILED))), free,
        IssueLink.integration_id.in_(pauses.running(inbound=False)),
        or_(IssueLink.due_at <= late,
            and_(IssueLink.next_attempt_at.is_not(None), IssueLink.next_attempt_at <= late),
            IssueLink.lease_owner.is_not(None),  # its holder died mid-flush
            and_(IssueLink.jira_issue_id.is_(None), IssueLink.create_attempted_at.is_not(None),
                 IssueLink.next_attempt_at.is_(None)))
    ).order_by(IssueLink.id).limit(SWEEP_BATCH).with_for_update(skip_locked=True)))
    # Due now, so the flush they get does not take itself for a stale one.
    session.execute(update(IssueLink).where(IssueLink.id.in_(ids), IssueLink.due_at.is_(None))
                    .values(due_at=now).execution_options(synchronize_session=False))
    return ids


def overdue_inbound(session: Session, grace_seconds: float) -> list[int]:
    """Links whose inbound flush should have happened ``grace_seconds`` ago and is not
    running (its message was lost with a worker), and links whose lease outlived its holder
    by as long: an inbound flush that died took the link's due time with it, so they are
    made due now and flushed again (the link's view of Jira still marks what is unwritten)."""
    now = utcnow()
    late = now - timedelta(seconds=grace_seconds)
    free = or_(IssueLink.lease_owner.is_(None), IssueLink.lease_expires_at < now)
    ids = list(session.scalars(select(IssueLink.id).where(
        IssueLink.state.not_in(FINAL_STATES), free,
        IssueLink.integration_id.in_(pauses.running(inbound=True)),
        or_(IssueLink.inbound_due_at <= late,
            and_(IssueLink.lease_owner.is_not(None), IssueLink.lease_expires_at < late)),
    ).order_by(IssueLink.id).limit(SWEEP_BATCH).with_for_update(skip_locked=True)))
    session.execute(update(IssueLink).where(IssueLink.id.in_(ids),
                                            IssueLink.inbound_due_at.is_(None))
                    .values(inbound_due_at=now).execution_options(synchronize_session=False))
    return ids
