"""The reconciliation sweep repairs what webhooks missed: lost deliveries, late ones,
deletions and moves, unreadable projects (both simulators over HTTP, real Postgres)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from jira_sync.store.models import IssueLink, LogEntry
from jira_sync.store.types import utcnow
from jira_sync.sync.reconcile import reconcile
from tests.integration.inbound.test_inbound_sync import captured, signed_post
from tests.support.two_way import TwoWay

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("deployment", ["cloud", "server"])]


def sweep(sync: TwoWay, **kwargs):
    report, dues = reconcile(sync.ctx, sync.integration_id, **kwargs)
    sync.schedule(dues)
    sync.settle()
    return report


def link(database) -> IssueLink:
    with database.unit_of_work() as session:
        return session.scalars(select(IssueLink)).one()


def test_a_dropped_delivery_is_repaired_by_the_next_sweep(make):
    sync = make()
    issue = sync.qalita_new(tags=["finance"])
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.hold()  # every delivery is lost from here on
    sync.transition(key, "Start Progress")
    sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [{"add": "urgent"}]}})
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "open"
    report = sweep(sync)
    seen = sync.qalita_issue(issue["id"])
    assert (seen["status"], seen["tags"]) == ("active", ["finance", "urgent"])
    assert report.read == 1 and report.changed == 1
    # A second sweep finds nothing new to write.
    writes = len(sync.qalita_writes())
    sweep(sync)
    assert len(sync.qalita_writes()) == writes == 1


def test_a_late_delivery_older_than_the_sweep_applies_nothing(make):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.hold()
    sync.transition(key, "Start Progress")
    sync.transition(key, "Done")
    sweep(sync)
    assert sync.qalita_issue(issue["id"])["status"] == "resolved"
    # Jira's retry of the first hop comes half an hour late: older than what the sweep read.
    first = next(d for d in captured(sync, "jira:issue_updated")
                 if d["payload"]["changelog"]["items"][0]["toString"] == "In Progress")
    assert signed_post(sync, first["payload"], first["id"]).status_code == 202
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "resolved"
    assert len(sync.qalita_writes()) == 1


def test_jira_syncs_own_writes_seen_by_the_sweep_are_echoes(make, database):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    sync.hold()
    sync.qalita_change(issue["id"], status="resolved", tags=["a"])
    sync.settle()
    report = sweep(sync, since=utcnow() - timedelta(minutes=5))
    assert report.read == 1 and report.changed == 0
    assert sync.qalita_writes() == []


def test_a_deletion_no_webhook_told_is_found_by_the_existence_check(make, database):
    sync = make(mapping={"on_jira_delete": "tombstone"})
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["key"]
    sync.hold()
    sync.as_person("DELETE", f"/issue/{key}")
    report = sweep(sync)
    assert (report.checked, report.missing) == (1, 1)
    assert link(database).state == "tombstoned"
    assert len(sync.qalita_issue(issue["id"])["comments"]) == 1


def test_an_unreadable_project_is_skipped_and_logged(make, database):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    with database.unit_of_work() as session:
        session.scalars(select(IssueLink)).one().jira_project_key = "GONE"
    report = sweep(sync)
    assert "GONE" in report.skipped and report.projects == []
    with database.unit_of_work() as session:
        assert session.scalars(select(LogEntry).where(
            LogEntry.action == "reconcile", LogEntry.decision == "skipped")).all()
    assert sync.qalita_issue(issue["id"])["status"] == "open"


def test_the_command_prints_what_it_checked_and_changed(make, service_env, jira, qalita,
                                                       database):
    from tests.support.processes import run_cli
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.hold()
    sync.transition(key, "Start Progress")
    env = {**service_env, "JIRA_SYNC_DATABASE_URL": database.url,
           "JIRA_SYNC_SECRET_KEY": sync.box_key}
    result = run_cli(["reconcile", "--since", (utcnow() - timedelta(hours=1)).isoformat()], env)
    assert result.returncode == 0, result.stderr
    assert "read 1 issues changed in Jira" in result.stdout
    assert "1 links had changes for QALITA" in result.stdout
    assert requests.get(f"{qalita.base_url}/_sim/issues/{issue['id']}",
                        timeout=10).json()["status"] == "active"
