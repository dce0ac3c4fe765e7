"""Dead letters: the work that could not succeed by retrying, to inspect, replay or discard.

A replay never re-sends what failed: it queues the work again so that it runs with today's
code and configuration. A link's letter makes its lane due from the link's current desired
state; an event's or a delivery's letter takes the stored body through intake again (the
code or the schema may have changed since). Failing again updates the same letter
(``journal.dead_letter``); a link's letter closes by itself once its lane is next in step,
however that comes about (``journal.resolve``).

A letter's state is derived from its columns: ``discarded`` (``discarded_at``), ``resolved``
(``resolved_at``), ``replaying`` (replayed, the outcome not known yet) or ``open``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jira_sync import intake
from jira_sync.admin.errors import Conflict, Invalid, NotFound
from jira_sync.admin.paging import Page, page
from jira_sync.deliveries import RECEIVED
from jira_sync.events.jira_webhook import InvalidWebhook, parse
from jira_sync.events.qalita_event import InvalidEvent, parse_event
from jira_sync.store.models import DeadLetter, InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import INBOUND, UNCLOSED, dead_letter, lane, log
from jira_sync.sync.outcomes import INBOUND_FAILED
from jira_sync.sync.state import FAILED, FINAL_STATES, Due, try_again

OPEN, REPLAYING, RESOLVED, DISCARDED = "open", "replaying", "resolved", "discarded"
STATES = (OPEN, REPLAYING, RESOLVED, DISCARDED)
# Letters about a Jira delivery; the others without a link are about a QALITA event.
DELIVERY_KINDS = ("invalid_webhook",)

_STATE_FILTERS: dict[str, tuple[ColumnElement[bool], ...]] = {
    OPEN: (*UNCLOSED, DeadLetter.replayed_at.is_(None)),
    REPLAYING: (*UNCLOSED, DeadLetter.replayed_at.is_not(None)),
    RESOLVED: (DeadLetter.resolved_at.is_not(None), DeadLetter.discarded_at.is_(None)),
    DISCARDED: (DeadLetter.discarded_at.is_not(None),),
}


def state_of(letter: DeadLetter) -> str:
    if letter.discarded_at is not None:
        return DISCARDED
    if letter.resolved_at is not None:
        return RESOLVED
    return REPLAYING if letter.replayed_at is not None else OPEN


def letter_view(letter: DeadLetter, link: IssueLink | None = None) -> dict[str, Any]:
    """The letter as the API and the CLI show it. ``request`` and ``response`` hold only
    what ``journal.dead_letter`` kept: the sync's own summary of the call and the remote's
    answer, masked of credentials; the request's headers are never kept."""
    return {
        "id": letter.id, "integration_id": letter.integration_id, "kind": letter.kind,
        "reason": letter.reason, "state": state_of(letter), "replay_count": letter.replay_count,
        "created_at": _iso(letter.created_at), "replayed_at": _iso(letter.replayed_at),
        "resolved_at": _iso(letter.resolved_at), "discarded_at": _iso(letter.discarded_at),
        "payload": letter.payload, "request": letter.request, "response": letter.response,
        "link": _link_view(link),
    }


def _link_view(link: IssueLink | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {"id": link.id, "qalita_issue_id": link.qalita_issue_id,
            "jira_key": link.jira_issue_key, "state": link.state}


def list_letters(session: Session, *, integration_id: int | None = None,
                 kind: str | None = None, since: datetime | None = None,
                 state: str | None = None, limit: int | None = None,
                 cursor: str | None = None) -> Page:
    """Letters newest first, filtered; ``integration_id=None`` lists every letter, also those
    no integration owns (invalid QALITA events). ``NotFound`` for an unknown integration,
    ``Invalid`` for an unknown state, a bad limit or cursor."""
    if integration_id is not None and session.get(Integration, integration_id) is None:
        raise NotFound(f"no integration {integration_id}")
    query = matching(select(DeadLetter), integration_id=integration_id, kind=kind,
                     since=since, state=state)
    letters: list[DeadLetter] = []

    def render(letter: DeadLetter) -> dict[str, Any]:
        letters.append(letter)
        return letter_view(letter)

    found = page(session, query, DeadLetter.id, render, limit=limit, cursor=cursor)
    # The page's links in one read, not one each.
    link_ids = {letter.link_id for letter in letters if letter.link_id is not None}
    links = {link.id: link for link in session.scalars(
        select(IssueLink).where(IssueLink.id.in_(link_ids)))} if link_ids else {}
    for item, letter in zip(found.items, letters, strict=True):
        item["link"] = _link_view(links.get(letter.link_id or 0))
    return found


def matching(query: Select[Any], *, integration_id: int | None = None, kind: str | None = None,
             since: datetime | None = None, state: str | None = None) -> Select[Any]:
    """``query`` narrowed to the letters the filters describe (the list and bulk replay)."""
    if state is not None and state not in STATES:
        raise Invalid(f"state: one of {', '.join(STATES)}",
                      {"state": [f"must be one of {', '.join(STATES)}"]})
    if integration_id is not None:
        query = query.where(DeadLetter.integration_id == integration_id)
    if kind is not None:
        query = query.where(DeadLetter.kind == kind)
    if since is not None:
        query = query.where(DeadLetter.created_at >= _aware(since))
    if state is not None:
        query = query.where(*_STATE_FILTERS[state])
    return query


def show(session: Session, letter_id: int) -> dict[str, Any]:
    """One letter (``letter_view``); ``NotFound`` for an unknown id."""
    letter = _letter(session, letter_id)
    return letter_view(letter, _link_of(session, letter))


@dataclass
class Replayed:
    """A replay's outcome: the letter as it now is, and the work the caller hands to the
    workers once the session has committed (``send``)."""

    letter: dict[str, Any]
    dues: list[Due] = field(default_factory=list)
    inbox_ids: list[int] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Failed again at once (an event still invalid): the letter is open again."""
        return self.letter["state"] == OPEN

    def as_dict(self) -> dict[str, Any]:
        return self.letter

    def send(self, app: Any) -> None:
        from jira_sync.broker import send_deliveries, send_flushes

        send_flushes(app, self.dues)
        send_deliveries(app, self.inbox_ids)


def replay(session: Session, ctx: SyncContext, letter_id: int, *,
           integration_id: int | None = None) -> Replayed:
    """Queue the letter's work again; ``replay_count`` goes up and ``replayed_at`` is set.

    A link's letter makes its lane due from the link's current desired state (a failed lane
    back to pending or linked, its attempts reset); the letter closes when the lane is next
    in step, or is updated when it fails again. An event's letter validates the stored event
    again and, valid now, stores and applies it as intake would (the letter is resolved); an
    event still invalid updates the letter (open again, with the new reason). A delivery's
    letter parses the stored delivery again and, valid now, hands it to the workers.

    ``NotFound`` for an unknown id (or one not of ``integration_id``, when given);
    ``Conflict`` for a letter resolved or discarded, one whose
    integration is disabled or deleted, and one whose link is gone, closed or severed.
    """
    letter = _letter(session, letter_id, lock=True)
    if integration_id is not None and letter.integration_id != integration_id:
        raise NotFound(f"no dead letter {letter_id} of integration {integration_id}")
    if letter.discarded_at is not None:
        raise Conflict(f"dead letter {letter.id} was discarded; discarded letters are kept "
                       "for the record and cannot be replayed")
    if letter.resolved_at is not None:
        raise Conflict(f"dead letter {letter.id} is resolved: its work has succeeded since")
    if letter.integration_id is not None:
        integration = session.get(Integration, letter.integration_id)
        if integration is None or integration.deleted_at is not None:
            raise Conflict(f"dead letter {letter.id}: its integration is deleted")
        if not integration.enabled:
            raise Conflict(f"dead letter {letter.id}: its integration is disabled; enable it "
                           "first")
    now = utcnow()
    letter.replay_count += 1
    letter.replayed_at = now
    replayed = Replayed({})
    if letter.link_id is not None or lane(letter.request) is not None:
        replayed.dues = _replay_link(session, letter, now)
    elif letter.kind in DELIVERY_KINDS or letter.integration_id is not None:
        replayed.inbox_ids = _replay_delivery(session, letter, now)
    else:
        replayed.dues = _replay_event(session, ctx, letter, now)
    session.flush()
    log(session, letter.integration_id, "admin", "replay",
        f"dead letter {letter.id} ({letter.kind}) replayed, {letter.replay_count} time(s) so "
        f"far: {state_of(letter)}", link_id=letter.link_id, dead_letter_id=letter.id)
    replayed.letter = letter_view(letter, _link_of(session, letter))
    return replayed


def _replay_link(session: Session, letter: DeadLetter, now: datetime) -> list[Due]:
    link = None if letter.link_id is None else session.get(IssueLink, letter.link_id,
                                                           with_for_update=True)
    if link is None:
        raise Conflict(f"dead letter {letter.id}: its link no longer exists")
    if link.state in FINAL_STATES:
        raise Conflict(f"dead letter {letter.id}: its link is {link.state} and takes no more "
                       "changes")
    if lane(letter.request) == INBOUND:
        if link.inbound_state == INBOUND_FAILED:
            link.inbound_state, link.inbound_reason = None, None
        link.inbound_attempts, link.inbound_first_failure_at = 0, None
        link.inbound_due_at = now
        return [Due(link.id, now, inbound=True)]
    if link.state == FAILED:
        try_again(link)
    link.attempts, link.first_failure_at, link.next_attempt_at = 0, None, None
    link.due_at = now
    return [Due(link.id, now)]


def _replay_event(session: Session, ctx: SyncContext, letter: DeadLetter,
                  now: datetime) -> list[Due]:
    payload = letter.payload
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        dead_letter(session, "invalid_event", f"invalid QALITA event: {exc.reason}",
                    payload=payload, request={"errors": exc.errors}, same=letter)
        return []
    assert payload is not None  # parsed
    try:
        with session.begin_nested():
            dues = intake.accept(session, ctx, [(event, payload)])
    except OperationalError:
        raise
    except Exception as exc:  # The bug that made the letter is still there: kept, updated.
        dead_letter(session, "intake_failed",
                    f"processing failed: {type(exc).__name__}: {str(exc)[:500]}",
                    payload=payload, same=letter)
        return []
    letter.resolved_at = now
    return dues


def _replay_delivery(session: Session, letter: DeadLetter, now: datetime) -> list[int]:
    row = None if letter.inbox_id is None else session.get(InboxEvent, letter.inbox_id,
                                                           with_for_update=True)
    if row is None:
        raise Conflict(f"dead letter {letter.id}: the delivery is no longer stored")
    try:
        parse(row.payload)
    except InvalidWebhook as exc:
        dead_letter(session, letter.kind, f"invalid Jira webhook: {exc}",
                    integration_id=letter.integration_id, inbox_id=row.id,
                    payload=row.payload, same=letter)
        return []
    # Handed on: should folding it fail again, that reopens this letter (same inbox id).
    row.state, row.processed_at = RECEIVED, None
    letter.resolved_at = now
    return [row.id]


def discard(session: Session, letter_id: int) -> dict[str, Any]:
    """Keep the letter, marked discarded: it is no longer open and cannot be replayed. A link
    letter's lane stays failed until a new change or Create External Issue tries it again.
    Discarding twice changes nothing; ``Conflict`` for a resolved letter, ``NotFound`` for
    an unknown id."""
    letter = _letter(session, letter_id, lock=True)
    if letter.resolved_at is not None:
        raise Conflict(f"dead letter {letter.id} is resolved: there is nothing to discard")
    if letter.discarded_at is None:
        letter.discarded_at = utcnow()
        log(session, letter.integration_id, "admin", "discard",
            f"dead letter {letter.id} ({letter.kind}) discarded; kept for the record"
            + ("; its link stays failed" if letter.link_id is not None else ""),
            link_id=letter.link_id, dead_letter_id=letter.id)
    return letter_view(letter, _link_of(session, letter))


def count(session: Session, **filters: Any) -> int:
    return session.scalar(matching(select(func.count()).select_from(DeadLetter),
                                   **filters)) or 0


def _letter(session: Session, letter_id: int, *, lock: bool = False) -> DeadLetter:
    letter = session.get(DeadLetter, letter_id, with_for_update=lock)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    return letter


def _link_of(session: Session, letter: DeadLetter) -> IssueLink | None:
    return None if letter.link_id is None else session.get(IssueLink, letter.link_id)


def _aware(moment: datetime) -> datetime:
    """A time without a zone is taken as UTC, as every time in the service is."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()

