"""The inbound flush: tell QALITA what people changed in Jira, once, with the fewest calls.

A flush leases the link (the same lease outbound flushes take, so the two never interleave)
and writes only the fields whose Jira-side value changed since the link's last view of Jira
(``jira_view`` marks them): one partial ``PUT`` with those keys, then comment calls.
A value QALITA already holds is not written again; every value written is recorded first
as a pending write on QALITA's side, so QALITA's event for it comes back as an echo and
goes no further. Its failures are its own lane's (``outcomes``): parked on 429 and 5xx,
dead-lettered on 400 and 403; a QALITA 404 marks the lane ``gone``; a refused token pauses
the integration (``pauses``: QALITA's pauses this direction, Jira's both).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from jira_sync import telemetry
from jira_sync.events.qalita_event import InvalidEvent, dump_issue, parse_issue
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
from jira_sync.sync import echoes, leases, lifecycle, pauses
from jira_sync.sync.comments import comments_to_qalita
from jira_sync.sync.conflicts import (
    JIRA,
    QALITA,
    jira_changed_at,
    mark_synced,
    settle,
    winner,
)
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import email_of
from jira_sync.sync.jira_view import DELETED, IGNORED
from jira_sync.sync.outbound import adopt
from jira_sync.sync.outcomes import (
    INBOUND_GONE,
    LeaseLost,
    Work,
    abandon,
    fail,
    finish,
    finish_together,
    journal,
    look_again_at,
    park,
    renew_in,
    unexpected,
)
from jira_sync.sync.state import C_DELETING, C_PENDING, C_POSTED, FINAL_STATES, Due

logger = logging.getLogger("jira_sync.inbound")
# Links leased and read in one transaction by an inbound flush: few enough that the last
# of them is written well within its lease.
LINKS_PER_LEASE = 20
# QALITA's fields whose change there must reach Jira (every field outbound renders from).
QALITA_FIELDS = ("status", "title", "description", "owner", "tags", "severity", "dataset",
                 "rule", "metric", "domain", "url", "evidence", "links")


def flush_inbound(ctx: SyncContext, link_ids: Sequence[int]) -> list[Due]:
    """Write the links' pending Jira changes to QALITA; returns the flushes to schedule.

    The links are leased and read together, in one transaction; each is then written on its
    own, so one link's failure is only its own (parked or failed at once). Those that went
    well are finished together, before a third of the lease has gone by.
    """
    started = time.monotonic()
    works, dues = _lease(ctx, link_ids)
    done: list[Work] = []
    for work in works:
        dues += _flush_guarded(ctx, work)
        if not work.done:
            done.append(work)
        if time.monotonic() - started > ctx.timings.lease_seconds / 3:
            dues += finish_together(ctx, done)
            started, done = time.monotonic(), []
    return dues + finish_together(ctx, done)


def _lease(ctx: SyncContext, link_ids: Sequence[int]) -> tuple[list[Work], list[Due]]:
    """Lease the due links among ``link_ids``; the others are scheduled for when they are due
    or free."""
    owner, now = leases.new_owner(), utcnow()
    works: list[Work] = []
    dues: list[Due] = []
    with ctx.database.unit_of_work() as session:
        held = set(leases.acquire(session, link_ids, owner, ctx.timings.lease_seconds))
        idle: list[int] = []
        integrations: dict[int, Integration] = {}
        for link in session.scalars(select(IssueLink).where(IssueLink.id.in_(list(link_ids)))
                                    .order_by(IssueLink.id)):
            due = link.inbound_due_at
            if link.state in FINAL_STATES or due is None or due > now or link.id not in held:
                if link.id in held:
                    idle.append(link.id)
                if due is not None and link.state not in FINAL_STATES:
                    at = due if due > now else look_again_at(link, now)
                    dues.append(Due(link.id, at, inbound=True))
                continue
            if link.integration_id not in integrations:
                integrations[link.integration_id] = session.get_one(Integration,
                                                                    link.integration_id)
            if pauses.stopped(integrations[link.integration_id], inbound=True):
                idle.append(link.id)  # held: due until the hold ends (``pauses.release``)
                continue
            link.inbound_due_at = None
            work = Work.of(link, owner, integrations[link.integration_id], inbound=True)
            works.append(work)
        leases.release(session, idle, owner)
        by_link = {work.link_id: work for work in works}
        for row in session.scalars(select(CommentLink).where(
                CommentLink.link_id.in_(list(by_link)), CommentLink.origin == echoes.JIRA,
                CommentLink.state.in_((C_PENDING, C_POSTED, C_DELETING)))
                .order_by(CommentLink.id)):
            by_link[row.link_id].comments.append(row)
            session.expunge(row)
        for integration in integrations.values():
            session.expunge(integration)
    return works, dues


def _flush_guarded(ctx: SyncContext, work: Work) -> list[Due]:
    try:
        _sync(ctx, work)
    except LeaseLost:
        return abandon(ctx, work)
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
    return []  # finished with the others that went well


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
    comments_to_qalita(ctx, qalita, work)


# -- fields --------------------------------------------------------------------------------

@dataclass
class _Targets:
    """What Jira's changed fields mean in QALITA's terms (computed once: it may ask Jira)."""

    status: str | None = None
    status_fields: list[str] = field(default_factory=list)
    assignee: tuple[str | None, str | None] | None = None  # (Jira user, e-mail)
    title: str | None = None
    description: str | None = None
    added: list[str] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    """The PUT that tells QALITA, and the bookkeeping that goes with it."""

    changes: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)  # view entries dealt with
    agreed: list[str] = field(default_factory=list)  # fields both sides now agree on
    notes: list[tuple[str, str]] = field(default_factory=list)
    outbound_due: bool = False


def _fields(ctx: SyncContext, client: JiraClient, qalita: QalitaClient, mapping: Mapping,
            work: Work) -> None:
    """One partial PUT with every field a person changed in Jira and QALITA lacks.

    Planned against the last QALITA snapshot; when that plan writes, QALITA's issue is read
    first and the plan made again against it: its tags get the additions and removals (never
    a blind replace), and a value QALITA got meanwhile is not written again.
    """
    targets = _targets(ctx, client, mapping, work)
    stored: dict[str, Any] = (work.desired or {}).get("issue") or {}
    current = stored
    plan = _plan(mapping, work, targets, current)
    if plan.changes:
        fresh = qalita.get_issue(work.qalita_issue_id)
        if fresh is None:
            raise NotFound(f"QALITA GET issue {work.qalita_issue_id}: gone", status=404)
        current = _snapshot(fresh) or current
        plan = _plan(mapping, work, targets, current)
    for decision, message in plan.notes:
        journal(ctx, work, "inbound", decision, message)
    if plan.outbound_due:
        _make_outbound_due(work)
    after = _with_changes(current, plan.changes)
    if plan.changes:
        answer = _write(ctx, qalita, work, plan.changes)
        after = _remember(work, stored, current, _snapshot(answer) if answer else None, after)
    elif plan.seen:
        journal(ctx, work, "inbound", "unchanged", f"QALITA issue {work.qalita_issue_id} "
                f"already holds Jira's {', '.join(sorted(plan.seen))}")
    if plan.agreed:
        # Both sides now hold the same values: outbound's record of what Jira holds follows.
        for name in plan.agreed:
            adopt(ctx, client, mapping, work, name, after)
        mark_synced(work, *plan.agreed)
    settle(work, plan.seen)


def _targets(ctx: SyncContext, client: JiraClient, mapping: Mapping, work: Work) -> _Targets:
    view, found = work.view, _Targets()
    if _dirty(view, "status") or _dirty(view, IGNORED):
        found.status = _status(ctx, client, mapping, work)
        found.status_fields = [f for f in ("status", IGNORED) if _dirty(view, f)]
    if mapping.inbound["assignee"] and _dirty(view, "assignee"):
        ref = view["assignee"].get("v")
        found.assignee = (ref, email_of(ctx, client, work.integration.id, ref) if ref else None)
    if mapping.inbound["title"] and _dirty(view, "summary"):
        found.title = view["summary"].get("v") or ""
    if mapping.inbound["description"] and _dirty(view, "description"):
        found.description = (view["description"].get("v") or {}).get("top") or ""
    if mapping.inbound["labels"] and "labels" in view:
        entry = view["labels"]
        have, base = set(entry.get("v") or []), set(entry.get("base") or [])
        found.added = [t for t in sorted(have - base) if not is_managed_label(mapping, t)]
        found.removed = {t for t in base - have if not is_managed_label(mapping, t)}
    return found


def _plan(mapping: Mapping, work: Work, targets: _Targets, current: dict[str, Any]) -> _Plan:
    plan, view = _Plan(), work.view

    def decide(name: str, value_changes: dict[str, Any], describe: str) -> None:
        """Write ``value_changes`` unless QALITA won a conflict over the field."""
        plan.seen[name] = view[name]
        verdict = winner(mapping, work, name)
        if verdict == QALITA:
            plan.notes.append(("conflict", f"{name}: both sides changed it; QALITA's value is "
                               f"kept and Jira's ({describe}) will be overwritten"))
            plan.outbound_due = True
            return
        if verdict == JIRA:
            plan.notes.append(("conflict", f"{name}: both sides changed it; Jira's later "
                               f"change ({describe}) overwrites QALITA's"))
        plan.changes.update(value_changes)
        plan.agreed.append(name)

    def holds(name: str) -> None:
        plan.seen[name] = view[name]
        plan.agreed.append(name)

    if targets.status_fields:
        first, *others = targets.status_fields
        if targets.status is None:
            for name in targets.status_fields:
                plan.seen[name] = view[name]
        elif same_status(mapping, current.get("status"), targets.status):
            for name in targets.status_fields:
                holds(name)
        else:
            decide(first, {"status": targets.status}, targets.status)
            if first in plan.agreed:
                for name in others:
                    holds(name)
    if targets.assignee is not None:
        ref, email = targets.assignee
        have = ((current.get("owner") or {}).get("email") or "").lower() or None
        if ref and email is None:
            plan.notes.append(("skipped", f"assignee {ref}: no e-mail known for this Jira "
                               "user (hidden, or no such user); the QALITA owner is left as is"))
            plan.seen["assignee"] = view["assignee"]
        elif email == have:
            holds("assignee")
        else:
            decide("assignee", {"assignee_email": email}, email or "unassigned")
    if targets.title is not None:
        generated = work.want(mapping).summary
        if not targets.title or text_key(targets.title) in (
                text_key(generated), text_key(current.get("title"))):
            holds("summary")  # the template's, or already QALITA's
        else:
            decide("summary", {"title": targets.title}, targets.title)
    if targets.description is not None:
        if text_key(targets.description) == text_key(current.get("description")):
            holds("description")
        else:
            decide("description", {"description": targets.description},
                   f"{len(targets.description)} characters")
    if targets.added or targets.removed:
        tags = list(current.get("tags") or [])
        merged = [t for t in tags if t not in targets.removed] + \
            [t for t in targets.added if t not in tags]
        holds("labels")
        if merged != tags:
            plan.changes["labels"] = merged
    return plan


def _snapshot(issue: dict[str, Any]) -> dict[str, Any] | None:
    """QALITA's answer as the stored snapshot; None when it is not an issue we can read."""
    try:
        return dump_issue(parse_issue(issue))
    except InvalidEvent:
        return None


def _remember(work: Work, stored: dict[str, Any], fresh: dict[str, Any],
              answer: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """What was written is QALITA's state now, before its event comes back: an outbound flush
    in between must not put QALITA's older values back into Jira.

    QALITA's answer carries its new version, which makes the events still in flight stale; so
    what QALITA changed itself since the stored snapshot (read just before the write) is
    taken from here, and outbound is made due to carry it to Jira. Without an answer, the
    snapshot is updated in place, unless a newer one came in meanwhile. Saved with the
    flush's next save, against the row as it is then.
    """
    drift = [name for name in QALITA_FIELDS if fresh.get(name) != stored.get(name)]
    if answer is not None and answer.get("version", 0) > work.desired_version:
        after = answer
    work.desired = {**(work.desired or {}), "issue": after}

    def update(link: IssueLink) -> None:
        now = utcnow()
        if link.desired is None:
            return
        if answer is not None and answer.get("version", 0) > link.desired_version:
            link.desired_version = answer["version"]
        elif link.desired_version != work.desired_version:
            return  # a newer snapshot came in: it tells what QALITA holds
        changed = {**(link.desired.get("changed") or {}),
                   **dict.fromkeys(drift, now.isoformat())}
        link.desired = {**link.desired, "issue": after, "changed": changed}
        if drift:
            link.due_at = link.due_at or now

    work.updates.append(update)
    if drift:
        work.outbound_due = True
    return after


def _with_changes(issue: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """QALITA's issue as it is once ``changes`` (a PUT body) are applied."""
    after = {**issue, **{k: v for k, v in changes.items()
                         if k in ("status", "title", "description")}}
    if "labels" in changes:
        after["tags"] = changes["labels"]
    if "assignee_email" in changes:
        email = changes["assignee_email"]
        owner = issue.get("owner") or {}
        after["owner"] = None if email is None else (
            owner if (owner.get("email") or "").lower() == email else {"email": email,
                                                                       "name": None})
    return after


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


def _write(ctx: SyncContext, qalita: QalitaClient, work: Work,
           changes: dict[str, Any]) -> dict[str, Any] | None:
    """The PUT, recorded first as pending writes (in the transaction that renews the lease)
    so QALITA's event for it is an echo; what it changed is saved when the flush ends."""
    work.request = changes
    with ctx.database.unit_of_work() as session:
        renew_in(session, ctx, work)
        echoes.expect(session, work.link_id, echoes.QALITA, changes.items(),
                      ctx.timings.echo_ttl_seconds)
    answer = qalita.update_issue(work.qalita_issue_id, changes)
    telemetry.synced(telemetry.INBOUND, (jira_changed_at(work.view, name) for name in work.view))
    shown = {k: (normalize(v)[:80] if isinstance(v, str) else v) for k, v in changes.items()}
    journal(ctx, work, "inbound", "applied", f"wrote {', '.join(sorted(changes))} to QALITA "
            f"issue {work.qalita_issue_id} from {work.jira_issue_key}", changes=shown)
    return answer


def _make_outbound_due(work: Work) -> None:
    """QALITA won: its value still has to reach Jira, so outbound must flush."""

    def update(link: IssueLink) -> None:
        link.due_at = link.due_at or utcnow()

    work.updates.append(update)
    work.outbound_due = True
