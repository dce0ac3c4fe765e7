"""The inbound flush: tell QALITA what people changed in Jira, once, with the fewest calls.

A flush leases the link (the same lease outbound flushes take, so the two never interleave)
and writes only the fields whose Jira-side value changed since the link's last view of Jira
(``jira_changes`` marks them): one partial ``PUT`` with those keys, then comment calls.
A value QALITA already holds is not written again; every value written is recorded first
as a pending write on QALITA's side, so QALITA's event for it comes back as an echo and
goes no further. Its failures are its own lane's (``outcomes``): parked on 429 and 5xx,
dead-lettered on 400, 401 and 403; a QALITA 404 marks the lane ``gone``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from jira_sync.jira.client import JiraClient
from jira_sync.mapping import Mapping
from jira_sync.mapping.inbound import (
    is_managed_label,
    normalize,
    qalita_status,
    same_status,
    text_key,
)
from jira_sync.qalita import QalitaClient
from jira_sync.remote import NotFound, PermanentError, TransientError
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import echoes, leases, lifecycle
from jira_sync.sync.conflicts import JIRA, QALITA, mark_synced, settle, winner
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import email_of
from jira_sync.sync.jira_changes import DELETED, IGNORED
from jira_sync.sync.outbound import adopt
from jira_sync.sync.outcomes import (
    INBOUND_GONE,
    LeaseLost,
    Work,
    fail,
    finish,
    journal,
    look_again_at,
    park,
    renew,
    save_progress,
    unexpected,
)
from jira_sync.sync.rendering import fingerprint
from jira_sync.sync.state import C_DELETED, C_DELETING, C_PENDING, C_POSTED, FINAL_STATES, Due

logger = logging.getLogger("jira_sync.inbound")
# A comment whose post may have reached QALITA (the answer was lost) waits this long for
# QALITA's event about it before it is posted again: QALITA does not deduplicate comments.
COMMENT_ECHO_WAIT_SECONDS = 60.0


def flush_inbound(ctx: SyncContext, link_id: int) -> list[Due]:
    """Write the link's pending Jira changes to QALITA; returns the flushes to schedule."""
    owner = leases.new_owner()
    now = utcnow()
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, link_id)
        if link is None or link.state in FINAL_STATES or link.inbound_due_at is None:
            return []
        if link.inbound_due_at > now:
            return [Due(link.id, link.inbound_due_at, inbound=True)]
        if not leases.acquire(session, [link.id], owner, ctx.timings.lease_seconds):
            session.refresh(link)
            return [Due(link.id, look_again_at(link, now), inbound=True)]
        session.refresh(link)
        link.inbound_due_at = None
        integration = session.get(Integration, link.integration_id)
        assert integration is not None
        work = Work.of(link, owner, integration, inbound=True)
        work.comments = list(session.scalars(select(CommentLink).where(
            CommentLink.link_id == link.id, CommentLink.origin == echoes.JIRA,
            CommentLink.state.in_((C_PENDING, C_POSTED, C_DELETING))).order_by(CommentLink.id)))
        session.expunge(integration)
        for row in work.comments:
            session.expunge(row)
    return _flush_guarded(ctx, work)


def _flush_guarded(ctx: SyncContext, work: Work) -> list[Due]:
    try:
        _sync(ctx, work)
    except LeaseLost:
        return []
    except TransientError as exc:
        return park(ctx, work, exc)
    except NotFound as exc:
        journal(ctx, work, "inbound", "gone", f"QALITA issue {work.qalita_issue_id} is gone "
                f"({exc.reason}); Jira changes are no longer written back")
        return finish(ctx, work, state=INBOUND_GONE, reason=exc.reason)
    except PermanentError as exc:
        return fail(ctx, work, exc)
    except Exception as exc:
        logger.exception("inbound flush of link %s failed unexpectedly", work.link_id)
        return park(ctx, work, unexpected(exc))
    return finish(ctx, work)


def _sync(ctx: SyncContext, work: Work) -> None:
    qalita = ctx.qalita(work.integration)
    if qalita is None:
        journal(ctx, work, "inbound", "ignored", "QALITA_API_URL and QALITA_API_TOKEN are "
                "not configured: Jira changes are not written back")
        return
    mapping = ctx.mappings(work.integration).for_project(work.project_key or "")
    if DELETED in work.view:
        lifecycle.deleted_in_jira(ctx, mapping, work, qalita)
        return
    if work.desired is None:
        return  # only comments seen from QALITA so far: nothing to compare fields with
    client = ctx.client(work.integration)
    _fields(ctx, client, qalita, mapping, work)
    _comments(ctx, qalita, work)


# -- fields --------------------------------------------------------------------------------

def _fields(ctx: SyncContext, client: JiraClient, qalita: QalitaClient, mapping: Mapping,
            work: Work) -> None:
    """One partial PUT with every field a person changed in Jira and QALITA lacks."""
    current: dict[str, Any] = (work.desired or {}).get("issue") or {}
    changes: dict[str, Any] = {}
    seen: dict[str, Any] = {}  # view entries this flush dealt with
    won: list[str] = []  # fields where Jira's change beat QALITA's
    view = work.view

    def decide(field: str, value_changes: dict[str, Any], describe: str) -> None:
        """Write ``value_changes`` unless QALITA already holds them or won a conflict."""
        seen[field] = view[field]
        verdict = winner(mapping, work, field)
        if verdict == QALITA:
            journal(ctx, work, "inbound", "conflict", f"{field}: both sides changed it; "
                    f"QALITA's value is kept and Jira's ({describe}) will be overwritten")
            _make_outbound_due(ctx, work)
            return
        if verdict == JIRA:
            journal(ctx, work, "inbound", "conflict", f"{field}: both sides changed it; "
                    f"Jira's later change ({describe}) overwrites QALITA's")
            won.append(field)
        changes.update(value_changes)

    if _dirty(view, "status") or _dirty(view, IGNORED):
        target = _status(ctx, client, mapping, work)
        field = "status" if _dirty(view, "status") else IGNORED
        if _dirty(view, IGNORED) and _dirty(view, "status"):
            seen[IGNORED] = view[IGNORED]
        if target is None or same_status(mapping, current.get("status"), target):
            seen[field] = view[field]
        else:
            decide(field, {"status": target}, target)
    if mapping.inbound["assignee"] and _dirty(view, "assignee"):
        ref = view["assignee"].get("v")
        email = email_of(ctx, client, work.integration.id, ref) if ref else None
        have = ((current.get("owner") or {}).get("email") or "").lower() or None
        if ref and email is None:
            journal(ctx, work, "inbound", "skipped", f"assignee {ref}: no e-mail known for "
                    "this Jira user (hidden, or no such user); the QALITA owner is left as is")
            seen["assignee"] = view["assignee"]
        elif email == have:
            seen["assignee"] = view["assignee"]
        else:
            decide("assignee", {"assignee_email": email}, email or "unassigned")
    if mapping.inbound["title"] and _dirty(view, "summary"):
        text = view["summary"].get("v") or ""
        generated = work.want(mapping).summary
        if not text or text_key(text) in (text_key(generated), text_key(current.get("title"))):
            seen["summary"] = view["summary"]  # the template's, or already QALITA's
        else:
            decide("summary", {"title": text}, text)
    if mapping.inbound["description"] and _dirty(view, "description"):
        text = ((view["description"].get("v") or {}).get("top") or "")
        if text_key(text) == text_key(current.get("description")):
            seen["description"] = view["description"]
        else:
            decide("description", {"description": text}, f"{len(text)} characters")
    if mapping.inbound["labels"] and "labels" in view:
        entry = view["labels"]
        have, base = set(entry.get("v") or []), set(entry.get("base") or [])
        added = [t for t in sorted(have - base) if not is_managed_label(mapping, t)]
        removed = {t for t in base - have if not is_managed_label(mapping, t)}
        if added or removed:
            tags = list(current.get("tags") or [])
            merged = [t for t in tags if t not in removed] + [t for t in added if t not in tags]
            seen["labels"] = entry
            if merged != tags:
                changes["labels"] = merged
    if changes:
        _write(ctx, qalita, work, changes)
        mark_synced(work, *seen)
        for field in won:
            adopt(ctx, client, mapping, work, field)
    elif seen:
        journal(ctx, work, "inbound", "unchanged", f"QALITA issue {work.qalita_issue_id} "
                f"already holds Jira's {', '.join(sorted(seen))}")
    settle(ctx, work.link_id, seen)


def _dirty(view: dict[str, Any], field: str) -> bool:
    return bool((view.get(field) or {}).get("dirty"))


def _status(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work) -> str | None:
    """The QALITA status Jira's status and ignored label stand for."""
    value = (work.view.get("status") or {}).get("v") or {}
    if not value:  # no delivery told it yet: ask Jira
        status = client.get_issue(work.jira_issue_id or "", fields=("status",))["fields"]["status"]
        value = {"id": str(status.get("id")), "name": status.get("name"),
                 "category": (status.get("statusCategory") or {}).get("key")}
    category = value.get("category")
    if category is None and value.get("id"):
        category = ctx.status_category(work.integration.id, value["id"])
        if category is None:
            for status in client.statuses():
                ctx.learn_category(work.integration.id, str(status.get("id")),
                                   (status.get("statusCategory") or {}).get("key"))
            category = ctx.status_category(work.integration.id, value["id"])
    ignored_entry = work.view.get(IGNORED)
    if ignored_entry is not None:
        ignored = bool(ignored_entry.get("v"))
    else:
        ignored = mapping.ignored_label in ((work.view.get("labels") or {}).get("v") or [])
    return qalita_status(mapping, category, value.get("name"), ignored)


def _write(ctx: SyncContext, qalita: QalitaClient, work: Work, changes: dict[str, Any]) -> None:
    """The PUT, recorded first as pending writes so QALITA's event for it is an echo."""
    work.request = changes
    with ctx.database.unit_of_work() as session:
        echoes.expect(session, work.link_id, echoes.QALITA, changes.items(),
                      ctx.timings.echo_ttl_seconds)
    renew(ctx, work)
    qalita.update_issue(work.qalita_issue_id, changes)
    shown = {k: (normalize(v)[:80] if isinstance(v, str) else v) for k, v in changes.items()}
    journal(ctx, work, "inbound", "applied", f"wrote {', '.join(sorted(changes))} to QALITA "
            f"issue {work.qalita_issue_id} from {work.jira_issue_key}", changes=shown)
    save_progress(ctx, work)


def _make_outbound_due(ctx: SyncContext, work: Work) -> None:
    """QALITA won: its value still has to reach Jira, so outbound must flush."""
    with ctx.database.unit_of_work() as session:
        session.execute(update(IssueLink).where(
            IssueLink.id == work.link_id, IssueLink.due_at.is_(None))
            .values(due_at=utcnow()).execution_options(synchronize_session=False))
    work.outbound_due = True


# -- comments ------------------------------------------------------------------------------

def _comments(ctx: SyncContext, qalita: QalitaClient, work: Work) -> None:
    """Jira comments to QALITA: posted once (claimed first), edited, deleted."""
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
            _posted(ctx, row.id, comment_id, fingerprint(body))
            journal(ctx, work, "comment", "applied", f"posted Jira comment "
                    f"{row.jira_comment_id} on QALITA issue {work.qalita_issue_id}")
        elif row.body_fingerprint != fingerprint(body):
            renew(ctx, work)
            qalita.edit_comment(work.qalita_issue_id, row.qalita_comment_id, body)
            _save_comment(ctx, row.id, body_fingerprint=fingerprint(body))
            journal(ctx, work, "comment", "applied", f"edited Jira comment "
                    f"{row.jira_comment_id} on QALITA issue {work.qalita_issue_id}")


def _waiting_for_echo(work: Work, row: CommentLink, now: Any) -> bool:
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
        return session.execute(update(CommentLink).where(
            CommentLink.id == row_id, CommentLink.state == C_PENDING)
            .values(attempted_at=utcnow())).rowcount == 1


def _posted(ctx: SyncContext, row_id: int, comment_id: int, body_print: str) -> None:
    """Record QALITA's comment; a deletion taken in meanwhile keeps its state, and now knows
    what to delete."""
    with ctx.database.unit_of_work() as session:
        session.execute(update(CommentLink).where(CommentLink.id == row_id).values(
            qalita_comment_id=comment_id, body_fingerprint=body_print))
        session.execute(update(CommentLink).where(
            CommentLink.id == row_id, CommentLink.state.in_((C_PENDING, C_POSTED)))
            .values(state=C_POSTED))


def _save_comment(ctx: SyncContext, row_id: int, **values: Any) -> None:
    with ctx.database.unit_of_work() as session:
        session.execute(update(CommentLink).where(CommentLink.id == row_id).values(**values))
