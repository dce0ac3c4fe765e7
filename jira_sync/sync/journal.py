"""The integration log and dead letters: every decision of the sync leaves a row an operator
can read, and work that cannot succeed by retrying is kept whole for a replay."""

from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session

from jira_sync import telemetry
from jira_sync.remote import RemoteError
from jira_sync.store.models import DeadLetter, LogEntry
from jira_sync.store.types import utcnow

MAX_MESSAGE = 2000
# The two lanes of a link (Jira to QALITA has its own schedule and failures): a link's letter
# names its lane in ``request["lane"]``.
OUTBOUND, INBOUND = "outbound", "inbound"


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
        # Counted once the rows commit: a transaction rolled back and retried counts once.
        session.info.setdefault(_DECIDED, []).extend(
            (row["action"], row["decision"]) for row in entries)


_DECIDED = "jira_sync.decisions"


@event.listens_for(Session, "after_commit")
def _count_decisions(session: Session) -> None:
    telemetry.decisions(session.info.pop(_DECIDED, ()))


@event.listens_for(Session, "after_rollback")
def _forget_decisions(session: Session) -> None:
    session.info.pop(_DECIDED, None)


def dead_letter(session: Session, kind: str, reason: str, *, integration_id: int | None = None,
                link_id: int | None = None, inbox_id: int | None = None,
                payload: dict[str, Any] | None = None, request: dict[str, Any] | None = None,
                error: RemoteError | None = None, same: DeadLetter | None = None) -> DeadLetter:
    """Keep work that cannot succeed by retrying, with what an operator needs to fix it.

    One piece of work has one letter: when it fails again (after a replay, or because a new
    change failed the same way) the letter still unclosed for it, the link lane's (``lane``
    in ``request``) or the stored delivery's, takes the new reason, request and answer and
    is open again, so the operator sees one letter and its replay count, not one per try.
    ``same`` names that letter where nothing else can (an event replayed without a link).
    The remote's answer is masked of credentials it may echo (a proxy's error page).
    """
    response = None
    if error is not None:
        response = {"status": error.status, "body": error.body}
    values = {"kind": kind, "reason": masked(storable(reason[:MAX_MESSAGE])),
              "payload": storable(payload), "request": storable(request),
              "response": masked(storable(response))}
    letter = same or _same_work(session, link_id, inbox_id, request)
    if letter is None:
        letter = DeadLetter(integration_id=integration_id, link_id=link_id, inbox_id=inbox_id,
                            **values)
        session.add(letter)
    else:
        for name, value in values.items():
            setattr(letter, name, value)
        letter.replayed_at, letter.resolved_at = None, None
    session.flush()
    log(session, integration_id, kind, "dead_letter", reason, link_id=link_id, level="error",
        dead_letter_id=letter.id)
    return letter


def lane(request: dict[str, Any] | None) -> str | None:
    """The lane of a link's letter (``inbound`` or ``outbound``), as its writer named it."""
    return (request or {}).get("lane")


def _same_work(session: Session, link_id: int | None, inbox_id: int | None,
               request: dict[str, Any] | None) -> DeadLetter | None:
    if link_id is not None:
        unclosed = session.scalars(select(DeadLetter).where(
            DeadLetter.link_id == link_id, *UNCLOSED).order_by(DeadLetter.id))
        return next((letter for letter in unclosed if lane(letter.request) == lane(request)),
                    None)
    if inbox_id is not None:
        # A delivery's letter closes when its replay hands it on; its next failure reopens it.
        return session.scalars(select(DeadLetter).where(
            DeadLetter.inbox_id == inbox_id, DeadLetter.discarded_at.is_(None))
            .order_by(DeadLetter.id.desc()).limit(1)).first()
    return None


# Letters neither resolved nor discarded: open, or replayed and waiting for the outcome.
UNCLOSED = (DeadLetter.resolved_at.is_(None), DeadLetter.discarded_at.is_(None))


def resolve(session: Session, lanes: list[tuple[int, int, str]]) -> None:
    """Close the letters of the lanes now in step, each given as (integration id, link id,
    lane). Called as flushes end well, so it is one indexed read that finds nothing for
    almost every batch."""
    if not lanes:
        return
    wanted = {(link_id, link_lane): integration_id
              for integration_id, link_id, link_lane in lanes}
    found: dict[tuple[int, str], list[int]] = {}
    for letter_id, link_id, request in session.execute(
            select(DeadLetter.id, DeadLetter.link_id, DeadLetter.request).where(
                DeadLetter.link_id.in_({link_id for _, link_id, _ in lanes}), *UNCLOSED)):
        if (link_id, lane(request)) in wanted:
            found.setdefault((link_id, lane(request)), []).append(letter_id)
    if not found:
        return
    session.execute(update(DeadLetter).where(
        DeadLetter.id.in_([i for ids in found.values() for i in ids]))
        .values(resolved_at=utcnow()))
    write(session, [entry(wanted[key], "flush" if key[1] == OUTBOUND else "inbound",
                          "resolved", f"the {key[1]} lane is in step again: dead letter(s) "
                          f"{', '.join(map(str, ids))} resolved", link_id=key[0],
                          dead_letter_ids=ids) for key, ids in found.items()])


# A credential a remote may echo back: an Authorization value, or a password in a URL.
_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
_SECRET_KEY = re.compile(r"authori[sz]ation|password|secret|token|api[-_]?key|cookie",
                         re.IGNORECASE)


def masked(value: Any) -> Any:
    """``value`` with the credentials a remote's answer could echo replaced by ``***``: a
    dead letter is shown to operators and kept for months, so nothing in it may let anyone
    call Jira or QALITA as jira-sync."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", _CREDENTIAL.sub(r"\1 ***", value))
    if isinstance(value, dict):
        return {key: "***" if isinstance(key, str) and _SECRET_KEY.search(key)
                and isinstance(item, str) else masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


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
