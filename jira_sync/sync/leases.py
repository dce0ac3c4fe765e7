"""Per-link serialisation: a lease on the link row, taken by a conditional UPDATE.

A lease rather than a transaction held open: no database transaction may stay open across
a Jira call, and a lease whose holder died simply expires, after which the sweep hands the
link to another worker.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from jira_sync.store.models import IssueLink
from jira_sync.store.types import utcnow


def new_owner() -> str:
    """Unique per flush: two flushes in one process must not share a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(session: Session, link_ids: Iterable[int], owner: str, seconds: float) -> list[int]:
    """Lease the free links among ``link_ids``; returns the ids now held by ``owner``."""
    ids = list(link_ids)
    if not ids:
        return []
    now = utcnow()
    free = or_(IssueLink.lease_owner.is_(None), IssueLink.lease_expires_at < now)
    # The condition again in the UPDATE: SQLite has no FOR UPDATE, so the UPDATE is its check.
    session.execute(
        update(IssueLink).where(
            IssueLink.id.in_(locked_in_order(session, IssueLink.id.in_(ids), free)), free)
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False))
    return list(session.scalars(select(IssueLink.id).where(
        IssueLink.id.in_(ids), IssueLink.lease_owner == owner)))


def renew(session: Session, link_id: int, owner: str, seconds: float) -> bool:
    """Extend ``owner``'s lease; False when it is no longer theirs."""
    result = session.execute(
        update(IssueLink)
        .where(IssueLink.id == link_id, IssueLink.lease_owner == owner)
        .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def holds(session: Session, link_ids: Iterable[int], owner: str) -> list[int]:
    """The links among ``link_ids`` still leased by ``owner`` (a lease may have expired and
    been taken over while a slow call ran)."""
    return list(session.scalars(select(IssueLink.id).where(
        IssueLink.id.in_(list(link_ids)), IssueLink.lease_owner == owner)))


def release(session: Session, link_ids: Iterable[int], owner: str) -> None:
    mine = IssueLink.lease_owner == owner
    session.execute(
        update(IssueLink).where(
            IssueLink.id.in_(locked_in_order(session, IssueLink.id.in_(list(link_ids)), mine)),
            mine)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False))


def locked_in_order(session: Session, *conditions: Any, skip_locked: bool = False) -> list[int]:
    """Lock the matching link rows in lock order and return their ids.

    A statement that waits for several links' locks takes them by tenant, then id, the order
    intake takes a batch's links in, so the two wait for each other instead of deadlocking (a
    multi-row UPDATE locks in scan order). ``skip_locked`` passes over links another
    transaction holds, never waiting. SQLite ignores the lock: the UPDATE that follows must
    repeat the conditions.
    """
    return list(session.scalars(in_lock_order(select(IssueLink.id).where(*conditions))
                                .with_for_update(skip_locked=skip_locked)))


def in_lock_order(query: Select) -> Select:
    """Links in the order every transaction that locks several takes them: by tenant, then
    id, as intake takes a batch's."""
    return query.order_by(IssueLink.tenant, IssueLink.id)
