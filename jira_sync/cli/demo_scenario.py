"""What ``jira-sync demo`` shows once everything is up: people at work on both sides, the sync
following.

The scenario plays QALITA users through the QALITA simulator's ``/_sim`` API, so each change
travels the real path: simulator -> QALITA event on the broker -> worker -> Jira simulator;
then people in Jira through the Jira simulator's people API: simulator -> signed webhook ->
web -> worker -> QALITA simulator. Progress is read from the links in the database and from
the simulators' inspection APIs: nothing here is canned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
import requests
from sqlalchemy import func, select

from jira_sync.mapping import tenant_label
from jira_sync.store.db import Database
from jira_sync.store.models import CommentLink, InboxEvent, IssueLink, LogEntry
from jira_sync.sync.state import (
    BLOCKED,
    C_POSTED,
    CLOSED,
    FAILED,
    LINKED,
    PENDING,
    TOMBSTONED,
)

SYNC_TIMEOUT_SECONDS = 90
POLL_SECONDS = 0.5
# How long the echoes of jira-sync's writes to QALITA may take to come back as events.
ECHO_WAIT_SECONDS = 10.0
HTTP_TIMEOUT_SECONDS = 10
SUMMARY_WIDTH = 50
UNKNOWN_OWNER = "dana@partner.example.com"  # not a Jira user: the issue stays unassigned

ANA = {"email": "ana@example.com", "name": "Ana"}
BO = {"email": "bo@example.com", "name": "Bo"}
DANA = {"email": UNKNOWN_OWNER, "name": "Dana (contractor)"}


def _issue(number: int, dataset: str, check: tuple[str | None, str | None], domain: str,
           severity: str, owner: dict[str, str], title: str, evidence: dict[str, Any],
           tags: list[str]) -> dict[str, Any]:
    """A QALITA issue; ``check`` is its (rule, metric), both None for one reported by hand."""
    rule, metric = check
    found = f"The {rule or metric} check on {dataset} failed" if rule or metric else \
        f"Reported by {owner['name']} on {dataset}"
    return {
        "id": number, "title": title, "status": "open", "severity": severity,
        "dataset": dataset, "rule": rule, "metric": metric, "domain": domain, "tags": tags,
        "owner": owner, "description": f"{found}: {evidence['summary']}.", "evidence": evidence,
        "links": [{"title": f"Run #{800 + number}",
                   "url": f"https://qalita.example.com/runs/{800 + number}"}],
    }


def scenario_issues(first_id: int) -> list[dict[str, Any]]:
    """Eight issues over several datasets, domains, severities and owners: most raised by a
    rule, one by a metric, one reported by hand (its Jira summary is then its title)."""
    rows = [
        ("orders", ("freshness", None), "billing", "high", ANA, "Orders table is stale",
         {"summary": "last load 26 h ago", "observed": 26, "expected": "<= 24"}, ["finance"]),
        ("customers", ("uniqueness", None), "marketing", "medium", BO,
         "Duplicate customer e-mails",
         {"summary": "412 duplicate e-mails", "observed": 412, "expected": 0}, ["crm"]),
        ("payments", ("completeness", None), "billing", "critical", ANA,
         "Payments without an amount",
         {"summary": "3.2% of rows have a null amount", "observed": 0.032, "expected": 0},
         ["finance", "pii"]),
        ("events", ("volume", None), "ingestion", "low", BO, "Fewer click events than usual",
         {"summary": "18% below the 7-day average", "observed": -0.18, "expected": ">= -0.10"},
         ["tracking"]),
        ("customers", (None, "invalid_country_rate"), "marketing", "info", DANA,
         "Unknown country codes",
         {"summary": "0.4% of rows have a country code outside ISO 3166", "observed": 0.004,
          "expected": 0}, ["crm"]),
        ("payments", ("referential_integrity", None), "billing", "high", BO,
         "Refunds of no payment",
         {"summary": "14 refunds point to no payment", "observed": 14, "expected": 0},
         ["finance"]),
        ("events", ("schema_drift", None), "ingestion", "medium", ANA,
         "New column in events feed",
         {"summary": "column 'utm_term' appeared", "observed": "utm_term", "expected": "none"},
         ["tracking"]),
        ("orders", (None, None), "billing", "low", BO, "Some orders have no shipping country",
         {"summary": "a few web-shop orders show no shipping country"}, ["finance"]),
    ]
    return [_issue(first_id + offset, *row) for offset, row in enumerate(rows)]


class ScenarioError(click.ClickException):
    pass


@dataclass
class Qalita:
    """A QALITA user at work, through the simulator's /_sim API; remembers what it published."""

    base_url: str
    echo: Callable[[str], None] = click.echo
    versions: dict[int, int] = field(default_factory=dict)  # last issue version published
    event_ids: set[str] = field(default_factory=set)
    session: requests.Session = field(default_factory=requests.Session)

    def _send(self, method: str, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            response = self.session.request(method, f"{self.base_url}/_sim{path}", json=body,
                                            timeout=HTTP_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise ScenarioError(f"QALITA simulator unreachable ({what}): {exc}") from None
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if response.status_code >= 400 or not answer.get("published"):
            reason = answer.get("error") or answer.get("detail") or response.reason
            raise ScenarioError(f"QALITA simulator did not publish {what}: "
                                f"{response.status_code} {reason}")
        event = answer["event"]
        issue = event["issue"]
        self.versions[issue["id"]] = max(self.versions.get(issue["id"], 0), issue["version"])
        self.event_ids.add(event["event_id"])
        self.echo(f"  published: {what}")
        return event

    def create(self, issue: dict[str, Any]) -> None:
        check = issue["rule"] or issue["metric"] or "reported by hand"
        self._send("POST", "/issues", issue, f"issue {issue['id']} created ({issue['dataset']} "
                   f"/ {check}, {issue['severity']}, {issue['owner']['email']})")

    def change(self, issue_id: int, changes: dict[str, Any], what: str) -> None:
        self._send("PATCH", f"/issues/{issue_id}", changes, f"issue {issue_id} {what}")

    def comment(self, issue_id: int, body: str, author: dict[str, str]) -> int:
        event = self._send("POST", f"/issues/{issue_id}/comments",
                           {"body": body, "author": author},
                           f"issue {issue_id} comment by {author['email']}")
        return int(event["comment"]["id"])

    def edit_comment(self, issue_id: int, comment_id: int, body: str) -> None:
        self._send("PUT", f"/issues/{issue_id}/comments/{comment_id}", {"body": body},
                   f"issue {issue_id} comment {comment_id} edited")


def raise_issues(qalita: Qalita, issues: list[dict[str, Any]]) -> None:
    """A QALITA rule run finds the problems."""
    for issue in issues:
        qalita.create(issue)


def work_on_issues(qalita: Qalita, issues: list[dict[str, Any]]) -> None:
    """Data owners react: new evidence, a better title, a fix, a mute, comments."""
    ids = [issue["id"] for issue in issues]
    orders, customers, payments, events, countries, refunds, drift, shipping = ids
    qalita.change(orders, {"evidence": {"summary": "last load 31 h ago", "observed": 31,
                                        "expected": "<= 24"}},
                  "updated (new evidence: last load 31 h ago)")
    qalita.change(orders, {"status": "active"}, "set active (Ana is on it)")
    qalita.change(customers, {"evidence": {"summary": "655 duplicate e-mails", "observed": 655,
                                           "expected": 0}},
                  "updated (new evidence: 655 duplicates after the CRM import)")
    comment = qalita.comment(payments, "The payment gateway sent nulls during its outage; "
                             "backfilling from the gateway export.", ANA)
    qalita.edit_comment(payments, comment, "The payment gateway sent nulls during its 02:00 "
                        "outage; backfilled from the gateway export.")
    qalita.change(payments, {"status": "resolved"}, "resolved (backfill done)")
    qalita.change(events, {"status": "muted"}, "muted (known tracking outage)")
    qalita.comment(countries, "Some of these are 'UK' instead of 'GB'; asking the CRM team.",
                   BO)
    qalita.change(refunds, {"severity": "critical"}, "updated (severity raised to critical)")
    qalita.change(drift, {"owner": BO}, "updated (owner now bo@example.com)")
    qalita.change(shipping, {"title": "1.1% of web-shop orders have no shipping country",
                             "evidence": {"summary": "1.1% of web-shop orders have no "
                                                     "shipping country", "observed": 0.011,
                                          "expected": "<= 0.005"}},
                  "updated (new title and evidence: 1.1% of orders)")


# Following the sync in the database.

@dataclass
class Progress:
    """What has been printed about each link, so each change is printed once."""

    tenant: str
    shown: dict[int, tuple[Any, ...]] = field(default_factory=dict)


def _line(link: IssueLink, comments: int) -> str | None:
    key = link.jira_issue_key or "(no Jira issue)"
    if link.state == LINKED:
        posted = f", {comments} comment{'s' if comments > 1 else ''}" if comments else ""
        return f"  {link.qalita_issue_id} → {key} linked (v{link.applied_version}{posted})"
    if link.state in (CLOSED, TOMBSTONED):
        return f"  {link.qalita_issue_id} → {key} {link.state} ({link.state_reason})"
    if link.state in (BLOCKED, FAILED):
        return f"  {link.qalita_issue_id} {link.state}: {link.state_reason}"
    return None  # pending: the starting point, not a change


def _lag(link: IssueLink | None, expected: int, now: datetime) -> str | None:
    """Why the link is not yet in step with ``expected``, or None when it is."""
    if link is None:
        return "no link yet (its event has not reached the worker)"
    if link.state in (BLOCKED, FAILED):
        return f"{link.state}: {link.state_reason}"
    if link.state in (CLOSED, TOMBSTONED):
        return None
    if link.lease_owner is not None and (link.lease_expires_at or now) >= now:
        return "a flush is running"
    if link.next_attempt_at is not None:
        return f"retrying at {link.next_attempt_at.astimezone():%H:%M:%S} " \
               f"(attempt {link.attempts})"
    if link.due_at is not None:
        return f"a flush is due at {link.due_at.astimezone():%H:%M:%S}"
    if link.state == PENDING:
        return "waiting for its Jira issue to be created"
    if link.applied_version < expected:
        return f"Jira has version {link.applied_version} of {expected}"
    return None


def wait_in_step(database: Database, qalita: Qalita, progress: Progress, deadline: float,
                 interrupted: Callable[[], bool],
                 echo: Callable[[str], None] = click.echo) -> bool:
    """Print each link's changes until every issue is in step with what was published;
    on timeout, say which are not and why. Returns whether all got in step."""
    started = time.monotonic()
    expected = dict(qalita.versions)
    while True:
        now = datetime.now(UTC)
        with database.unit_of_work() as session:
            links = {link.qalita_issue_id: link for link in session.scalars(
                select(IssueLink).where(IssueLink.tenant == progress.tenant,
                                        IssueLink.qalita_issue_id.in_(expected)))}
            unprocessed = len(qalita.event_ids) - (session.scalar(
                select(func.count()).select_from(InboxEvent).where(
                    InboxEvent.source == "qalita", InboxEvent.state == "processed",
                    InboxEvent.dedupe_key.in_(qalita.event_ids))) or 0)
            comments = dict(session.execute(
                select(CommentLink.link_id, func.count()).where(
                    CommentLink.link_id.in_([link.id for link in links.values()]),
                    CommentLink.origin == "qalita", CommentLink.state == C_POSTED)
                .group_by(CommentLink.link_id)).tuples().all())
            for link in sorted(links.values(), key=lambda link: link.qalita_issue_id):
                posted = comments.get(link.id, 0)
                seen = (link.state, link.jira_issue_key, link.applied_version, posted)
                if progress.shown.get(link.qalita_issue_id) != seen:
                    progress.shown[link.qalita_issue_id] = seen
                    if (line := _line(link, posted)) is not None:
                        echo(line)
            lagging = {issue_id: reason for issue_id, version in expected.items()
                       if (reason := _lag(links.get(issue_id), version, now))}
            if not lagging and unprocessed <= 0:
                echo(f"  all {len(expected)} issues in step after "
                     f"{time.monotonic() - started:.1f} s")
                return True
            if interrupted():
                return False
            # Blocked and failed links wait for a new change or a replay: no use waiting.
            stuck = unprocessed <= 0 and all(
                links.get(issue_id) is not None and links[issue_id].state in (BLOCKED, FAILED)
                for issue_id in lagging)
            if stuck or time.monotonic() >= deadline:
                echo(f"  after {time.monotonic() - started:.0f} s, not in step:")
                for issue_id, reason in sorted(lagging.items()):
                    echo(f"    {issue_id}: {reason}{_last_problem(session, links.get(issue_id))}")
                if unprocessed > 0:
                    echo(f"    {unprocessed} published QALITA event(s) not processed by the "
                         "worker yet")
                echo("  the demo keeps running: see var/log/worker.log")
                return False
        time.sleep(POLL_SECONDS)


def _last_problem(session: Any, link: IssueLink | None) -> str:
    if link is None or link.state_reason:
        return ""
    entry = session.scalars(select(LogEntry).where(
        LogEntry.link_id == link.id, LogEntry.level != "info")
        .order_by(LogEntry.id.desc()).limit(1)).first()
    return f" (last problem: {entry.message})" if entry is not None else ""


def first_issue_id(database: Database, tenant: str) -> int:
    """101, or the next hundred above the issues an earlier run left in this database (the
    simulators start empty each time, so those links lead nowhere)."""
    with database.unit_of_work() as session:
        highest = session.scalar(select(func.max(IssueLink.qalita_issue_id)).where(
            IssueLink.tenant == tenant)) or 0
    return (highest // 100 + 1) * 100 + 1


# The result, as the Jira simulator holds it.

def jira_table(jira_url: str, tenant: str) -> list[str]:
    """The Jira issues, one line each, read from the simulator's inspection API."""
    response = requests.get(f"{jira_url}/_sim/issues", timeout=HTTP_TIMEOUT_SECONDS)
    response.raise_for_status()
    issues = sorted(response.json(), key=lambda issue: int(issue["id"]))
    marker = f"qalita-id-{tenant_label(tenant)}-"
    header = ("QALITA", "key", "status", "assignee", "priority", "comments", "summary",
              "labels")
    rows = []
    for issue in issues:
        if issue.get("deleted"):
            continue
        labels = issue.get("labels") or []
        qalita_id = next((label[len(marker):] for label in labels if label.startswith(marker)),
                         "-")
        shown = [label for label in labels if label != "qalita" and not label.startswith(marker)]
        summary = issue.get("summary") or ""
        if len(summary) > SUMMARY_WIDTH:
            summary = summary[:SUMMARY_WIDTH - 1] + "…"
        rows.append((qalita_id, issue["key"], issue["status"]["name"],
                     issue.get("assignee") or "-", issue.get("priority") or "-",
                     str(len(issue.get("comments") or [])), summary, " ".join(shown)))
    if not rows:
        return ["  (the Jira simulator holds no issues)"]
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in [header, *rows]]
    lines.append(f"  every issue also carries the labels qalita and {marker}<QALITA id>")
    return lines


# People working in Jira, and QALITA following.

@dataclass
class Expected:
    """A change made in Jira, and what it should make of the QALITA issue."""

    issue_id: int
    what: str
    arrived: Callable[[dict[str, Any]], bool]
    shown: Callable[[dict[str, Any]], str]


@dataclass
class JiraPeople:
    """People at work in Jira, through the Jira simulator's /_sim people API: each action
    fires the webhooks Jira would, with that person as the actor."""

    base_url: str
    echo: Callable[[str], None] = click.echo
    session: requests.Session = field(default_factory=requests.Session)

    def act(self, key: str, path: str, body: dict[str, Any], what: str) -> None:
        try:
            response = self.session.post(f"{self.base_url}/_sim/issues/{key}/{path}",
                                         json=body, timeout=HTTP_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise ScenarioError(f"Jira simulator unreachable ({what}): {exc}") from None
        if response.status_code >= 400:
            raise ScenarioError(f"Jira simulator refused {what}: {response.status_code} "
                                f"{response.text[:200]}")
        self.echo(f"  in Jira: {what}")


def work_in_jira(jira_url: str, database: Database, tenant: str,
                 issues: list[dict[str, Any]]) -> list[Expected]:
    """Triage happens in Jira: a fix marked Done, a reassignment, a comment, the ignored
    label. Returns what each should make of its QALITA issue."""
    ids = [issue["id"] for issue in issues]
    orders, _customers, _payments, _events, countries, refunds, drift, _shipping = ids
    with database.unit_of_work() as session:
        keys = dict(session.execute(select(IssueLink.qalita_issue_id, IssueLink.jira_issue_key)
                                    .where(IssueLink.tenant == tenant,
                                           IssueLink.qalita_issue_id.in_(ids))).tuples().all())
    people = JiraPeople(jira_url)
    note = "Fixed the UK codes in the CRM export; GB from now on."
    people.act(keys[orders], "transition", {"as": ANA["email"], "status": "Done"},
               f"Ana moves {keys[orders]} to Done")
    people.act(keys[refunds], "assign", {"as": BO["email"], "assignee": ANA["email"]},
               f"Bo hands {keys[refunds]} over to Ana")
    people.act(keys[countries], "comments", {"as": BO["email"], "body": note},
               f"Bo comments on {keys[countries]}")
    people.act(keys[drift], "edit", {"as": ANA["email"], "add_labels": ["ignored"]},
               f"Ana adds the ignored label to {keys[drift]}")
    return [
        Expected(orders, f"{keys[orders]} Done", lambda i: i["status"] == "resolved",
                 lambda i: f"status {i['status']}"),
        Expected(refunds, f"{keys[refunds]} reassigned",
                 lambda i: (i.get("owner") or {}).get("email") == ANA["email"],
                 lambda i: f"owner {(i.get('owner') or {}).get('email')}"),
        Expected(countries, f"{keys[countries]} comment",
                 lambda i: any(c["body"] == note for c in i.get("comments") or []),
                 lambda i: f"comment \"{note[:30]}…\""),
        Expected(drift, f"{keys[drift]} ignored label", lambda i: i["status"] == "ignored",
                 lambda i: f"status {i['status']}"),
    ]


def wait_in_qalita(qalita_url: str, expected: list[Expected], deadline: float,
                   interrupted: Callable[[], bool], echo: Callable[[str], None] = click.echo
                   ) -> bool:
    """Print each Jira change as it arrives in QALITA (read from the QALITA simulator)."""
    started, waiting = time.monotonic(), list(expected)
    while waiting:
        for change in list(waiting):
            try:
                issue = requests.get(f"{qalita_url}/_sim/issues/{change.issue_id}",
                                     timeout=HTTP_TIMEOUT_SECONDS).json()
            except (requests.RequestException, ValueError):
                continue
            if change.arrived(issue):
                echo(f"  {change.what} → QALITA {change.issue_id}: {change.shown(issue)} "
                     f"(after {time.monotonic() - started:.1f} s)")
                waiting.remove(change)
        if interrupted():
            return False
        if time.monotonic() >= deadline:
            for change in waiting:
                echo(f"  {change.what} has not reached QALITA {change.issue_id} yet")
            return False
        time.sleep(POLL_SECONDS)
    return True


def echoes(database: Database, since: datetime) -> list[str]:
    """What came back from jira-sync's own writes and went no further, as the log says."""
    with database.unit_of_work() as session:
        return list(session.scalars(select(LogEntry.message).where(
            LogEntry.decision == "echo", LogEntry.created_at >= since,
            LogEntry.action.like("issue.%")).order_by(LogEntry.id)))
