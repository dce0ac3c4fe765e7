"""What both sides must end as after a fault run, and the checks that hold the service to it.

QALITA users change only fields the outbound sync maps (``dataset`` -> summary, ``severity``
-> priority) and people in Jira change only the status, so the final state of every issue is
known without asking the service: the last value each side's users gave each field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from jira_sync.store.db import Database
from jira_sync.store.models import DeadLetter, IssueLink

PRIORITIES = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low",
              "info": "Lowest"}
# The DATA project's workflow is a cycle; each status has one way on.
NEXT = {"To Do": ("Start Progress", "In Progress"), "In Progress": ("Done", "Done"),
        "Done": ("Reopen", "To Do")}
QALITA_STATUS = {"To Do": "open", "In Progress": "active", "Done": "resolved"}


@dataclass
class Expected:
    dataset: str = "orders"
    severity: str = "high"
    jira_status: str = "To Do"


@dataclass
class Model:
    issues: dict[int, Expected] = field(default_factory=dict)
    invalid_event_ids: set[str] = field(default_factory=set)

    def differences(self, jira_issues: list[dict[str, Any]],
                    qalita_issues: dict[int, dict[str, Any]]) -> list[str]:
        """Every way the two sides differ from the model (empty when both hold it)."""
        found: list[str] = []
        by_marker: dict[int, list[dict[str, Any]]] = {}
        for issue in jira_issues:
            for label in issue["labels"]:
                if label.startswith("qalita-id-default-"):
                    by_marker.setdefault(int(label.rsplit("-", 1)[1]), []).append(issue)
        if unknown := set(by_marker) - set(self.issues):
            found.append(f"Jira issues for unknown QALITA issues {sorted(unknown)}")
        for qalita_id, want in sorted(self.issues.items()):
            mine = by_marker.get(qalita_id, [])
            if len(mine) != 1:
                found.append(f"QALITA {qalita_id}: {len(mine)} Jira issues")
                continue
            jira = mine[0]
            summary = f"[QALITA] {want.dataset}: freshness"
            priority = jira["priority"]
            status = jira["status"]["name"]
            qalita_status = qalita_issues[qalita_id]["status"]
            if (jira["summary"], priority, status, qalita_status) != (
                    summary, PRIORITIES[want.severity], want.jira_status,
                    QALITA_STATUS[want.jira_status]):
                found.append(f"QALITA {qalita_id} ({jira['key']}): Jira "
                             f"{(jira['summary'], priority, status)}, QALITA {qalita_status}; "
                             f"want {(summary, PRIORITIES[want.severity], want.jira_status)}, "
                             f"{QALITA_STATUS[want.jira_status]}")
        return found

    def dead_letter_problems(self, database: Database) -> list[str]:
        """The dead letters must be exactly the invalid inputs, each once."""
        with database.unit_of_work() as session:
            letters = list(session.scalars(select(DeadLetter)))
        matched: list[str] = []
        problems = []
        for letter in letters:
            text = json.dumps(letter.payload, default=str)
            ids = [event_id for event_id in self.invalid_event_ids if event_id in text]
            if len(ids) != 1:
                problems.append(f"dead letter {letter.id} ({letter.kind}): {letter.reason}")
            matched += ids
        missing = self.invalid_event_ids - set(matched)
        if missing:
            problems.append(f"invalid inputs without a dead letter: {sorted(missing)}")
        if len(matched) != len(set(matched)):
            problems.append(f"invalid inputs dead-lettered more than once: {sorted(matched)}")
        return problems


def links(database: Database) -> dict[int, tuple[Any, ...]]:
    """Each link's state by QALITA issue, for a failure's message."""
    with database.unit_of_work() as session:
        return {r.qalita_issue_id: (r.state, r.state_reason, r.jira_issue_key,
                                    r.applied_version, r.desired_version)
                for r in session.scalars(select(IssueLink))}


def unsettled_links(database: Database) -> list[tuple[Any, ...]]:
    """Links not at rest: due, leased, or in any state but linked."""
    with database.unit_of_work() as session:
        return [(r.qalita_issue_id, r.state, r.state_reason, r.due_at, r.lease_owner)
                for r in session.scalars(select(IssueLink))
                if r.state != "linked" or r.due_at is not None or r.lease_owner is not None]


def needless_writes(calls: list[dict[str, Any]], *, is_service: Any, lost: Any) -> list[dict]:
    """The service's writes that changed nothing and repeat no identical earlier write whose
    answer was lost (``lost(call)`` says whether the service may not have heard it)."""
    needless, earlier_lost = [], set()
    for call in calls:
        if call["method"] in ("GET", "HEAD", "OPTIONS") or not is_service(call):
            continue
        identity = (call["method"], call["path"], json.dumps(call.get("body", call.get("json")),
                                                             sort_keys=True))
        if call["changed"] is False and call["status"] is not None and call["status"] < 300 \
                and identity not in earlier_lost:
            needless.append(call)
        if lost(call):
            earlier_lost.add(identity)
    return needless
