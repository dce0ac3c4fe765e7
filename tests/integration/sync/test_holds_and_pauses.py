"""Disable holds an integration's work and enable releases it; a refused token pauses the
integration and the probe resumes it. Real web, worker and beat processes, Postgres, Redis
and both simulators over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from jira_sync.admin import holds
from jira_sync.broker import send_flushes
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from jira_sync.remote import AuthError, PermanentError
from jira_sync.store.models import DeadLetter, InboxEvent, Integration, IssueLink, LogEntry
from jira_sync.sync import pauses
from jira_sync.sync.context import SyncContext
from tests.support.stack import Stack, eventually
from tests.support.sync import bootstrap
from tests.support.two_way import TIMINGS

pytestmark = pytest.mark.integration
# Long enough for a debounce window, a flush and a few sweeps and probes (FAST timings).
QUIET_SECONDS = 3.0


@pytest.fixture
def stack(service_env, jira, qalita, tmp_path):
    made = Stack(service_env, jira, qalita, tmp_path)
    made.up()
    yield made
    made.close()



def set_enabled(database, producer, enabled: bool) -> None:
    with database.unit_of_work() as session:
        integration = session.scalars(select(Integration)).one()
        dues = holds.set_enabled(session, integration, enabled)
    send_flushes(producer, dues)


def integration(database) -> Integration:
    with database.unit_of_work() as session:
        return session.scalars(select(Integration)).one()


def count(database, model: Any, *where: Any) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def pause_rows(database, decision: str) -> list[LogEntry]:
    with database.unit_of_work() as session:
        return list(session.scalars(select(LogEntry).where(
            LogEntry.action == "pause", LogEntry.decision == decision)))


def jira_writes(s: Stack) -> list[dict]:
    return [c for c in s.jira_calls() if c["method"] != "GET" and c.get("actor") == "svc"
            and "/search" not in c["path"]]


def qalita_writes(s: Stack) -> list[dict]:
    return [c for c in s.qalita_calls() if c["origin"] == "jira-sync" and c["method"] != "GET"]


def qalita_change(s: Stack, issue_id: int, **changes: Any) -> None:
    response = requests.patch(f"{s.qalita.base_url}/_sim/issues/{issue_id}", json=changes,
                              timeout=10)
    assert response.status_code == 200, response.text


def linked(s: Stack) -> tuple[dict, str]:
    """A QALITA issue and its Jira issue's id, once the sync created it."""
    issue = s.qalita_new()
    return issue, eventually(lambda: (s.jira_issue_of(issue["id"]) or {}).get("id"))


def settled(database, count: int) -> bool:
    """``count`` links, each linked with nothing due and no flush running."""
    with database.unit_of_work() as session:
        links = session.scalars(select(IssueLink)).all()
    return len(links) == count and all(
        link.state == "linked" and link.due_at is None and link.inbound_due_at is None
        and link.lease_owner is None for link in links)


def summary_of(s: Stack, qalita_id: int) -> str | None:
    return (s.jira_issue_of(qalita_id) or {}).get("summary")


def switch(jira: Any, **switches: Any) -> None:
    requests.post(f"{jira.base_url}/_sim/switches", json=switches,
                  timeout=10).raise_for_status()


def test_disable_holds_events_and_deliveries_and_enable_releases_them_once(
        stack, database, producer):
    s = stack
    first, jira_id = linked(s)
    eventually(lambda: settled(database, 1))  # the create's last writes landed
    set_enabled(database, producer, False)
    writes_before = len(jira_writes(s))
    second = s.qalita_new(rule="volume")
    qalita_change(s, first["id"], rule="completeness")
    s.transition(jira_id, "Start Progress")
    eventually(lambda: requests.get(f"{s.jira.base_url}/_sim/webhooks", params={
        "wait": 1}, timeout=30).json()["idle"])
    time.sleep(QUIET_SECONDS)
    # Stored and accepted, nothing written anywhere, nothing dead-lettered.
    deliveries = requests.get(f"{s.jira.base_url}/_sim/webhooks", timeout=10).json()[
        "deliveries"]
    assert any(d["issue_event_type_name"] == "issue_generic" for d in deliveries)  # the move
    assert all(200 <= d["status"] < 300 for d in deliveries)
    with database.unit_of_work() as session:
        stored = set(session.scalars(select(InboxEvent.dedupe_key).where(
            InboxEvent.source == "jira")))
    assert stored == {f"{integration(database).id}:{d['id']}" for d in deliveries}
    assert count(database, InboxEvent, InboxEvent.source == "qalita",
                 InboxEvent.state == "processed") >= 3
    assert len(jira_writes(s)) == writes_before and qalita_writes(s) == []
    assert s.jira_issue_of(second["id"]) is None
    assert summary_of(s, first["id"]) == "[QALITA] orders: freshness"
    assert count(database, DeadLetter) == 0
    with database.unit_of_work() as session:
        held = session.scalars(select(IssueLink).order_by(IssueLink.qalita_issue_id)).all()
        assert [link.due_at is not None for link in held] == [True, True]
        assert held[0].inbound_due_at is not None
        assert [link.attempts for link in held] == [0, 0]

    set_enabled(database, producer, True)
    eventually(lambda: s.jira_issue_of(second["id"]))
    eventually(lambda: summary_of(s, first["id"]) == "[QALITA] orders: completeness")
    eventually(lambda: s.qalita_issue(first["id"])["status"] == "active")
    time.sleep(QUIET_SECONDS)
    markers = [label for issue in s.jira_issues() for label in issue["labels"]
               if label.startswith("qalita-id-")]
    assert sorted(markers) == sorted(f"qalita-id-default-{i['id']}" for i in (first, second))
    assert [c["method"] for c in qalita_writes(s)] == ["PUT"]
    assert count(database, DeadLetter) == 0
    assert [row.decision for row in pause_rows(database, "paused")] == []
    with database.unit_of_work() as session:
        admin = session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin").order_by(LogEntry.id)).all()
    assert admin == ["disabled", "enabled"]


def test_a_revoked_jira_token_pauses_both_directions_until_the_probe_succeeds(
        stack, database):
    s = stack
    first, jira_id = linked(s)
    switch(s.jira, revoke_token=True)
    second = s.qalita_new(rule="volume")
    qalita_change(s, first["id"], rule="completeness")
    eventually(lambda: integration(database).jira_paused_at is not None)
    s.transition(jira_id, "Start Progress")  # a person's change: QALITA waits for it too
    time.sleep(QUIET_SECONDS)  # probes keep failing meanwhile
    paused = integration(database)
    assert paused.jira_paused_at is not None and paused.qalita_paused_at is None
    assert "401" in paused.jira_paused_reason or "uthent" in paused.jira_paused_reason
    [row] = pause_rows(database, "paused")
    assert row.level == "error" and row.integration_id == paused.id
    assert count(database, DeadLetter) == 0
    assert s.jira_issue_of(second["id"]) is None and qalita_writes(s) == []
    with database.unit_of_work() as session:
        links = session.scalars(select(IssueLink)).all()
        assert all(link.attempts == 0 and link.state != "failed" for link in links)

    switch(s.jira, revoke_token=False)
    eventually(lambda: integration(database).jira_paused_at is None)
    eventually(lambda: s.jira_issue_of(second["id"]))
    eventually(lambda: summary_of(s, first["id"]) == "[QALITA] orders: completeness")
    eventually(lambda: s.qalita_issue(first["id"])["status"] == "active")
    assert [r.decision for r in pause_rows(database, "resumed")] == ["resumed"]
    assert len(pause_rows(database, "paused")) == 1
    assert count(database, DeadLetter) == 0


def test_a_refused_qalita_token_pauses_only_the_inbound_direction(stack, database):
    s = stack
    first, jira_id = linked(s)
    faults = f"{s.qalita.base_url}/_sim/faults"
    requests.post(faults, json={"status": 401, "count": 1_000_000},
                  timeout=10).raise_for_status()
    try:
        s.transition(jira_id, "Start Progress")
        eventually(lambda: integration(database).qalita_paused_at is not None)
        # Outbound goes on: QALITA's events still reach Jira.
        second = s.qalita_new(rule="volume")
        qalita_change(s, first["id"], rule="completeness")
        eventually(lambda: s.jira_issue_of(second["id"]))
        eventually(lambda: summary_of(s, first["id"]) == "[QALITA] orders: completeness")
        paused = integration(database)
        assert paused.jira_paused_at is None and "QALITA" in paused.qalita_paused_reason
        assert len(pause_rows(database, "paused")) == 1
        assert count(database, DeadLetter) == 0
        assert s.qalita_issue(first["id"])["status"] == "open"
    finally:
        requests.delete(faults, timeout=10).raise_for_status()
    eventually(lambda: s.qalita_issue(first["id"])["status"] == "active")
    assert integration(database).qalita_paused_at is None
    assert count(database, DeadLetter) == 0


def test_a_403_is_an_integration_wide_refusal_only_when_myself_fails_too(
        database, jira, secret_key):
    """A 403 for one project, issue or transition stays that link's (``myself`` answers);
    a 403 with the account's token refused everywhere pauses the integration."""
    box = SecretBox((secret_key,))
    with database.unit_of_work() as session:
        upsert_from_env(session, bootstrap(jira.base_url, "cloud"), box)
    ctx = SyncContext(database=database, box=box, debounce_seconds=0.0, timings=TIMINGS)
    found = integration(database)
    error = PermanentError("transition 10001 by 31: HTTP 403", status=403)
    assert pauses.refusal(ctx, found, error, inbound=False) is None
    switch(jira, revoke_token=True)
    # A ``myself`` that just answered stands for a few seconds (a bulk create's other links).
    assert pauses.refusal(ctx, found, error, inbound=False) is None
    ctx = SyncContext(database=database, box=box, debounce_seconds=0.0, timings=TIMINGS)
    assert pauses.refusal(ctx, found, error, inbound=False) == pauses.JIRA
    # QALITA's refusals pause only the inbound direction, and only on a 401.
    refused = AuthError("QALITA PUT /api/v2/issues/1: Not authenticated", status=401)
    assert pauses.refusal(ctx, found, refused, inbound=True) == pauses.QALITA
    assert pauses.refusal(ctx, found, PermanentError(
        "QALITA PUT /api/v2/issues/1: forbidden", status=403), inbound=True) is None
