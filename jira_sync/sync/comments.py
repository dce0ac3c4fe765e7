"""Comments mirrored between QALITA and Jira, each posted at most once, in both directions.

A comment is claimed (``attempted_at``) before it is posted, and only while it is still
wanted, so a delete taken in meanwhile wins, and a retry after a lost answer finds the posted
comment instead of posting it twice: in Jira by its marker, in QALITA by the event QALITA
sends about it (its ``external_id`` names the Jira comment).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from jira_sync.jira.client import JiraClient
from jira_sync.mapping import Mapping, comment_text
from jira_sync.mapping.issue import find_comment_marker
from jira_sync.qalita import QalitaClient
from jira_sync.remote import NotFound
from jira_sync.render import from_text
from jira_sync.store.models import CommentLink
from jira_sync.store.types import utcnow
from jira_sync.sync.context import SyncContext
from jira_sync.sync.outcomes import Work, journal, renew
from jira_sync.sync.rendering import fingerprint, plain_text, rich_text
from jira_sync.sync.state import C_DELETED, C_DELETING, C_PENDING, C_POSTED

# How long a Jira comment whose post to QALITA may have landed (its answer was lost) waits
# for QALITA's event about it before it is posted again: QALITA does not deduplicate comments.
COMMENT_ECHO_WAIT_SECONDS = 60.0


def comments_to_jira(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work) -> None:
    """Post, edit and delete the QALITA comments of the link, each at most once."""
    issue = work.jira_issue_id
    assert issue is not None
    rows = work.comments
    existing: list[dict[str, Any]] | None = None

    def find(comment_id: int) -> dict[str, Any] | None:
        nonlocal existing
        if existing is None:
            existing = list(client.comments(issue))
        return next((c for c in existing
                     if find_comment_marker(plain_text(client, c.get("body"))) == comment_id),
                    None)

    for row in rows:
        assert row.qalita_comment_id is not None
        text = comment_text(mapping, row.qalita_comment_id, row.author, row.body or "")
        print_ = fingerprint(text)
        if row.state == C_DELETING:
            target = row.jira_comment_id or (
                (found := find(row.qalita_comment_id)) and str(found["id"]))
            if target:
                renew(ctx, work)
                client.delete_comment(issue, target)
            _save_comment(ctx, row.id, state=C_DELETED)
            journal(ctx, work, "comment", "applied",
                    f"deleted QALITA comment {row.qalita_comment_id} from {work.jira_issue_key}")
            continue
        if row.jira_comment_id is None and row.attempted_at is not None:
            found = find(row.qalita_comment_id)
            if found is not None:  # The earlier post landed: adopt it, never post twice.
                row.jira_comment_id = str(found["id"])
                row.body_fingerprint = fingerprint(plain_text(client, found.get("body")))
                _posted(ctx, row.id, row.body_fingerprint, jira_comment_id=row.jira_comment_id)
        if row.jira_comment_id is None:
            # Claimed only while still wanted: a delete taken in meanwhile wins.
            if not _claim(ctx, row.id):
                continue
            renew(ctx, work)
            posted = client.add_comment(issue, rich_text(client, from_text(text)))
            _posted(ctx, row.id, print_, jira_comment_id=str(posted["id"]))
            journal(ctx, work, "comment", "applied",
                    f"posted QALITA comment {row.qalita_comment_id} on {work.jira_issue_key}")
        elif row.body_fingerprint != print_:
            renew(ctx, work)
            try:
                client.edit_comment(issue, row.jira_comment_id,
                                    rich_text(client, from_text(text)))
            except NotFound:  # Deleted in Jira by someone: that deletion stands.
                _save_comment(ctx, row.id, state=C_DELETED)
                journal(ctx, work, "comment", "skipped", f"QALITA comment "
                        f"{row.qalita_comment_id} was deleted in Jira; its edit is not posted")
                continue
            _posted(ctx, row.id, print_, jira_comment_id=row.jira_comment_id)
            journal(ctx, work, "comment", "applied",
                    f"edited QALITA comment {row.qalita_comment_id} on {work.jira_issue_key}")


def comments_to_qalita(ctx: SyncContext, qalita: QalitaClient, work: Work) -> None:
    """Post, edit and delete the Jira comments of the link in QALITA, each at most once."""
    now = utcnow()
    for row in work.comments:
        if row.state == C_DELETING:
            if row.qalita_comment_id is None:
                if _waiting_for_echo(work, row, now):
                    continue
            else:
                renew(ctx, work)
                qalita.delete_comment(work.qalita_issue_id, row.qalita_comment_id)
            _save_comment(ctx, row.id, state=C_DELETED)
            journal(ctx, work, "comment", "applied", f"deleted Jira comment "
                    f"{row.jira_comment_id} from QALITA issue {work.qalita_issue_id}")
            continue
        body = row.body or ""
        if row.qalita_comment_id is None:
            if row.attempted_at is not None and _waiting_for_echo(work, row, now):
                continue
            if not _claim(ctx, row.id):
                continue  # deleted in meanwhile
            renew(ctx, work)
            comment_id = qalita.add_comment(work.qalita_issue_id, body,
                                            f"jira:{row.jira_comment_id}",
                                            row.author or "Jira")
            _posted(ctx, row.id, fingerprint(body), qalita_comment_id=comment_id)
            journal(ctx, work, "comment", "applied", f"posted Jira comment "
                    f"{row.jira_comment_id} on QALITA issue {work.qalita_issue_id}")
        elif row.body_fingerprint != fingerprint(body):
            renew(ctx, work)
            qalita.edit_comment(work.qalita_issue_id, row.qalita_comment_id, body)
            _save_comment(ctx, row.id, body_fingerprint=fingerprint(body))
            journal(ctx, work, "comment", "applied", f"edited Jira comment "
                    f"{row.jira_comment_id} on QALITA issue {work.qalita_issue_id}")


def _waiting_for_echo(work: Work, row: CommentLink, now: datetime) -> bool:
    """An earlier post may have landed (its answer was lost): QALITA's event about it tells
    its id. Wait for that a while; past the wait, post (or give the deletion up)."""
    assert row.attempted_at is not None or row.state == C_DELETING
    since = row.attempted_at or now
    until = since + timedelta(seconds=COMMENT_ECHO_WAIT_SECONDS)
    if now < until:
        work.again_at = min(work.again_at or until, until)
        return True
    return False


def _claim(ctx: SyncContext, row_id: int) -> bool:
    with ctx.database.unit_of_work() as session:
        return session.execute(
            update(CommentLink).where(CommentLink.id == row_id, CommentLink.state == C_PENDING)
            .values(attempted_at=utcnow())).rowcount == 1


def _posted(ctx: SyncContext, row_id: int, body_print: str, **remote_id: Any) -> None:
    """Record the comment's id on the other side (``jira_comment_id`` or
    ``qalita_comment_id``); the state becomes posted only if no delete came meanwhile (a
    deleting row keeps its state, and now knows what to delete)."""
    with ctx.database.unit_of_work() as session:
        session.execute(update(CommentLink).where(CommentLink.id == row_id).values(
            body_fingerprint=body_print, **remote_id))
        session.execute(update(CommentLink).where(
            CommentLink.id == row_id, CommentLink.state.in_((C_PENDING, C_POSTED)))
            .values(state=C_POSTED))


def _save_comment(ctx: SyncContext, row_id: int, **values: Any) -> None:
    with ctx.database.unit_of_work() as session:
        session.execute(update(CommentLink).where(CommentLink.id == row_id).values(**values))
