"""Jira deliveries into the links (DESIGN.md: a webhook is a hint).

A worker takes stored deliveries by inbox id, a batch per transaction: each is parsed (a
body the parser rejects is an ``invalid_webhook`` dead letter), attributed to its link by
Jira issue id and folded into the link's view of Jira (``jira_view``); a link with news
for QALITA starts its inbound window. A delivery that trips a bug is kept as an
``intake_failed`` dead letter, alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from jira_sync import telemetry
from jira_sync.deliveries import FAILED, JIRA, PROCESSED, RECEIVED
from jira_sync.events.jira_webhook import (
    InvalidWebhook,
    JiraWebhook,
    parse,
    parse_issue,
)
from jira_sync.store.models import InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import echoes
from jira_sync.sync.context import SyncContext
from jira_sync.sync.jira_view import COMMENT_EVENTS, Fold
from jira_sync.sync.journal import dead_letter, entry, write
from jira_sync.sync.state import (
    FINAL_STATES,
    Due,
)

logger = logging.getLogger("jira_sync.jira_changes")
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")


def receive_deliveries(ctx: SyncContext, inbox_ids: Sequence[int], *,
                       passthrough: tuple[type[BaseException], ...] = ()) -> list[Due]:
    """Fold stored deliveries into their links, a batch per transaction, losing nothing.

    An unreachable database raises (the messages are sent again); any other failure is a bug
    in handling some delivery, so the batch is taken again one delivery at a time and the one
    that trips it is kept as an ``intake_failed`` dead letter.
    """
    try:
        with ctx.database.unit_of_work() as session:
            return fold_deliveries(session, ctx, inbox_ids)
    except (OperationalError, *passthrough):
        raise
    except Exception as exc:
        if len(inbox_ids) > 1:
            return [due for inbox_id in inbox_ids
                    for due in receive_deliveries(ctx, [inbox_id], passthrough=passthrough)]
        logger.exception("Jira delivery %s could not be processed; kept as a dead letter",
                         inbox_ids[0] if inbox_ids else None)
        give_up(ctx, inbox_ids[0], f"processing failed: {type(exc).__name__}: "
                                   f"{str(exc)[:500]}")
        return []


def give_up(ctx: SyncContext, inbox_id: Any, reason: str) -> None:
    """Keep a delivery that cannot be processed as an ``intake_failed`` dead letter."""
    with ctx.database.unit_of_work() as session:
        row = session.get(InboxEvent, inbox_id) if isinstance(inbox_id, int) else None
        if row is not None and row.state != RECEIVED:
            return  # done after all, by the run that was lost
        if row is not None:
            row.state, row.processed_at = FAILED, utcnow()
        dead_letter(session, "intake_failed", reason,
                    integration_id=row.integration_id if row else None,
                    inbox_id=row.id if row else None,
                    payload=row.payload if row else {"message": inbox_id})


def fold_deliveries(session: Session, ctx: SyncContext, inbox_ids: Sequence[int]) -> list[Due]:
    rows = list(session.scalars(select(InboxEvent).where(
        InboxEvent.id.in_(list(inbox_ids)), InboxEvent.source == JIRA,
        InboxEvent.state == RECEIVED).order_by(InboxEvent.id).with_for_update(skip_locked=True)))
    folding = Batch(session, ctx)
    for row in rows:
        folding.take(row)
    return folding.close()


# What an issue read for folding must show (with its changelog expanded).
FOLD_FIELDS = ("summary", "description", "status", "labels", "assignee", "project",
               "issuetype", "updated", "comment")


def fold_read_issues(ctx: SyncContext, integration_id: int,
                     raw_issues: Sequence[dict[str, Any]], *,
                     adopted: bool = False) -> tuple[list[Due], int]:
    """Issues read from Jira (with their changelogs) into their links, in one transaction,
    as deliveries are folded: the reconciliation sweep's pages, and (``adopted``) an issue
    adopted after a lost create. Every change in the changelog of an adopted issue came after
    jira-sync created it and before its link knew it (their deliveries found no link), so each
    is folded as its delivery would have been. Returns the flushes to schedule and how many
    links learnt something."""
    read = []
    for raw in raw_issues:
        try:
            read.append(parse_issue(raw))
        except InvalidWebhook as exc:
            logger.warning("an issue Jira returned is not readable: %s", exc)
    with ctx.database.unit_of_work() as session:
        batch = Batch(session, ctx)
        links = {link.jira_issue_id: link for link in session.scalars(select(IssueLink).where(
            IssueLink.integration_id == integration_id,
            IssueLink.jira_issue_id.in_([issue.id for issue, _ in read]),
        ).order_by(IssueLink.id).with_for_update())}
        expected = echoes.Expected(session, [link.id for link in links.values()], echoes.JIRA)
        integration = session.get(Integration, integration_id)
        if integration is None:
            return [], 0
        batch.integrations[integration_id] = integration
        now = utcnow()
        for issue, histories in read:
            link = links.get(issue.id)
            if link is None or link.state in FINAL_STATES:
                continue
            for history in sorted(histories, key=lambda h: h.id) if adopted else ():
                replayed = JiraWebhook("jira:issue_updated", "issue_generic",
                                       history.created or now, None, issue, history.items,
                                       None, history.id)
                if Fold(batch, integration, link, expected, None, replayed).run():
                    batch.touched[link.id] = link
            webhook = JiraWebhook("reconcile", None, now, None, issue, (), None)
            if Fold(batch, integration, link, expected, None, webhook).current(histories):
                batch.touched[link.id] = link
        expected.close()
        return batch.schedule(), len(batch.touched)


class Batch:
    """The deliveries of one transaction: their integrations and links read once, locked in
    the order intake locks links in (tenant, then id), so the two never deadlock."""

    def __init__(self, session: Session, ctx: SyncContext) -> None:
        self.session, self.ctx = session, ctx
        self.notes: list[dict[str, Any]] = []
        self.integrations: dict[int, Integration | None] = {}
        self.parsed: list[tuple[InboxEvent, JiraWebhook]] = []
        self.touched: dict[int, IssueLink] = {}

    def take(self, row: InboxEvent) -> None:
        integration = self._integration(row.integration_id)
        row.attempts += 1
        if integration is None:
            self._done(row, None, "ignored", "its integration no longer exists")
            return
        try:
            webhook = parse(row.payload)
        except InvalidWebhook as exc:
            row.state, row.processed_at = FAILED, utcnow()
            dead_letter(self.session, "invalid_webhook", f"invalid Jira webhook: {exc}",
                        integration_id=integration.id, inbox_id=row.id, payload=row.payload)
            return
        event = webhook.event or ""
        telemetry.event_in("jira", event)
        if webhook.issue is None:
            self._done(row, integration, "ignored", f"{event or 'a delivery'} about no issue")
        elif event not in ISSUE_EVENTS and event not in COMMENT_EVENTS:
            self._done(row, integration, "ignored", f"event type {event or 'none'} is not "
                                                    "synced")
        else:
            self.parsed.append((row, webhook))

    def close(self) -> list[Due]:
        links = self._links()
        expected = echoes.Expected(self.session, [link.id for link in links.values()],
                                   echoes.JIRA)
        for row, webhook in self.parsed:
            assert webhook.issue is not None and row.integration_id is not None
            integration = self.integrations[row.integration_id]
            assert integration is not None
            link = links.get((integration.id, webhook.issue.id))
            if link is None:
                self._done(row, integration, "unlinked", f"Jira issue "
                           f"{webhook.issue.key or webhook.issue.id} is linked to no QALITA "
                           "issue")
                continue
            if link.state in FINAL_STATES:
                self._done(row, integration, "ignored", f"{webhook.event} for "
                           f"{link.jira_issue_key}: the link is {link.state}", link=link)
                continue
            fold = Fold(self, integration, link, expected, row, webhook)
            if fold.run():
                self.touched[link.id] = link
            row.state, row.processed_at = PROCESSED, utcnow()
        expected.close()
        return self.schedule()

    def _integration(self, integration_id: int | None) -> Integration | None:
        if integration_id is None:
            return None
        if integration_id not in self.integrations:
            self.integrations[integration_id] = self.session.get(Integration, integration_id)
        return self.integrations[integration_id]

    def _links(self) -> dict[tuple[int, str], IssueLink]:
        wanted: dict[int, set[str]] = {}
        for row, webhook in self.parsed:
            assert row.integration_id is not None and webhook.issue is not None
            wanted.setdefault(row.integration_id, set()).add(webhook.issue.id)
        found: dict[tuple[int, str], IssueLink] = {}
        tenants = sorted({(self.integrations[i].tenant, i) for i in wanted})  # type: ignore
        for _, integration_id in tenants:
            for link in self.session.scalars(select(IssueLink).where(
                    IssueLink.integration_id == integration_id,
                    IssueLink.jira_issue_id.in_(sorted(wanted[integration_id])),
            ).order_by(IssueLink.id).with_for_update()):
                found[(integration_id, link.jira_issue_id or "")] = link
        return found

    def _done(self, row: InboxEvent, integration: Integration | None, decision: str,
              message: str, link: IssueLink | None = None) -> None:
        row.state, row.processed_at = PROCESSED, utcnow()
        self.notes.append(entry(integration.id if integration else None, "webhook", decision,
                                message, link_id=link.id if link else None, inbox_id=row.id))

    def schedule(self) -> list[Due]:
        """Start the inbound window of links with something for QALITA (never restarted)."""
        dues = []
        now = utcnow()
        for link in self.touched.values():
            integration = self.integrations[link.integration_id]
            assert integration is not None
            if self.ctx.qalita(integration) is None:
                self.notes.append(entry(integration.id, "webhook", "ignored",
                                        "a Jira change is not written back: QALITA_API_URL "
                                        "and QALITA_API_TOKEN are not configured",
                                        link_id=link.id))
                continue
            if link.inbound_state is not None:  # new input deserves a new attempt
                link.inbound_state, link.inbound_reason = None, None
                link.inbound_attempts, link.inbound_first_failure_at = 0, None
            if link.inbound_due_at is None:
                link.inbound_due_at = now + timedelta(seconds=self.ctx.debounce_seconds)
            dues.append(Due(link.id, link.inbound_due_at, inbound=True))
        write(self.session, self.notes)
        self.notes = []
        return dues
