"""Issue links as operators handle them: Create External Issue, sync now, sever, and the list.

None of these calls Jira. Each changes the link row the way the sync itself would and makes
it due, so the one crash-safe path (``sync.creates``, ``sync.outbound``) does the work: a
create an operator asks for is exactly as idempotent as one an event caused, and a sever
takes the marker off in a flush that holds the link's lease like any other.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from jira_sync.admin.errors import Conflict, NotFound, Unavailable
from jira_sync.admin.integrations import by_tenant
from jira_sync.admin.paging import Page, page
from jira_sync.events.qalita_event import InvalidEvent, IssueSnapshot, QalitaEvent, parse_issue
from jira_sync.remote import RemoteError
from jira_sync.store.db import Database
from jira_sync.store.models import Integration, IssueLink, LogEntry
from jira_sync.store.types import utcnow
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import log
from jira_sync.sync.state import (
    BLOCKED,
    FAILED,
    FINAL_STATES,
    PENDING,
    SEVERED,
    SEVERING,
    TOMBSTONED,
    Due,
    apply_events,
    try_again,
)

# The log decisions that mean a flush left the link in step with the other side.
SYNCED_DECISIONS = ("created", "adopted", "applied", "unchanged", "severed")
# States whose link Create External Issue works on again; any other live link is shown as is.
RETRIED_STATES = (PENDING, BLOCKED, FAILED)
WAIT_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True)
class LinkOutcome:
    """What an action did to a link: the link as it now is, the flushes the caller sends
    after its commit (``broker.send_flushes``), and whether this call made the link."""

    link_id: int
    view: dict[str, Any]
    dues: list[Due] = field(default_factory=list)
    created: bool = False

    def as_dict(self) -> dict[str, Any]:
        return self.view


def link_view(link: IssueLink, integration: Integration, *,
              last_sync: Any = None) -> dict[str, Any]:
    """The link as the API and the CLI show it; ``last_sync`` (when a flush last left it in
    step) comes from the integration log, which ``_last_syncs`` reads for a page at once."""
    key = link.jira_issue_key
    error = link.state_reason if link.state in (BLOCKED, FAILED) else None
    return {
        "id": link.id,
        "tenant": link.tenant,
        "qalita_issue_id": link.qalita_issue_id,
        "jira_issue_id": link.jira_issue_id,
        "jira_key": key,
        "jira_url": f"{integration.base_url.rstrip('/')}/browse/{key}" if key else None,
        "project": link.jira_project_key,
        "state": link.state,
        "last_sync": last_sync.isoformat() if last_sync else None,
        "last_error": error or link.inbound_reason,
        "next_attempt_at": link.next_attempt_at.isoformat() if link.next_attempt_at else None,
        "created_at": link.created_at.isoformat(),
    }


def show(session: Session, tenant: str, qalita_issue_id: int) -> dict[str, Any]:
    """``GET /api/v2/issues/<id>/jira``: the issue's live link, else its newest severed one
    (so a sever shows ``severing``, then ``severed``); ``NotFound`` when it never had one."""
    integration = by_tenant(session, tenant, deleted=True)
    link = _newest(session, integration, qalita_issue_id)
    if link is None:
        raise NotFound(f"QALITA issue {qalita_issue_id} of tenant {tenant!r} has no Jira link")
    return _view(session, link, integration)


def create_external(ctx: SyncContext, tenant: str, qalita_issue_id: int) -> LinkOutcome:
    """Create External Issue: link the QALITA issue to a new Jira issue, through the normal
    crash-safe create, due now rather than after the debounce window.

    The issue is read from QALITA (``NotFound`` when QALITA has no such issue,
    ``Unavailable`` when it cannot be reached or refuses), between two short transactions
    so that no connection waits on QALITA, and folded into the link as its event would be.
    A live link that has its Jira issue, or is closed, is returned as it is (``created``
    false: never a second issue); a pending one is made due now, a blocked or failed one is
    tried again. An issue whose links were all severed gets a new link and a new Jira issue.
    A disabled or deleted integration, or a link still being severed, is a ``Conflict``.
    ``wait_for_link`` then tells when the worker is done.
    """
    with ctx.database.unit_of_work() as session:
        integration, link = _creatable(session, tenant, qalita_issue_id)
        if link is not None and link.state not in RETRIED_STATES:
            return LinkOutcome(link.id, _view(session, link, integration))
        session.expunge(integration)
    issue = _read_issue(ctx, integration, qalita_issue_id)
    with ctx.database.unit_of_work() as session:
        integration, link = _creatable(session, tenant, qalita_issue_id)
        if link is not None and link.state not in RETRIED_STATES:
            return LinkOutcome(link.id, _view(session, link, integration))
        event = QalitaEvent(event_id=f"admin:{uuid.uuid4()}",
                            event_type="issue.updated" if link else "issue.created",
                            occurred_at=utcnow(), tenant=integration.tenant,
                            origin="jira-sync", issue=issue, comment=None)
        apply_events(session, integration, ctx.mappings(integration), [event],
                     ctx.debounce_seconds, relink=True)
        made = link is None
        link = _live(session, integration, qalita_issue_id, lock=True)
        assert link is not None  # apply_events made it
        if link.state in (BLOCKED, FAILED):
            try_again(link)
        dues = _due_now(link)
        log(session, integration.id, "admin", "create",
            f"Create External Issue for QALITA issue {qalita_issue_id}: "
            + ("a new link" if made else f"the {link.state} link"), link_id=link.id)
        return LinkOutcome(link.id, _view(session, link, integration), dues, made)


def _creatable(session: Session, tenant: str,
               qalita_issue_id: int) -> tuple[Integration, IssueLink | None]:
    """The integration and the issue's live link, unless a create cannot be asked now."""
    integration = by_tenant(session, tenant, deleted=True)
    if integration.deleted_at is not None:
        raise Conflict(f"the integration of tenant {tenant!r} is deleted; create it again "
                       "to link issues")
    if not integration.enabled:
        raise Conflict(f"the integration of tenant {tenant!r} is disabled; enable it to "
                       "create Jira issues")
    link = _live(session, integration, qalita_issue_id)
    if link is not None and link.state == SEVERING:
        raise Conflict(f"the link of QALITA issue {qalita_issue_id} is being severed; try "
                       "again once it is severed")
    return integration, link


def wait_for_link(database: Database, link_id: int, timeout: float) -> dict[str, Any]:
    """The link's view once it has a Jira key, or is blocked, failed or final, or when
    ``timeout`` seconds have passed (each look is its own short transaction, so the worker's
    commits are seen)."""
    deadline = time.monotonic() + timeout
    while True:
        with database.unit_of_work() as session:
            link = session.get(IssueLink, link_id)
            if link is None:
                raise NotFound(f"no link {link_id}")
            integration = session.get_one(Integration, link.integration_id)
            settled = link.jira_issue_key is not None or link.state in (
                BLOCKED, FAILED, *FINAL_STATES)
            if settled or time.monotonic() >= deadline:
                return _view(session, link, integration)
        time.sleep(WAIT_INTERVAL_SECONDS)


def sync_now(session: Session, tenant: str, qalita_issue_id: int) -> LinkOutcome:
    """Sync the live link now, both ways: QALITA's desired state to Jira and Jira's pending
    changes to QALITA, skipping any backoff (a blocked or failed link is tried again).
    ``NotFound`` without a live link; a closed, tombstoned or severing one is a
    ``Conflict``, since nothing syncs it any more."""
    integration = by_tenant(session, tenant, deleted=True)
    link = _live(session, integration, qalita_issue_id, lock=True)
    if link is None:
        raise NotFound(f"QALITA issue {qalita_issue_id} of tenant {tenant!r} has no live "
                       "Jira link; Create External Issue makes one")
    if link.state in FINAL_STATES:
        raise Conflict(f"the link of QALITA issue {qalita_issue_id} is {link.state}: nothing "
                       "syncs it any more")
    if link.state in (BLOCKED, FAILED):
        try_again(link)
    dues = _due_now(link)
    if link.jira_issue_id is not None:
        link.inbound_due_at = dues[0].at
        dues.append(Due(link.id, dues[0].at, inbound=True))
    log(session, integration.id, "admin", "sync", f"sync now of QALITA issue "
        f"{qalita_issue_id} ({link.jira_issue_key or 'no Jira issue yet'})", link_id=link.id)
    return LinkOutcome(link.id, _view(session, link, integration), dues)


def sever(session: Session, tenant: str, qalita_issue_id: int) -> LinkOutcome:
    """Sever the issue's live link: it stops syncing at once and becomes ``severing``; a
    flush then takes the marker label off its Jira issue (which stays) and makes it
    ``severed``. The row keeps its history; later events for the issue create nothing, and
    Create External Issue makes a new link and a new Jira issue.

    A link with nothing in Jira to change (no create attempted, or its issue deleted there)
    is severed at once, without a flush. Severing an issue whose only links are severed
    returns the newest as it is; ``NotFound`` when it never had one.
    """
    integration = by_tenant(session, tenant, deleted=True)
    link = _live(session, integration, qalita_issue_id, lock=True)
    if link is None:
        severed = _newest(session, integration, qalita_issue_id)
        if severed is None:
            raise NotFound(f"QALITA issue {qalita_issue_id} of tenant {tenant!r} has no "
                           "Jira link")
        return LinkOutcome(severed.id, _view(session, severed, integration))
    dues = sever_link(session, link)
    return LinkOutcome(link.id, _view(session, link, integration), dues)


def sever_link(session: Session, link: IssueLink, *, take_marker_off: bool = True) -> list[Due]:
    """``sever`` for a link row the caller holds locked (``FOR UPDATE``); returns the flush
    that takes the marker off, if one is needed. A severing or severed link is left alone.

    ``take_marker_off=False`` severs at once and leaves the marker label in Jira: for an
    integration being deleted, which calls Jira no more (adoption skips severed links'
    issues, so the label left behind is never mistaken for a live link)."""
    if link.state == SEVERED or (link.state == SEVERING and take_marker_off):
        return []
    now = utcnow()
    nothing_in_jira = not take_marker_off or link.state == TOMBSTONED or (
        link.jira_issue_id is None and link.create_attempted_at is None
        and (link.lease_owner is None or link.lease_expires_at is None
             or link.lease_expires_at < now))
    previous = link.state
    link.state = SEVERED if nothing_in_jira else SEVERING
    link.state_reason = f"severed by an operator (was {previous})"
    link.next_attempt_at, link.attempts, link.first_failure_at = None, 0, None
    link.inbound_due_at = None
    link.due_at = None if nothing_in_jira else now
    log(session, link.integration_id, "admin", "sever",
        f"QALITA issue {link.qalita_issue_id} severed from "
        f"{link.jira_issue_key or 'its Jira link'}"
        + ("" if nothing_in_jira else "; its marker label is taken off next"), link_id=link.id)
    return [] if nothing_in_jira else [Due(link.id, now)]


def sever_all(session: Session, integration: Integration) -> int:
    """Sever every live link of an integration being deleted, at once: nothing calls Jira
    for it any more, so the marker labels stay on the Jira issues (adoption skips severed
    links' issues). Returns how many were severed."""
    severed = 0
    for link in session.scalars(select(IssueLink).where(
            IssueLink.integration_id == integration.id, IssueLink.state != SEVERED)
            .order_by(IssueLink.id).with_for_update()):
        sever_link(session, link, take_marker_off=False)
        severed += 1
    return severed


def list_links(session: Session, integration_id: int, *, state: str | None = None,
               project: str | None = None, qalita_issue_id: int | None = None,
               jira_key: str | None = None, limit: int | None = None,
               cursor: str | None = None) -> Page:
    """One page of the integration's links, newest first, severed ones included, filtered
    by each argument given (``project`` is the Jira project key). ``NotFound`` for an
    unknown integration; ``Invalid`` for a bad ``limit`` or ``cursor``."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFound(f"no integration {integration_id}")
    query: Select[Any] = select(IssueLink).where(IssueLink.integration_id == integration_id)
    for column, value in ((IssueLink.state, state), (IssueLink.jira_project_key, project),
                          (IssueLink.qalita_issue_id, qalita_issue_id),
                          (IssueLink.jira_issue_key, jira_key)):
        if value is not None:
            query = query.where(column == value)
    result = page(session, query, IssueLink.id, lambda link: link_view(link, integration),
                  limit=limit, cursor=cursor)
    synced = _last_syncs(session, [item["id"] for item in result.items])
    for item in result.items:
        moment = synced.get(item["id"])
        item["last_sync"] = moment.isoformat() if moment else None
    return result


def _view(session: Session, link: IssueLink, integration: Integration) -> dict[str, Any]:
    return link_view(link, integration, last_sync=_last_syncs(session, [link.id]).get(link.id))


def _last_syncs(session: Session, link_ids: list[int]) -> dict[int, Any]:
    if not link_ids:
        return {}
    rows = session.execute(select(LogEntry.link_id, func.max(LogEntry.created_at)).where(
        LogEntry.link_id.in_(link_ids), LogEntry.decision.in_(SYNCED_DECISIONS),
        LogEntry.action != "admin").group_by(LogEntry.link_id))
    return {link_id: at for link_id, at in rows}


def _live(session: Session, integration: Integration, qalita_issue_id: int, *,
          lock: bool = False) -> IssueLink | None:
    query = select(IssueLink).where(
        IssueLink.integration_id == integration.id, IssueLink.tenant == integration.tenant,
        IssueLink.qalita_issue_id == qalita_issue_id, IssueLink.state != SEVERED)
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def _newest(session: Session, integration: Integration,
            qalita_issue_id: int) -> IssueLink | None:
    """The live link, else the most recently severed one."""
    return _live(session, integration, qalita_issue_id) or session.scalars(
        select(IssueLink).where(
            IssueLink.integration_id == integration.id, IssueLink.tenant == integration.tenant,
            IssueLink.qalita_issue_id == qalita_issue_id)
        .order_by(IssueLink.id.desc()).limit(1)).one_or_none()


def _due_now(link: IssueLink) -> list[Due]:
    """Due now, past the debounce window; a create waiting for Jira's index to show an
    earlier attempt keeps waiting (that wait is what keeps it from making a second issue)."""
    now = utcnow()
    at = link.next_attempt_at if link.next_attempt_at and link.next_attempt_at > now else now
    link.due_at = at
    return [Due(link.id, at)]


def _read_issue(ctx: SyncContext, integration: Integration,
                qalita_issue_id: int) -> IssueSnapshot:
    """The QALITA issue as it is now, as its event would carry it."""
    client = ctx.qalita(integration)
    if client is None:
        raise Conflict(f"the integration of tenant {integration.tenant!r} has no QALITA API "
                       "configured: set qalita_api_url and qalita_api_token")
    try:
        issue = client.get_issue(qalita_issue_id)
    except RemoteError as exc:
        raise Unavailable(f"QALITA could not be read: {exc.reason}") from None
    if issue is None:
        raise NotFound(f"QALITA has no issue {qalita_issue_id}")
    try:
        snapshot = parse_issue(issue)
    except InvalidEvent as exc:
        raise Unavailable(f"QALITA's issue {qalita_issue_id} cannot be synced: "
                          f"{exc.reason}") from None
    if snapshot.id != qalita_issue_id:
        raise Unavailable(f"QALITA answered issue {snapshot.id} when asked for "
                          f"{qalita_issue_id}")
    return snapshot
