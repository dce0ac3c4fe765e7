"""Creating exactly one Jira issue per QALITA issue, in bulk, even across crashes.

The due creates of one project are leased together and go out through bulk create, up to 50
per call. Before the call, each link records ``create_attempted_at`` (only while its lease is
still held); every issue carries the marker label. A link found with an attempt recorded (a
worker died, or the call failed in a way that may have applied it) is first looked up by its
marker; Jira's search index lags fresh issues, so a miss within ``index_lag_seconds`` of the
attempt parks the link and looks again, and only an older miss creates anew.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from jira_sync.jira.client import BULK_CREATE_LIMIT, BulkResult, JiraClient
from jira_sync.mapping import Mapping
from jira_sync.mapping.inbound import jira_text, normalize
from jira_sync.remote import PermanentError, RemoteError, TransientError
from jira_sync.store.models import CommentLink, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import leases
from jira_sync.sync.conflicts import mark_synced
from jira_sync.sync.context import SyncContext
from jira_sync.sync.identity import resolve_user
from jira_sync.sync.jira_changes import FOLD_FIELDS, fold_read_issues
from jira_sync.sync.outcomes import (
    Work,
    fail,
    finish,
    journal,
    look_again_at,
    park,
    persist,
    unexpected,
)
from jira_sync.sync.rendering import fingerprint, rich_text
from jira_sync.sync.state import (
    BLOCKED,
    CLOSED,
    FAILED,
    FINAL_STATES,
    LINKED,
    PENDING,
    SEVERED,
    SEVERING,
    Due,
)

logger = logging.getLogger("jira_sync.creates")
# Links leased by one create flush; more wait for the next one.
MAX_LINKS_PER_FLUSH = 4 * BULK_CREATE_LIMIT
# Jira's JQL has a length limit: look up markers in slices.
MARKERS_PER_SEARCH = 50


def flush_creates(ctx: SyncContext, integration_id: int, project_key: str | None,
                  link_id: int) -> list[Due]:
    """Create the due issues of one project (``link_id`` among them)."""
    owner = leases.new_owner()
    now = utcnow()
    with ctx.database.unit_of_work() as session:
        candidates = list(session.scalars(select(IssueLink.id).where(
            IssueLink.integration_id == integration_id,
            IssueLink.jira_project_key == project_key,
            IssueLink.jira_issue_id.is_(None),
            IssueLink.state.in_((PENDING, BLOCKED, FAILED)),
            IssueLink.desired.is_not(None),
            or_(IssueLink.due_at <= now, IssueLink.id == link_id),
            or_(IssueLink.next_attempt_at.is_(None), IssueLink.next_attempt_at <= now),
            or_(IssueLink.lease_owner.is_(None), IssueLink.lease_expires_at < now),
        ).order_by(IssueLink.due_at).limit(MAX_LINKS_PER_FLUSH)))
        if link_id not in candidates:
            candidates.append(link_id)
        held = leases.acquire(session, candidates, owner, ctx.timings.lease_seconds)
        integration = session.get(Integration, integration_id)
        assert integration is not None
        session.expunge(integration)
        works: list[Work] = []
        later: list[Due] = []
        for link in session.scalars(select(IssueLink).where(IssueLink.id.in_(held))):
            if link.state in FINAL_STATES:  # severed since the flush was asked for
                leases.release(session, [link.id], owner)
                continue
            if link.next_attempt_at is not None and link.next_attempt_at > now:
                later.append(Due(link.id, link.next_attempt_at))
                leases.release(session, [link.id], owner)
                continue
            link.due_at = None
            works.append(Work.of(link, owner, integration))
        if link_id not in held:
            later += _look_again(session, link_id, now)
    if not works:
        return later
    try:
        return later + _create_all(ctx, integration, project_key, works)
    except Exception as exc:
        # Whatever went wrong, no leased link is left without a state and a next attempt.
        if not isinstance(exc, TransientError | PermanentError):
            logger.exception("creating issues in %s failed unexpectedly", project_key)
        pending = [work for work in works if not work.done]
        if isinstance(exc, PermanentError):
            return later + [due for work in pending for due in fail(ctx, work, exc)]
        error = exc if isinstance(exc, TransientError) else unexpected(exc)
        return later + [due for work in pending for due in park(ctx, work, error)]


def _create_all(ctx: SyncContext, integration: Integration, project_key: str | None,
                works: list[Work]) -> list[Due]:
    later: list[Due] = []
    client = ctx.client(integration)
    mapping = ctx.mappings(integration).for_project(project_key or "")
    ready: list[Work] = []
    for work in works:
        if work.desired is None or work.jira_issue_id is not None:
            later += finish(ctx, work)
        elif work.desired.get("deleted"):
            later += finish(ctx, work, state=CLOSED, reason="deleted in QALITA before a Jira "
                            "issue was created", decision="closed")
        else:
            ready.append(work)
    ready = _adopt_attempted(ctx, client, mapping, ready, later)
    by_type: dict[str | None, list[Work]] = defaultdict(list)
    for work in ready:
        by_type[work.issue_type].append(work)
    for issue_type, group in by_type.items():
        for start in range(0, len(group), BULK_CREATE_LIMIT):
            later += _create_chunk(ctx, client, mapping, project_key or "", issue_type or "",
                                   group[start:start + BULK_CREATE_LIMIT])
    return later


def _look_again(session: Session, link_id: int, now: datetime) -> list[Due]:
    """The asked-for link is leased by another flush: look again when that may be over."""
    link = session.get(IssueLink, link_id)
    if link is None or link.jira_issue_id is not None or link.state not in (
            PENDING, BLOCKED, FAILED):
        return []
    return [Due(link_id, look_again_at(link, now))]


def _adopt_attempted(ctx: SyncContext, client: JiraClient, mapping: Mapping,
                     works: list[Work], later: list[Due]) -> list[Work]:
    """Adopt what an earlier attempt created; park what the index may not show yet."""
    attempted = [w for w in works if w.create_attempted_at is not None]
    if not attempted:
        return works
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(attempted), MARKERS_PER_SEARCH):
        markers = [w.marker for w in attempted[start:start + MARKERS_PER_SEARCH]]
        jql = "labels in ({})".format(", ".join(f'"{m}"' for m in markers))
        issues = list(client.search(jql, fields=("summary", "labels", "created")))
        cut = severed_issue_ids(ctx, works[0].integration.id, [str(i["id"]) for i in issues])
        for issue in issues:
            if str(issue["id"]) in cut:
                continue
            for label in issue.get("fields", {}).get("labels") or []:
                # Should two exist (never through us), keep the oldest: ids grow.
                if label in markers and (label not in found
                                         or int(issue["id"]) < int(found[label]["id"])):
                    found[label] = issue
    now = utcnow()
    remaining: list[Work] = []
    for work in works:
        issue = found.get(work.marker)
        if issue is not None:
            work.jira_issue_id, work.jira_issue_key = str(issue["id"]), issue.get("key")
            labels = set(issue.get("fields", {}).get("labels") or [])
            work.managed_labels = sorted(labels & (set(work.want(mapping).labels) | {work.marker}))
            work.written = {}  # Unknown what the lost attempt wrote: the next flush edits.
            _linked(ctx, work, "adopted",
                    f"adopted {work.jira_issue_key}, created by an earlier attempt")
            later += _changed_meanwhile(ctx, client, work)
            later += finish(ctx, work, retry_now=True)
            continue
        attempted_at = work.create_attempted_at
        if attempted_at is not None and \
                now - attempted_at < timedelta(seconds=ctx.timings.index_lag_seconds):
            wake = attempted_at + timedelta(seconds=ctx.timings.index_lag_seconds)
            _hold(ctx, work, wake)
            later.append(Due(work.link_id, wake))
            continue
        remaining.append(work)
    return remaining


def _changed_meanwhile(ctx: SyncContext, client: JiraClient, work: Work) -> list[Due]:
    """What people changed in the adopted issue while its link did not know it: their
    deliveries found no link and were dropped as unlinked, and the edit that follows would
    take their changes for drift and undo them. Its changelog is folded as the reconciliation
    sweep folds one, so those changes go to QALITA and the edit leaves them be."""
    assert work.jira_issue_id is not None
    try:
        raw = client.get_issue(work.jira_issue_id, FOLD_FIELDS, expand=("changelog",))
    except RemoteError as exc:
        journal(ctx, work, "create", "retry", f"could not read what changed in "
                f"{work.jira_issue_key} before it was adopted ({exc.reason}); the "
                "reconciliation sweep will")
        return []
    return fold_read_issues(ctx, work.integration.id, [raw], adopted=True)[0]


def severed_issue_ids(ctx: SyncContext, integration_id: int, jira_ids: list[str]) -> set[str]:
    """The Jira issues among ``jira_ids`` whose link was severed: their marker may linger
    (Jira's index lags the label's removal, or the removal failed), and adopting one by it
    would bring back what an operator cut off."""
    if not jira_ids:
        return set()
    with ctx.database.unit_of_work() as session:
        return set(session.scalars(select(IssueLink.jira_issue_id).where(
            IssueLink.integration_id == integration_id, IssueLink.jira_issue_id.in_(jira_ids),
            IssueLink.state.in_((SEVERING, SEVERED)))))


def _hold(ctx: SyncContext, work: Work, until: Any) -> None:
    journal(ctx, work, "create", "waiting_for_index",
            f"an earlier create attempt is not searchable yet; looking again at "
            f"{until.isoformat()}")
    work.done = True
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        if link is not None:
            persist(session, work, link)
            link.next_attempt_at = until
        leases.release(session, [work.link_id], work.owner)


def _create_chunk(ctx: SyncContext, client: JiraClient, mapping: Mapping, project: str,
                  issue_type: str, works: list[Work]) -> list[Due]:
    later: list[Due] = []
    try:
        required = ctx.required_fields(client, works[0].integration.id, project, issue_type)
    except TransientError as exc:
        return [due for work in works for due in park(ctx, work, exc)]
    except PermanentError as exc:
        return [due for work in works for due in fail(ctx, work, exc)]
    missing = [f for f in required if f.field_id not in mapping.field_defaults]
    if missing:
        reason = "; ".join(f"the create screen of {project} {issue_type} requires {f.name} "
                           f"({f.field_id}), which has no default in the mapping "
                           "(field_defaults)" for f in missing)
        return [due for work in works for due in finish(
            ctx, work, state=BLOCKED, reason=reason, decision="blocked")]
    payloads: list[dict[str, Any]] = []
    written: list[dict[str, Any]] = []
    for work in works:
        fields, state = _create_fields(ctx, client, mapping, project, issue_type, work)
        for f in required:
            fields[f.field_id] = mapping.field_defaults[f.field_id]
        payloads.append({"fields": fields})
        written.append(state)
    now = utcnow()
    with ctx.database.unit_of_work() as session:
        # The guard: only links whose lease this flush still holds are created.
        session.execute(update(IssueLink).where(
            IssueLink.id.in_([w.link_id for w in works]), IssueLink.lease_owner == works[0].owner)
            .values(create_attempted_at=now,
                    lease_expires_at=now + timedelta(seconds=ctx.timings.lease_seconds))
            .execution_options(synchronize_session=False))
        held = set(leases.holds(session, [w.link_id for w in works], works[0].owner))
    chosen = [i for i, work in enumerate(works) if work.link_id in held]
    if not chosen:
        return []
    try:
        result = client.bulk_create([payloads[i] for i in chosen])
    except TransientError as exc:
        if exc.maybe_applied:
            # The index lag counts from when Jira may have applied it: now, not the start.
            _stamp_attempt(ctx, [works[i] for i in chosen])
        return [due for i in chosen for due in park(ctx, works[i], exc)]
    except PermanentError as exc:
        return [due for i in chosen for due in fail(ctx, works[i], exc)]
    result = _without_unassignable(client, payloads, chosen, result)
    for position, i in enumerate(chosen):
        work = works[i]
        if position in result.created:
            issue = result.created[position]
            work.jira_issue_id, work.jira_issue_key = str(issue["id"]), issue.get("key")
            work.written = {**written[i], "status": "new"}
            # jira-sync's own values are the first view of Jira: the creation's webhook then
            # tells nothing new, and a person's first edit is told from them.
            work.view = created_view(payloads[i]["fields"], mapping.ignored_label, now)
            # Status too when Jira starts the issue where QALITA's status wants it: then
            # only a change after now is a change of either side (a person's first move is
            # no conflict with the create). Otherwise the move that follows marks it.
            moves = _wanted_status(ctx, work) != work.written["status"]
            mark_synced(work, *work.view, *([] if moves else ["status"]), at=now)
            work.managed_labels = sorted(payloads[i]["fields"]["labels"])
            _linked(ctx, work, "created", f"created {work.jira_issue_key} in {project}")
            later += _after_create(ctx, work, moves)
        else:
            error = PermanentError(f"create in {project}: {result.failed.get(position)}",
                                   status=400)
            later += fail(ctx, work, error)
    return later


def _after_create(ctx: SyncContext, work: Work, moves: bool) -> list[Due]:
    """Release the new link; status, comments and newer versions get a flush of their own
    at once (and until then the link does not count as applied)."""
    with ctx.database.unit_of_work() as session:
        comments = session.scalar(select(CommentLink.id).where(
            CommentLink.link_id == work.link_id).limit(1))
    behind = comments is not None or moves
    return finish(ctx, work, retry_now=behind)


def _stamp_attempt(ctx: SyncContext, works: list[Work]) -> None:
    now = utcnow()
    with ctx.database.unit_of_work() as session:
        session.execute(update(IssueLink).where(
            IssueLink.id.in_([w.link_id for w in works]), IssueLink.lease_owner == works[0].owner)
            .values(create_attempted_at=now).execution_options(synchronize_session=False))


def _without_unassignable(client: JiraClient, payloads: list[dict[str, Any]],
                          chosen: list[int], result: BulkResult) -> BulkResult:
    """Items Jira refused only for their assignee are created again without one: an owner
    Jira will not take must not keep the issue from existing."""
    again = [position for position, reason in result.failed.items()
             if "assignee" in reason and "assignee" in payloads[chosen[position]]["fields"]]
    if not again:
        return result
    retry = []
    for position in again:
        fields = dict(payloads[chosen[position]]["fields"])
        fields.pop("assignee")
        retry.append({"fields": fields})
    second = client.bulk_create(retry)
    for index, position in enumerate(again):
        if index in second.created:
            result.created[position] = second.created[index]
            result.failed.pop(position)
            payloads[chosen[position]]["fields"].pop("assignee")
    return result


def _wanted_status(ctx: SyncContext, work: Work) -> str | None:
    mapping = ctx.mappings(work.integration).for_project(work.project_key or "")
    return work.want(mapping).status_category or work.written.get("status")


def created_view(fields: dict[str, Any], ignored_label: str, at: datetime) -> dict[str, Any]:
    """The link's view of an issue it just created (status: whatever Jira starts it in)."""
    assignee = fields.get("assignee") or {}
    labels = sorted(fields["labels"])
    values = {"summary": normalize(fields["summary"]),
              "description": {"text": normalize(jira_text(fields["description"])),
                              "top": None},
              "labels": labels, "ignored": ignored_label in labels,
              "assignee": assignee.get("accountId") or assignee.get("name")}
    view = {field: {"v": value, "cl": None, "at": at.isoformat(), "dirty": False}
            for field, value in values.items()}
    view["labels"]["base"] = labels
    return view


def _linked(ctx: SyncContext, work: Work, decision: str, message: str) -> None:
    journal(ctx, work, "create", decision, message, jira_issue=work.jira_issue_key)
    with ctx.database.unit_of_work() as session:
        link = session.get(IssueLink, work.link_id)
        if link is None:
            return
        persist(session, work, link)
        link.jira_issue_id, link.jira_issue_key = work.jira_issue_id, work.jira_issue_key
        if link.state not in FINAL_STATES:  # severed while the create was on its way
            link.state, link.state_reason = LINKED, None
        if work.view:
            link.jira_view = work.view


def _create_fields(ctx: SyncContext, client: JiraClient, mapping: Mapping, project: str,
                   issue_type: str, work: Work) -> tuple[dict[str, Any], dict[str, Any]]:
    """The create body of one issue, and the fingerprints of what it writes."""
    want = work.want(mapping)
    description = rich_text(client, want.description)
    fields: dict[str, Any] = {
        "project": {"key": project}, "issuetype": {"name": issue_type},
        "summary": want.summary, "description": description,
        "labels": sorted(set(want.labels) | {work.marker}),
    }
    written: dict[str, Any] = {"summary": fingerprint(want.summary),
                               "description": fingerprint(description), "components": []}
    if want.priority:
        fields["priority"], written["priority"] = {"name": want.priority}, want.priority
    if want.components:
        fields["components"] = [{"name": name} for name in sorted(want.components)]
        written["components"] = sorted(want.components)
    if want.assignee_email:
        try:
            user = resolve_user(ctx, client, work.integration.id, want.assignee_email)
        except (TransientError, PermanentError):
            user = None  # Assignment is best effort; the next flush tries again.
        if user is not None:
            fields["assignee"], written["assignee"] = client.user_ref(user), want.assignee_email
    return fields, written

