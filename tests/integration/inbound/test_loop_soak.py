"""Loop soak: random changes on both sides at once, through real processes, must never bounce.

A seeded driver makes 100 real changes, each on a random side and issue: statuses, assignees
(two-way on), labels and tags (``tag_labels``: both ways), comments. The QALITA simulator
emits an event for every change, jira-sync's own writes included, exactly as QALITA does.
Afterwards: every write jira-sync made changed something on its target (none restated the
current value, unless a person set that value between jira-sync's read and its write),
there were no more writes than real changes, and both sides agree within 30 seconds of the
last change.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime
from typing import Any

import pytest
import requests

from jira_sync.mapping import Mapping
from jira_sync.mapping.inbound import is_managed_label
from jira_sync.render import adf_to_text
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from tests.support import brokers
from tests.support.stack import Stack, eventually
from worker import queues

pytestmark = pytest.mark.integration
CHANGES = 100
ISSUES = 4
PEOPLE = ("ana@example.com", "bo@example.com")
TAGS = ("t1", "t2", "t3")
CATEGORY = {"open": "new", "active": "indeterminate", "resolved": "done"}
MAPPING = "inbound:\n  assignee: true\ntag_labels: true\n"


@pytest.fixture
def jira():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0, seed=11)) as sim:
        yield sim


class Driver:
    """People on both sides, each change a real one (never setting what is already there)."""

    def __init__(self, stack: Stack, issues: list[int], seed: int) -> None:
        self.stack, self.issues, self.rng = stack, issues, random.Random(seed)
        self.count = 0
        # When each QALITA-side change was sent and answered, per issue (epoch seconds).
        self.qalita_changes: dict[int, list[tuple[float, float]]] = {}

    def change(self) -> None:
        issue = self.rng.choice(self.issues)
        side = self.rng.choice(("qalita", "jira"))
        kind = self.rng.choice(("status", "assignee", "labels", "comment"))
        getattr(self, f"{side}_{kind}")(issue)
        self.count += 1

    # QALITA users, through the QALITA simulator (each change publishes its event).

    def _patch(self, issue: int, **changes: Any) -> None:
        sent = time.time()
        requests.patch(f"{self.stack.qalita.base_url}/_sim/issues/{issue}", json=changes,
                       timeout=10).raise_for_status()
        self.qalita_changes.setdefault(issue, []).append((sent, time.time()))

    def raced(self, write: dict[str, Any], calls: list[dict[str, Any]]) -> bool:
        """Whether a person changed the issue jira-sync wrote to in QALITA between its read
        of the issue and the write: the write may then restate what they had just set, which
        no read can prevent while QALITA's API takes no precondition."""
        if write.get("origin") != "jira-sync" or write["method"] != "PUT":
            return False
        written = _epoch(write["time"])
        reads = [_epoch(c["time"]) for c in calls if c["method"] == "GET"
                 and c["path"] == write["path"] and _epoch(c["time"]) <= written]
        issue = int(write["path"].rsplit("/", 1)[1])
        return bool(reads) and any(
            sent <= written + 0.001 and answered >= max(reads) - 0.001
            for sent, answered in self.qalita_changes.get(issue, []))

    def qalita_status(self, issue: int) -> None:
        current = self.stack.qalita_issue(issue)["status"]
        choices = [s for s in ("open", "active", "resolved", "ignored") if s != current]
        self._patch(issue, status=self.rng.choice(choices))

    def qalita_assignee(self, issue: int) -> None:
        owner = (self.stack.qalita_issue(issue).get("owner") or {}).get("email")
        email = next(p for p in PEOPLE if p != owner)
        self._patch(issue, owner={"email": email, "name": email.split("@")[0].title()})

    def qalita_labels(self, issue: int) -> None:
        tags = list(self.stack.qalita_issue(issue)["tags"])
        tag = self.rng.choice(TAGS)
        self._patch(issue, tags=[t for t in tags if t != tag] if tag in tags else [*tags, tag])

    def qalita_comment(self, issue: int) -> None:
        requests.post(f"{self.stack.qalita.base_url}/_sim/issues/{issue}/comments",
                      json={"body": f"qalita note {self.count}"}, timeout=10).raise_for_status()

    # People in Jira, through the Jira simulator's people API (each fires its webhook).

    def _act(self, issue: int, path: str, body: dict[str, Any]) -> None:
        key = self.stack.jira_issue_of(issue)["key"]
        person = self.rng.choice(PEOPLE)
        requests.post(f"{self.stack.jira.base_url}/_sim/issues/{key}/{path}",
                      json={"as": person, **body}, timeout=10).raise_for_status()

    def jira_status(self, issue: int) -> None:
        key = self.stack.jira_issue_of(issue)["id"]
        available = self.stack.as_person("GET", f"/issue/{key}/transitions").json()
        self._act(issue, "transition", {"transition": self.rng.choice(
            available["transitions"])["name"]})

    def jira_assignee(self, issue: int) -> None:
        current = self.stack.jira_issue_of(issue)["assignee"]
        self._act(issue, "assign", {"assignee": next(p for p in PEOPLE if p != current)})

    def jira_labels(self, issue: int) -> None:
        labels = self.stack.jira_issue_of(issue)["labels"]
        tag = self.rng.choice(TAGS)
        self._act(issue, "edit", {"remove_labels": [tag]} if tag in labels
                  else {"add_labels": [tag]})

    def jira_comment(self, issue: int) -> None:
        self._act(issue, "comments", {"body": f"jira note {self.count}"})


def agree(stack: Stack, issue: int) -> str | None:
    """Why the two sides of ``issue`` differ, or None when they agree."""
    qalita, jira = stack.qalita_issue(issue), stack.jira_issue_of(issue)
    ignored = "ignored" in jira["labels"]
    if (qalita["status"] in ("ignored", "muted")) != ignored:
        return f"status {qalita['status']} vs labels {jira['labels']}"
    if not ignored and CATEGORY[qalita["status"]] != jira["status"]["category"]:
        return f"status {qalita['status']} vs {jira['status']['name']}"
    if (qalita.get("owner") or {}).get("email") != jira["assignee"]:
        return f"owner {qalita.get('owner')} vs assignee {jira['assignee']}"
    people_labels = {label for label in jira["labels"] if not is_managed_label(Mapping(), label)}
    if set(qalita["tags"]) != people_labels:
        return f"tags {qalita['tags']} vs labels {jira['labels']}"
    jira_texts = [adf_to_text(c["body"]) for c in jira["comments"]]
    if len(qalita["comments"]) != len(jira_texts) or not all(
            any(c["body"] in text for text in jira_texts) for c in qalita["comments"]):
        return f"comments {[c['body'] for c in qalita['comments']]} vs {jira_texts}"
    return None


def _epoch(stamp: str) -> float:
    """A simulator's call time (ISO 8601, UTC, milliseconds) in epoch seconds."""
    return datetime.fromisoformat(stamp).timestamp()


def jira_writes(stack: Stack, after: int) -> list[dict[str, Any]]:
    return [c for c in stack.jira_calls()[after:] if c.get("actor") == "svc"
            and c.get("changed") is not None]


def qalita_writes(stack: Stack, after: int) -> list[dict[str, Any]]:
    return [c for c in stack.qalita_calls()[after:] if c["origin"] == "jira-sync"]


def quiet(stack: Stack, database: Any) -> bool:
    """Jira has delivered every webhook, the broker holds nothing for the sync (a countdown
    included), every event and delivery is processed, and no link has work to come."""
    from sqlalchemy import func, or_, select

    from jira_sync.store.models import InboxEvent, IssueLink
    webhooks = requests.get(f"{stack.jira.base_url}/_sim/webhooks", timeout=10).json()
    if not webhooks["idle"] or not brokers.idle(
            stack.env["JIRA_SYNC_BROKER_URL"],
            [queues.QALITA, queues.JIRA_INBOUND, queues.OUTBOUND]):
        return False
    with database.unit_of_work() as session:
        pending = session.scalar(select(func.count()).select_from(InboxEvent).where(
            InboxEvent.state != "processed"))
        busy = session.scalar(select(func.count()).select_from(IssueLink).where(or_(
            IssueLink.due_at.is_not(None), IssueLink.inbound_due_at.is_not(None),
            IssueLink.next_attempt_at.is_not(None), IssueLink.lease_owner.is_not(None))))
    return pending == 0 and busy == 0


def history(database: Any, issues: dict[int, Any]) -> str:
    """The integration log of the links that disagree, to tell why."""
    from sqlalchemy import select

    from jira_sync.store.models import IssueLink, LogEntry
    with database.unit_of_work() as session:
        rows = session.execute(select(LogEntry.created_at, IssueLink.qalita_issue_id,
                                      LogEntry.action, LogEntry.decision, LogEntry.message)
                               .join(IssueLink, LogEntry.link_id == IssueLink.id)
                               .where(IssueLink.qalita_issue_id.in_(list(issues)))
                               .order_by(LogEntry.id)).all()
    return "\n".join(f"{at:%H:%M:%S.%f} #{qid} {action} {decision}: {message}"
                     for at, qid, action, decision, message in rows[-150:])


def test_random_changes_on_both_sides_never_bounce(service_env, jira, qalita, tmp_path,
                                                  database):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    stack = Stack(service_env, jira, qalita, tmp_path, JIRA_SYNC_MAPPING_FILE=str(mapping))
    try:
        stack.up(workers=1)
        issues = [stack.qalita_new(title=f"issue {n}", owner={"email": PEOPLE[0],
                                                              "name": "Ana"})["id"]
                  for n in range(ISSUES)]
        eventually(lambda: all(stack.jira_issue_of(i) and not agree(stack, i)
                               for i in issues), timeout=60)
        jira_before, qalita_before = len(stack.jira_calls()), len(stack.qalita_calls())
        driver = Driver(stack, issues, seed=int(os.environ.get("SOAK_SEED", "20261207")))
        while driver.count < CHANGES:
            driver.change()
            time.sleep(driver.rng.uniform(0.02, 0.25))
        try:
            eventually(lambda: all(agree(stack, i) is None for i in issues), timeout=30)
        except AssertionError:
            differ = {i: agree(stack, i) for i in issues if agree(stack, i)}
            raise AssertionError(f"{differ}\n{history(database, differ)}") from None
        # Nothing left in flight: anything that bounced would have written by now.
        eventually(lambda: quiet(stack, database), timeout=30)
        to_jira, to_qalita = jira_writes(stack, jira_before), qalita_writes(stack,
                                                                            qalita_before)
        # A write Jira refused (a transition no longer available after a person moved the
        # issue first, answered 400 and re-planned) changed nothing, but restated nothing.
        calls = stack.qalita_calls()
        restating = [c for c in to_jira + to_qalita if c["status"] < 300 and not c["changed"]
                     and not driver.raced(c, calls)]
        assert restating == [], [(c["method"], c["path"], c.get("json") or c.get("body"))
                                 for c in restating]
        # A walk through the workflow is one write of one status, however many hops it takes.
        walks = [c for n, c in enumerate(to_jira) if not (
            c["path"].endswith("/transitions") and n and to_jira[n - 1]["path"] == c["path"])]
        assert len(walks) + len(to_qalita) <= CHANGES, (len(walks), len(to_qalita))
        assert all(agree(stack, i) is None for i in issues)
    finally:
        stack.close()
