"""Tests of the mapping; ``snapshot`` builds the CONTRACT §4 example issue with changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jira_sync.events.qalita_event import IssueSnapshot, Person, RunLink

ISSUE_URL = "https://qalita.example.com/issues/4211"
RUN_URL = "https://qalita.example.com/runs/812"


def snapshot(**changes: Any) -> IssueSnapshot:
    example = IssueSnapshot(
        id=4211, version=1, title="Orders table is stale", description="Markdown text",
        status="open", severity="high", dataset="orders", rule="freshness",
        metric="hours_since_update", domain="billing", tags=("finance",),
        owner=Person(email="ana@example.com", name="Ana"),
        evidence={"summary": "last load 26 h ago", "observed": 26, "expected": "<= 24"},
        links=(RunLink(title="Run #812", url=RUN_URL),), url=ISSUE_URL,
        updated_at="2026-11-28T10:15:30Z",
    )
    return replace(example, **changes)
