"""How a flush ends, and what it records on the way, in either direction.

Every flush leases its link, works without an open transaction, and saves progress as it
goes (``save_progress``, with the log rows ``journal`` noted), so a failure part-way never
repeats a write that already landed. It then ends in one of three ways: ``finish`` (in step,
or blocked with a reason), ``park`` (a transient failure: backoff, then a dead letter past
the maximum age) or ``fail`` (a permanent one: a dead letter with the request, the answer
and the reason). A flush that outlived its lease stops at its next write (``renew``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import logging as service_logging
from jira_sync import telemetry
from jira_sync.events.qalita_event import load_issue
from jira_sync.jira.limiter import LIMITER_PAUSE, QUOTA_PAUSE
from jira_sync.mapping import DesiredIssue, Mapping, desired_issue, marker_label
from jira_sync.remote import RateLimited, RemoteError, TransientError
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import leases, pauses
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import INBOUND, OUTBOUND, dead_letter, entry, log, resolve, write
from jira_sync.sync.state import FAILED, FINAL_STATES, LINKED, PENDING, Due

# A flush that finds the link leased by another looks again this soon (or when the lease ends).
BUSY_RETRY_SECONDS = 2.0
# States of the inbound lane (None: in step): dead-lettered, or the QALITA issue is gone.
INBOUND_FAILED, INBOUND_GONE = "failed", "gone"


@dataclass
class Work:
    """A leased link, detached from its session, and what the flush learns as it goes."""

    link_id: int
    owner: str
    integration: Integration
    tenant: str
    qalita_issue_id: int
    jira_issue_id: str | None
    jira_issue_key: str | None
    project_key: str | None
    issue_type: str | None
    desired: dict[str, Any] | None
    desired_version: int
    create_attempted_at: datetime | None
    written: dict[str, Any] = field(default_factory=dict)
    managed_labels: list[str] = field(default_factory=list)
    comments: list[CommentLink] = field(default_factory=list)
    # Log rows written with the next save, so the log and the link's state commit together.
    notes: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    # Changes to columns intake also writes (the link's view of Jira, QALITA's snapshot),
    # applied with the next save to the row as it is then, under its lock: a delivery folded
    # meanwhile is kept, and the flush spends no transaction of its own on them.
    updates: list[Callable[[IssueLink], None]] = field(default_factory=list)
    # Set when the flush learnt something that needs another pass at once (an adopted issue).
    again: bool = False
    # Set once the link's outcome is written and its lease released.
    done: bool = False
    # The lane (OUTBOUND or INBOUND) the flush ended in step, whose dead letter then closes.
    in_step: str | None = None
    # The inbound lane (Jira to QALITA): its own schedule, failures and dead letters.
    inbound: bool = False
    view: dict[str, Any] = field(default_factory=dict)
    # What the inbound flush sent to QALITA, for a dead letter; when to look again (a
    # comment waiting for the echo of an earlier attempt); whether it made outbound due.
    request: dict[str, Any] | None = None
    again_at: datetime | None = None
    outbound_due: bool = False

    @property
    def marker(self) -> str:
        return marker_label(self.tenant, self.qalita_issue_id)

    @classmethod
    def of(cls, link: IssueLink, owner: str, integration: Integration, *,
           inbound: bool = False) -> Work:
        service_logging.bind(tenant=link.tenant, qalita_issue_id=link.qalita_issue_id,
                             jira_key=link.jira_issue_key)
        return cls(link.id, owner, integration, link.tenant, link.qalita_issue_id,
                   link.jira_issue_id, link.jira_issue_key, link.jira_project_key,
                   link.jira_issue_type, link.desired, link.desired_version,
                   link.create_attempted_at, dict(link.written or {}),
                   list(link.managed_labels or []), inbound=inbound,
                   view=dict(link.jira_view or {}))

    def want(self, mapping: Mapping) -> DesiredIssue:
        assert self.desired is not None
        return desired_issue(mapping, load_issue(self.desired["issue"]), self.tenant)


def look_again_at(link: IssueLink, now: datetime) -> datetime:
    """When a flush that found the link leased (or parked) should try again: when that may be
    over, but soon, since a live holder usually finishes in well under a lease."""
    until = max(link.lease_expires_at or now, link.next_attempt_at or now)
    wait = min(max((until - now).total_seconds(), 0.2), BUSY_RETRY_SECONDS)
    return now + timedelta(seconds=wait)


def unexpected(exc: Exception) -> TransientError:
    """A bug or a broken setting, treated as transient: retried with backoff, then a dead
    letter past the maximum age, rather than dropping the link."""
    return TransientError(f"unexpected {type(exc).__name__}: {str(exc)[:300]}")


class LeaseLost(Exception):
    """Another flush took the link over (this one outlived its lease): stop writing."""


def renew(ctx: SyncContext, work: Work) -> None:
    """Extend the lease before a Jira write; a flush that lost it must not write at all."""
    with ctx.database.unit_of_work() as session:
        renew_in(session, ctx, work)


def renew_in(session: Session, ctx: SyncContext, work: Work) -> None:
    """``renew`` inside a transaction that records something else before the same write."""
    if not leases.renew(session, work.link_id, work.owner, ctx.timings.lease_seconds):
        raise LeaseLost(work.link_id)


def abandon(ctx: SyncContext, work: Work) -> list[Due]:
    """The lease was lost: the flush that took the link over owns its state from now on, but
    what this one did still happened, so its log rows and its updates of the view are kept."""
    work.done = True
    if work.notes or work.updates:
        with ctx.database.unit_of_work() as session:
            link = _link(session, work)
            if link is not None:
                _keep(session, work, link)
    return []


def _keep(session: Session, work: Work, link: IssueLink) -> None:
    """The flush's updates of the link and its log rows, into the session's transaction."""
    for update in work.updates:
        update(link)
    work.updates.clear()
    write(session, _taken_notes(work))


def save_progress(ctx: SyncContext, work: Work, **values: Any) -> None:
    """Record what now holds in Jira at once, so a later failure never repeats it."""
    with ctx.database.unit_of_work() as session:
        link = _link(session, work)
        if link is not None:
            persist(session, work, link)
            for name, value in values.items():
                setattr(link, name, value)


def _link(session: Session, work: Work) -> IssueLink | None:
    """The flush's link, locked: updates are applied to the row as it is, and a lease seen
    as the flush's own stays so until the transaction ends."""
    return session.get(IssueLink, work.link_id, with_for_update=True)


def persist(session: Session, work: Work, link: IssueLink) -> None:
    """What the flush wrote so far, and its log rows, into the session's transaction."""
    link.written, link.managed_labels = work.written, work.managed_labels
    _keep(session, work, link)


def _taken_notes(work: Work) -> list[dict[str, Any]]:
    """The flush's notes as log rows, taken from it (each is logged once)."""
    rows = [entry(work.integration.id, action, decision, message, link_id=work.link_id,
                  **details) for action, decision, message, details in work.notes]
    work.notes.clear()
    return rows


def journal(ctx: SyncContext, work: Work, action: str, decision: str, message: str,
            **details: Any) -> None:
    """Note a decision; it is logged with the next save of the link."""
    work.notes.append((action, decision, message, details))


def finish(ctx: SyncContext, work: Work, *, state: str | None = None, reason: str | None = None,
           decision: str | None = None, retry_now: bool = False) -> list[Due]:
    """Release the lease; a change that arrived during the flush gets its own flush.

    ``state`` is the link's (blocked) or, in the inbound lane, the lane's (``gone`` when QALITA
    no longer has the issue).
    """
    with ctx.database.unit_of_work() as session:
        dues = _finish(session, work, _link(session, work), state=state, reason=reason,
                       decision=decision, retry_now=retry_now)
        _resolve_letters(session, [work])
        return dues


def finish_together(ctx: SyncContext, works: list[Work]) -> list[Due]:
    """Finish flushes that ended well in one transaction, their rows locked in the order
    intake locks them: a transaction per link was most of an inbound flush's database time."""
    if not works:
        return []
    with ctx.database.unit_of_work() as session:
        links = {link.id: link for link in session.scalars(
            leases.in_lock_order(select(IssueLink).where(
                IssueLink.id.in_([work.link_id for work in works]))).with_for_update())}
        # Every link's log rows in one statement (one each was a tenth of a flush).
        write(session, [row for work in works if work.link_id in links
                        for row in _taken_notes(work)])
        dues = [due for work in works
                for due in _finish(session, work, links.get(work.link_id))]
        _resolve_letters(session, works)
        return dues


def _resolve_letters(session: Session, works: list[Work]) -> None:
    """Close the dead letters of the lanes these flushes left in step, however they got
    there (a new event, a replay, a sync asked for): one read for the whole batch."""
    resolve(session, [(work.integration.id, work.link_id, work.in_step)
                      for work in works if work.in_step])


def _finish(session: Session, work: Work, link: IssueLink | None, *,
            state: str | None = None, reason: str | None = None, decision: str | None = None,
            retry_now: bool = False) -> list[Due]:
    work.done = True
    now = utcnow()
    retry_now = retry_now or work.again
    if link is None:
        return []
    if link.lease_owner != work.owner and link.lease_owner is not None:
        # Taken over by another flush, which now owns the link's state; what this one did
        # still happened.
        _keep(session, work, link)
        return []
    persist(session, work, link)
    if decision:
        log(session, work.integration.id, "flush", decision, reason or decision,
            link_id=work.link_id, level="warning")
    link.lease_owner, link.lease_expires_at = None, None  # the row is locked: still ours
    if work.inbound:
        return _finish_inbound(session, work, link, state, reason, now)
    if link.state not in FINAL_STATES:
        if state is not None:
            link.state, link.state_reason = state, reason
        elif link.state != PENDING or link.jira_issue_id is not None:
            link.state, link.state_reason = (LINKED if link.jira_issue_id else PENDING), None
        if state is None and not retry_now:
            if work.desired_version > link.applied_version:  # a QALITA change is in Jira now
                telemetry.synced(telemetry.OUTBOUND,
                                 ((work.desired or {}).get("changed") or {}).values())
            link.applied_version = max(link.applied_version, work.desired_version)
            link.attempts, link.first_failure_at, link.next_attempt_at = 0, None, None
            if link.state == LINKED:  # in step with Jira: its dead letter, if any, is done
                work.in_step = OUTBOUND
    if link.state in FINAL_STATES:
        return []
    if retry_now:
        link.due_at = now  # due, so the flush it schedules is not taken for a stale one
        return [Due(link.id, now)]
    if link.due_at is not None:
        return [Due(link.id, max(link.due_at, now))]
    if link.jira_issue_id is None and link.state == PENDING and link.desired is not None:
        return [Due(link.id, now)]  # recreate after a deletion in Jira
    return []


def _finish_inbound(session: Session, work: Work, link: IssueLink, state: str | None,
                    reason: str | None, now: datetime) -> list[Due]:
    link.inbound_state, link.inbound_reason = state, reason
    if state is None:
        link.inbound_attempts, link.inbound_first_failure_at = 0, None
        work.in_step = INBOUND
    if work.again_at is not None:
        link.inbound_due_at = min(link.inbound_due_at or work.again_at, work.again_at)
    dues = []
    if link.inbound_due_at is not None and link.state not in FINAL_STATES:
        dues.append(Due(link.id, max(link.inbound_due_at, now), inbound=True))
    if work.outbound_due and link.due_at is not None:
        dues.append(Due(link.id, max(link.due_at, now)))
    return dues


def park(ctx: SyncContext, work: Work, error: TransientError) -> list[Due]:
    """Wait with capped, jittered backoff (never less than Retry-After), then try again;
    past the maximum age the link (or its inbound lane) becomes a dead letter. Work parked by
    the limiter (its own pace, or a quota's pause until the reset) is waiting, not failing:
    it counts no attempt and never ages into a dead letter."""
    work.done = True
    now = utcnow()
    attempts, first, wake = LANES[work.inbound]
    waiting = isinstance(error, RateLimited) and error.limit_reason in (LIMITER_PAUSE,
                                                                         QUOTA_PAUSE)
    with ctx.database.unit_of_work() as session:
        link = _link(session, work)
        if link is None:
            return []
        persist(session, work, link)
        if waiting:
            delay = (error.retry_after or 0.0) + random.random()
            message = f"waiting {delay:.1f}s: {error.reason}"
        else:
            setattr(link, attempts, getattr(link, attempts) + 1)
            setattr(link, first, getattr(link, first) or now)
            age = (now - getattr(link, first)).total_seconds()
            if age > ctx.timings.max_retry_age_seconds:
                leases.release(session, [work.link_id], work.owner)
                letter_for(session, work, error, "retries_exhausted",
                           f"still failing after {age / 3600:.1f} h: {error.reason}")
                _failed(work, link, error.reason)
                return []
            delay = min(ctx.timings.backoff_cap_seconds, ctx.timings.backoff_base_seconds
                        * 2 ** min(getattr(link, attempts) - 1, 30))
            delay = max(delay * (0.5 + random.random() / 2), error.retry_after or 0.0)
            message = (f"attempt {getattr(link, attempts)} failed, next in {delay:.1f}s: "
                       f"{error.reason}")
        setattr(link, wake, now + timedelta(seconds=delay))
        log(session, work.integration.id, "inbound" if work.inbound else "flush",
            "rate_limited" if error.status == 429 or waiting else "retry", message,
            link_id=work.link_id, level="info" if waiting else "warning",
            status=error.status)
        leases.release(session, [work.link_id], work.owner)
        return [Due(link.id, getattr(link, wake), inbound=work.inbound)]


# Per lane (outbound, inbound): the columns counting attempts, the first failure, and when
# the parked lane wakes up.
LANES = {False: ("attempts", "first_failure_at", "next_attempt_at"),
         True: ("inbound_attempts", "inbound_first_failure_at", "inbound_due_at")}


def _stop(session: Session, work: Work) -> IssueLink | None:
    """A flush that ends here without finishing: its lease released, what it wrote kept."""
    link = _link(session, work)
    leases.release(session, [work.link_id], work.owner)
    if link is not None:
        persist(session, work, link)
    return link


def _hold(ctx: SyncContext, work: Work, side: str, reason: str) -> list[Due]:
    """Pause the integration's ``side`` and stop without counting an attempt: the lane stays
    due, and its flush is sent again when the pause ends (``pauses.release``)."""
    work.done = True
    with ctx.database.unit_of_work() as session:
        link = _stop(session, work)
        if link is None:
            return []
        if work.inbound:
            link.inbound_due_at = link.inbound_due_at or utcnow()
        else:
            link.due_at = link.due_at or utcnow()
        pauses.pause(session, work.integration.id, side, reason)
    return []


def fail(ctx: SyncContext, work: Work, error: RemoteError) -> list[Due]:
    """A dead letter for the link, unless the error refuses the integration's credentials:
    then the integration pauses and the link is held instead (``pauses.refusal``)."""
    side = pauses.refusal(ctx, work.integration, error, inbound=work.inbound)
    if side is not None:
        return _hold(ctx, work, side, error.reason)
    work.done = True
    with ctx.database.unit_of_work() as session:
        link = _stop(session, work)
        if link is None:
            return []
        letter_for(session, work, error, "qalita_rejected" if work.inbound else "jira_rejected",
                   error.reason)
        _failed(work, link, error.reason)
    return []


def _failed(work: Work, link: IssueLink, reason: str) -> None:
    """A dead letter stops the lane until a new change or a replay: in the inbound lane only
    writes to QALITA stop, outbound goes on."""
    if work.inbound:
        link.inbound_state, link.inbound_reason = INBOUND_FAILED, reason
    elif link.state not in FINAL_STATES:  # severed meanwhile: that stands
        link.state, link.state_reason = FAILED, reason


def letter_for(session: Session, work: Work, error: RemoteError, kind: str, reason: str) -> None:
    if work.inbound:
        request = {"lane": INBOUND, "qalita_issue": work.qalita_issue_id,
                   "jira_issue": work.jira_issue_key, "changes": work.request}
        payload: dict[str, Any] | None = {"jira_view": work.view}
    else:
        request = {"lane": OUTBOUND, "jira_issue": work.jira_issue_key,
                   "project": work.project_key, "desired_version": work.desired_version}
        payload = work.desired
    dead_letter(session, kind, reason, integration_id=work.integration.id,
                link_id=work.link_id, payload=payload, request=request, error=error)
