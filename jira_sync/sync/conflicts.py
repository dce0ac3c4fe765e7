"""When both sides changed a field since they were last in step, who wins.

Each field of a link remembers when the two sides last agreed on it (``written["synced"]``);
QALITA's change time is its event's ``occurred_at`` (``desired["changed"]``) and Jira's the
time its change was recorded (the link's view). Only a field both sides changed since that
moment is a conflict; the mapping's ``conflicts`` policy decides it, and whichever flush
meets it first (outbound or inbound) decides it the same way, from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping as Dict
from datetime import datetime
from typing import Any

from jira_sync.mapping import Mapping
from jira_sync.store.models import IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync.outcomes import Work

# Fields of the link's view of Jira -> the QALITA field they stand for.
QALITA_FIELD = {"status": "status", "ignored": "status", "assignee": "owner",
                "summary": "title", "description": "description", "labels": "tags"}
# -> the key of the mapping's ``conflicts`` policies.
POLICY_KEY = {"status": "status", "ignored": "status", "assignee": "assignee",
              "summary": "title", "description": "description"}
# -> the mapping's ``inbound`` switch: a field that does not flow back has nothing to decide.
INBOUND_KEY = {"status": "status", "ignored": "ignored", "assignee": "assignee",
               "summary": "title", "description": "description"}
JIRA, QALITA = "jira", "qalita"


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def synced_at(work: Work, field: str) -> datetime | None:
    return _time((work.written.get("synced") or {}).get(field))


def mark_synced(work: Work, *fields: str, at: datetime | None = None) -> None:
    """The two sides agree on ``fields`` as of now (a write landed, or one side won)."""
    moment = (at or utcnow()).isoformat()
    work.written = {**work.written,
                    "synced": {**(work.written.get("synced") or {}),
                               **dict.fromkeys(fields, moment)}}


def qalita_changed_at(work: Work, field: str) -> datetime | None:
    changed = (work.desired or {}).get("changed") or {}
    return _time(changed.get(QALITA_FIELD[field]))


def jira_changed_at(view: Dict[str, Any], field: str) -> datetime | None:
    """When a person changed the field in Jira, if that change is not in QALITA yet."""
    entry = view.get(field) or {}
    return _time(entry.get("at")) if entry.get("dirty") else None


def winner(mapping: Mapping, work: Work, field: str) -> str | None:
    """``jira`` or ``qalita`` when both sides changed ``field`` since they last agreed on it;
    None when at most one did (nothing to decide)."""
    if not mapping.inbound.get(INBOUND_KEY.get(field, ""), False):
        return None
    jira = jira_changed_at(work.view, field)
    qalita = qalita_changed_at(work, field)
    synced = synced_at(work, field)
    if jira is None or qalita is None or (synced is not None and qalita <= synced):
        return None
    if synced is not None and jira <= synced:
        return None
    policy = mapping.conflicts.get(POLICY_KEY.get(field, ""), "latest")
    return JIRA if policy == "latest" and jira > qalita else QALITA


def settle(work: Work, seen: Dict[str, Any]) -> None:
    """QALITA has been told (or need not be) of the Jira changes a flush read: their marks
    are cleared with the flush's next save, unless a newer delivery changed the field since
    (the flush read ``seen``)."""
    if seen:
        work.updates.append(lambda link: _clear_marks(link, seen))


def _clear_marks(link: IssueLink, seen: Dict[str, Any]) -> None:
    view = {field: dict(entry) for field, entry in (link.jira_view or {}).items()}
    for field, entry in seen.items():
        current = view.get(field)
        if current is None:
            continue
        if field == "labels":
            # QALITA was told the difference this flush read: that is agreed now.
            seen_v, seen_base = set(entry.get("v") or []), set(entry.get("base") or [])
            base = set(current.get("base") or []) | (seen_v - seen_base)
            current["base"] = sorted(base - (seen_base - seen_v))
        elif current.get("cl") == entry.get("cl") and current.get("at") == entry.get("at"):
            current["dirty"] = False
    link.jira_view = view
