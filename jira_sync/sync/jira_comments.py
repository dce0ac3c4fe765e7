"""Jira comments folded into the link's comment links (DESIGN.md: a webhook is a hint).

Each Jira comment is mirrored by its id and ordered by its ``updated`` time; a deletion that
comes before its creation leaves a tombstone, so the late creation is not posted. A comment
jira-sync posted for QALITA carries QALITA's marker: its creation is an echo, and what a
person does to it in Jira is not written back (QALITA owns it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from jira_sync.deliveries import JIRA
from jira_sync.events.jira_webhook import JiraComment, jira_time
from jira_sync.mapping import find_comment_marker
from jira_sync.mapping.inbound import jira_text
from jira_sync.store.models import CommentLink
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync.state import C_DELETED, C_DELETING, C_PENDING, C_POSTED, C_TOMBSTONE

if TYPE_CHECKING:
    from jira_sync.sync.jira_view import Fold


def fold_current(fold: Fold) -> bool:
    """Comments a reconciliation read shows and no delivery brought: new and edited ones,
    and, when Jira listed them all, the ones deleted."""
    session = fold.batch.session
    rows = {row.jira_comment_id: row for row in session.scalars(select(CommentLink).where(
        CommentLink.link_id == fold.link.id, CommentLink.origin == JIRA))}
    wanted = False
    for comment in fold.issue.comments:
        row = rows.get(comment.id)
        updated = jira_time(comment.updated) or fold.at
        if row is None or (row.desired_at is not None and updated > row.desired_at):
            wanted = fold.comment("created" if row is None else "updated", comment) \
                or wanted
    if fold.issue.comments_complete:
        listed = {comment.id for comment in fold.issue.comments}
        for jira_id, row in rows.items():
            if jira_id not in listed and row.state in (C_PENDING, C_POSTED):
                wanted = _deleted(fold, row, JiraComment(
                    jira_id or "", None, None, None, None, None)) or wanted
    return wanted


def fold_comment(fold: Fold, kind: str, comment: JiraComment) -> bool:
    """A comment created, edited or deleted in Jira, into its comment link; True when
    QALITA has something new to be told."""
    text = jira_text(comment.body)
    # In the markup: read as wiki, an unescaped marker would be taken for a link.
    posted_for = find_comment_marker(comment.body if isinstance(comment.body, str)
                                     else text)
    if posted_for is not None:
        return _own(fold, kind, comment, posted_for)
    if not fold.mapping.inbound["comments"]:
        fold.note("ignored", f"comment {comment.id}: comments do not flow back (mapping)")
        return False
    session = fold.batch.session
    # A deletion that comes first leaves a tombstone, so a late creation is not posted.
    session.execute(insert(session, CommentLink).values(
        link_id=fold.link.id, origin=JIRA, jira_comment_id=comment.id,
        state=C_TOMBSTONE if kind == "deleted" else C_PENDING,
        created_at=utcnow(), updated_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["link_id", "jira_comment_id"]))
    row = session.scalars(select(CommentLink).where(
        CommentLink.link_id == fold.link.id, CommentLink.jira_comment_id == comment.id)
        .with_for_update()).one()
    if kind == "deleted":
        return _deleted(fold, row, comment)
    updated = jira_time(comment.updated) or fold.at
    if row.state in (C_DELETED, C_DELETING, C_TOMBSTONE):
        fold.note("ignored", f"comment {comment.id} was deleted in Jira")
        return False
    if row.desired_at is not None and updated <= row.desired_at:
        fold.note("stale", f"comment {comment.id}: a newer version is already known")
        return False
    actor = comment.author if kind == "created" or comment.update_author is None \
        else comment.update_author
    row.body, row.desired_at = text, updated
    row.author = (actor.display_name or actor.name) if actor else row.author
    fold.note("accepted", f"comment {comment.id} {kind} in Jira")
    return True


def _deleted(fold: Fold, row: CommentLink, comment: JiraComment) -> bool:
    if row.state in (C_DELETED, C_DELETING):
        fold.note("ignored", f"comment {comment.id} deleted again")
        return False
    if row.qalita_comment_id is None and row.attempted_at is None:
        row.state = C_TOMBSTONE  # never posted to QALITA: nothing to delete there
        fold.note("accepted", f"comment {comment.id} deleted in Jira before it reached "
                              "QALITA")
        return False
    row.state = C_DELETING
    fold.note("accepted", f"comment {comment.id} deleted in Jira")
    return True


def _own(fold: Fold, kind: str, comment: JiraComment, posted_for: int) -> bool:
    """A comment jira-sync posted for QALITA: its creation is an echo; QALITA owns it,
    so what a person does to it in Jira is not written back."""
    session = fold.batch.session
    row = session.scalars(select(CommentLink).where(
        CommentLink.link_id == fold.link.id,
        CommentLink.qalita_comment_id == posted_for)).one_or_none()
    if kind == "created":
        if row is not None and row.jira_comment_id is None:
            row.jira_comment_id = comment.id
        fold.note("echo", f"comment {comment.id} is QALITA comment {posted_for}, posted by "
                          "jira-sync")
    else:
        fold.note("skipped", f"comment {comment.id} (QALITA comment {posted_for}) was "
                  f"{kind} in Jira; QALITA owns it, so this is not written back")
    return False
