"""Counts operators alert on, read straight from the tables (same answer in every process)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jira_sync.store.models import DeadLetter, InboxEvent, IssueLink


def inbox_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(InboxEvent.source, InboxEvent.state, func.count())
                           .group_by(InboxEvent.source, InboxEvent.state))
    return {(source, state): count for source, state, count in rows}


def links_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(IssueLink.state, func.count()).group_by(IssueLink.state))
    return {state: count for state, count in rows}


def open_dead_letters(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter).where(
        DeadLetter.replayed_at.is_(None), DeadLetter.discarded_at.is_(None))) or 0
