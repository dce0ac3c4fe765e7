"""The integration log and dead letters: every decision of the sync leaves a row an operator
can read, and work that cannot succeed by retrying is kept whole for a replay."""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from jira_sync.remote import RemoteError
from jira_sync.store.models import DeadLetter, LogEntry
from jira_sync.store.types import utcnow

MAX_MESSAGE = 2000


def log(session: Session, integration_id: int | None, action: str, decision: str, message: str,
        *, link_id: int | None = None, level: str = "info", **details: Any) -> None:
    write(session, [entry(integration_id, action, decision, message, link_id=link_id,
                          level=level, **details)])


def entry(integration_id: int | None, action: str, decision: str, message: str, *,
          link_id: int | None = None, level: str = "info", **details: Any) -> dict[str, Any]:
    """A log row to ``write`` later: a batch of events writes its rows in one statement."""
    return {"integration_id": integration_id, "link_id": link_id, "action": action,
            "decision": decision, "message": message[:MAX_MESSAGE], "level": level,
            "details": details, "created_at": utcnow()}


def write(session: Session, entries: list[dict[str, Any]]) -> None:
    # A Core INSERT on the table: log rows are never read back in the same transaction, and
    # the ORM's bookkeeping for them (its bulk insert too, which converts every row through
    # the mapper) was a large part of the cost of each event and delivery.
    if entries:
        session.execute(insert(LogEntry.__table__), entries)


def dead_letter(session: Session, kind: str, reason: str, *, integration_id: int | None = None,
                link_id: int | None = None, inbox_id: int | None = None,
                payload: dict[str, Any] | None = None, request: dict[str, Any] | None = None,
                error: RemoteError | None = None) -> DeadLetter:
    response = None
    if error is not None:
        response = {"status": error.status, "body": error.body}
    letter = DeadLetter(kind=kind, reason=storable(reason[:MAX_MESSAGE]),
                        integration_id=integration_id, link_id=link_id, inbox_id=inbox_id,
                        payload=storable(payload), request=storable(request),
                        response=storable(response))
    session.add(letter)
    session.flush()
    log(session, integration_id, kind, "dead_letter", reason, link_id=link_id, level="error",
        dead_letter_id=letter.id)
    return letter


_LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` as a JSON column can hold it: what was refused for holding NaN, NUL or half
    of a UTF-16 pair (JSON allows ``"\\ud800"``, UTF-8 cannot encode it) must still be kept,
    so NaN and infinities become strings, NUL its visible picture and a lone surrogate the
    replacement character."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _LONE_SURROGATES.sub("\ufffd", value.replace("\x00", "\u2400"))
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value
