"""What jira-sync wrote, waiting for its echo: how no change ever bounces back.

Every value a flush sends (each workflow hop, each label added or removed, a summary, an
assignee; on QALITA's side each field of a PUT) is recorded here first, so even an echo that
beats the write's answer is recognised. An incoming change that matches an unconsumed entry
is that echo: it consumes the entry and writes nothing. Anything else is a person's change
and is applied, even from the integration's own account (people share it) and even when it
restates a value jira-sync wrote earlier (a person re-setting Done after a reopen). Entries
expire (``JIRA_SYNC_ECHO_TTL_SECONDS``): Jira's retries may arrive half an hour late, but an
entry never consumed must not swallow a person's change for ever.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from jira_sync.mapping.inbound import text_key
from jira_sync.store.models import PendingWrite
from jira_sync.store.types import utcnow

JIRA, QALITA = "jira", "qalita"
# Texts are compared by their words: markup does not survive the round trip through Jira.
TEXT_FIELDS = frozenset({"summary", "description", "title"})


def value_of(field: str, value: object) -> str:
    """The form an entry keeps, and an incoming value is compared in."""
    if field in TEXT_FIELDS:
        return text_key(value if isinstance(value, str) else None)
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return json.dumps(sorted(value))
    return str(value).casefold() if field in ("assignee_email",) else str(value)


def expect(session: Session, link_id: int, side: str, values: Iterable[tuple[str, object]],
           ttl_seconds: float) -> None:
    """Record what is about to be written to ``side``, before it is written."""
    now = utcnow()
    rows = [dict(link_id=link_id, side=side, field=field, value=value_of(field, value),
                 sent_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
            for field, value in values]
    if rows:  # a Core INSERT: nothing reads them back as objects in this transaction
        session.execute(insert(PendingWrite.__table__), rows)


class Expected:
    """The unconsumed entries of some links on one side, consumed as echoes are matched;
    ``close`` writes what was consumed. One read for a whole batch of changes."""

    def __init__(self, session: Session, link_ids: Sequence[int], side: str) -> None:
        self._session = session
        self._open: dict[tuple[int, str], list[PendingWrite]] = defaultdict(list)
        self._consumed: list[int] = []
        if not link_ids:
            return
        now = utcnow()
        for row in session.scalars(select(PendingWrite).where(
                PendingWrite.link_id.in_(list(link_ids)), PendingWrite.side == side,
                PendingWrite.consumed_at.is_(None), PendingWrite.expires_at > now,
        ).order_by(PendingWrite.id)):
            self._open[(row.link_id, row.field)].append(row)

    def consume(self, link_id: int, field: str, value: object) -> bool:
        """Whether ``value`` is the echo of a write; the oldest matching entry is used up."""
        wanted = value_of(field, value)
        entries = self._open.get((link_id, field), [])
        for position, row in enumerate(entries):
            if row.value == wanted:
                del entries[position]
                self._consumed.append(row.id)
                return True
        return False

    def in_flight(self, link_id: int, field: str) -> list[datetime]:
        """When the writes of ``field`` still waiting for their echo were sent."""
        return [row.sent_at for row in self._open.get((link_id, field), [])]

    def close(self) -> None:
        if self._consumed:
            self._session.execute(update(PendingWrite).where(
                PendingWrite.id.in_(self._consumed)).values(consumed_at=utcnow())
                .execution_options(synchronize_session=False))
            self._consumed = []


def prune(session: Session) -> int:
    """Forget entries that expired or were consumed over an hour ago."""
    now = utcnow()
    result = session.execute(delete(PendingWrite).where(or_(
        PendingWrite.expires_at < now, PendingWrite.consumed_at < now - timedelta(hours=1))))
    return result.rowcount or 0
