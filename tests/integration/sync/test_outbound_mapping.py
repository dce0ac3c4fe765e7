"""Every mapping rule of the outbound sync, on Cloud and on Server, against the simulator over
HTTP with the real intake and flush code on Postgres (tests/support/sync.py)."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from jira_sync.render import adf_to_text, wiki_to_text
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.jira.config import (
    IN_PROGRESS,
    TO_DO,
    FieldDef,
    ProjectDef,
    TransitionDef,
    default_projects,
)
from jira_sync.store.models import IssueLink, LogEntry, UserIdentity
from tests.support.sync import Harness, qalita_event

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("deployment", ["cloud", "server"])]

EXTRA_PROJECTS = (
    # A create screen that requires a field jira-sync does not fill.
    ProjectDef("REQ", "Required", "10100", default_projects()[0].workflow,
               fields=(FieldDef("customfield_10070", "Cost centre", required=True),)),
    # No way to Done: To Do <-> In Progress only.
    ProjectDef("LOOP", "Loop", "10101", (
        TransitionDef("21", "Start", IN_PROGRESS, (TO_DO,)),
        TransitionDef("22", "Stop", TO_DO, (IN_PROGRESS,)))),
)


@pytest.fixture
def sim(deployment):
    config = SimulatorConfig(deployment=deployment, index_lag_ms=0,
                             projects=(*default_projects(), *EXTRA_PROJECTS))
    with running_simulator(config) as running:
        yield running


def harness(database, sim, deployment, mapping=None) -> Harness:
    return Harness(database, sim.base_url, deployment, mapping=mapping)


def text_of(deployment: str, body) -> str:
    return adf_to_text(body) if deployment == "cloud" else wiki_to_text(body)


def link_of(database, qalita_id: int) -> IssueLink:
    with database.unit_of_work() as session:
        return session.scalars(select(IssueLink).where(
            IssueLink.qalita_issue_id == qalita_id)).one()


def test_create_maps_title_description_labels_priority_and_assignee(database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(4211, metric="hours_since_update"))
    issue = h.issue_of(4211)
    assert issue["summary"] == "[QALITA] orders: freshness"
    assert issue["labels"] == sorted(["qalita", "severity:high", "domain:billing",
                                      "qalita-id-default-4211"])
    assert issue["priority"] == "High"
    assert issue["assignee"] == "ana@example.com"
    assert issue["status"]["category"] == "new"
    text = text_of(deployment, issue["description"])
    for expected in ("The orders table was not loaded.", "orders", "freshness",
                     "last load 26 h ago", "Ana <ana@example.com>",
                     "Run #812 (https://qalita.example.com/runs/812)",
                     "https://qalita.example.com/issues/4211"):
        assert expected in text
    creates = h.calls(method="POST", path=f"/rest/api/{sim.config.api_version}/issue/bulk")
    assert len(creates) == 1


def test_title_falls_back_and_is_capped_and_labels_lose_spaces(database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1, dataset=None, title="x" * 1000, domain="data  platform"),
           qalita_event(2, rule=None, metric=None, title="Plain title"))
    long = h.issue_of(1)
    assert len(long["summary"]) == 255 and long["summary"].endswith("(truncated by jira sync)")
    assert "domain:data-platform" in long["labels"]
    assert h.issue_of(2)["summary"] == "Plain title"


def test_unmapped_severity_sends_no_priority_and_components_come_from_the_map(
        database, sim, deployment):
    mapping = {"priorities": {"low": None}, "components_by_domain": {"billing": "billing"},
               "components_by_owner": {"bo@example.com": ["ingestion"]}}
    h = harness(database, sim, deployment, mapping)
    h.sync(qalita_event(1, severity="low", owner={"email": "bo@example.com", "name": "Bo"}))
    issue = h.issue_of(1)
    assert issue["priority"] == "Medium"  # the project's default, not ours
    assert sorted(issue["components"]) == ["billing", "ingestion"]
    assert "priority" not in h.calls(method="POST")[-1]["body"]["issueUpdates"][0]["fields"]


def test_labels_people_added_survive_and_only_our_old_labels_go(database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1))
    issue = h.issue_of(1)
    person = ("ana@example.com", "tok-ana")
    requests.put(f"{sim.base_url}/rest/api/{sim.config.api_version}/issue/{issue['id']}",
                 json={"update": {"labels": [{"add": "triaged"}]}}, auth=person,
                 timeout=10).raise_for_status()
    h.sync(qalita_event(1, 2, "issue.updated", severity="critical", domain="ingestion"))
    labels = h.issue_of(1)["labels"]
    assert "triaged" in labels and "severity:critical" in labels and "domain:ingestion" in labels
    assert "severity:high" not in labels and "domain:billing" not in labels
    assert "qalita-id-default-1" in labels


def test_an_update_that_changes_nothing_makes_no_call(database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1))
    before = len(h.calls())
    h.sync(qalita_event(1, 2, "issue.updated", updated_at="2026-11-28T11:00:00Z"))
    assert len(h.calls()) == before


def test_required_create_field_blocks_until_the_mapping_gives_a_default(
        database, sim, deployment):
    h = harness(database, sim, deployment,
                {"routing": [{"domain": "finance", "project": "REQ"}]})
    h.sync(qalita_event(1, domain="finance"))
    link = link_of(database, 1)
    assert link.state == "blocked" and "customfield_10070" in link.state_reason
    assert "Cost centre" in link.state_reason and h.issues() == []
    h2 = harness(database, sim, deployment, {
        "routing": [{"domain": "finance", "project": "REQ"}],
        "projects": {"REQ": {"field_defaults": {"customfield_10070": "DQ-42"}}}})
    h2.sync(qalita_event(1, 2, "issue.updated", domain="finance"))
    issue = h2.issue_of(1)
    assert issue["project"] == "REQ" and issue["custom"]["customfield_10070"] == "DQ-42"


def test_assignee_is_resolved_by_email_and_an_unknown_owner_never_clears_it(
        database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1, owner={"email": "nobody@example.com", "name": "Nobody"}))
    assert h.issue_of(1)["assignee"] is None
    h.sync(qalita_event(1, 2, "issue.updated", owner={"email": "BO@example.com"}))
    assert h.issue_of(1)["assignee"] == "bo@example.com"
    h.sync(qalita_event(1, 3, "issue.updated", owner={"email": "ghost@example.com"}))
    assert h.issue_of(1)["assignee"] == "bo@example.com"
    with database.unit_of_work() as session:
        resolved = {i.email: i.resolved for i in session.scalars(select(UserIdentity))}
    assert resolved == {"nobody@example.com": False, "bo@example.com": True,
                        "ghost@example.com": False}


def test_routing_picks_project_and_issue_type_first_match_wins(database, sim, deployment):
    h = harness(database, sim, deployment, {"routing": [
        {"severity": "critical", "tag": "ops", "project": "OPS", "issue_type": "Task"},
        {"owner": "bo@example.com", "project": "OPS"},
        {"domain": "billing", "project": "DATA", "issue_type": "Task"}]})
    h.sync(qalita_event(1, severity="critical", tags=["ops"]),
           qalita_event(2, owner={"email": "bo@example.com"}),
           qalita_event(3),
           qalita_event(4, domain="hr"))
    assert (h.issue_of(1)["project"], h.issue_of(1)["issuetype"]) == ("OPS", "Task")
    assert (h.issue_of(2)["project"], h.issue_of(2)["issuetype"]) == ("OPS", "Bug")
    assert (h.issue_of(3)["project"], h.issue_of(3)["issuetype"]) == ("DATA", "Task")
    assert (h.issue_of(4)["project"], h.issue_of(4)["issuetype"]) == ("DATA", "Bug")


def test_status_walks_multi_hop_workflows_and_fills_resolution(database, sim, deployment):
    h = harness(database, sim, deployment, {"routing": [{"domain": "ops", "project": "OPS"}]})
    h.sync(qalita_event(1, status="resolved"), qalita_event(2, domain="ops", status="resolved"))
    assert h.issue_of(1)["status"]["name"] == "Done"
    ops = h.issue_of(2)
    assert ops["status"]["name"] == "Done" and ops["resolution"]
    h.sync(qalita_event(1, 2, "issue.updated", status="active"))
    assert h.issue_of(1)["status"]["name"] == "In Progress"  # Reopen, then Start Progress


def test_a_workflow_without_a_path_blocks_the_link_with_the_reason(database, sim, deployment):
    h = harness(database, sim, deployment, {"routing": [{"domain": "loop", "project": "LOOP"}]})
    h.sync(qalita_event(1, domain="loop", status="resolved"))
    link = link_of(database, 1)
    assert link.state == "blocked" and "no known path" in link.state_reason
    assert "done" in link.state_reason
    with database.unit_of_work() as session:
        decisions = session.scalars(select(LogEntry.decision).where(
            LogEntry.link_id == link.id)).all()
    assert "blocked" in decisions


def test_muted_adds_the_ignored_label_without_a_transition_and_reopen_removes_it(
        database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1))
    transitions_before = len(h.calls(method="POST", path="*transitions"))
    h.sync(qalita_event(1, 2, "issue.updated", status="muted"))
    issue = h.issue_of(1)
    assert "ignored" in issue["labels"] and issue["status"]["name"] == "To Do"
    assert len(h.calls(method="POST", path="*transitions")) == transitions_before
    h.sync(qalita_event(1, 3, "issue.updated", status="open"))
    assert "ignored" not in h.issue_of(1)["labels"]


def test_versions_out_of_order_end_on_the_newest(database, sim, deployment):
    h = harness(database, sim, deployment)
    h.sync(qalita_event(1, 3, "issue.updated", title="v3", dataset=None))
    h.sync(qalita_event(1, 1, "issue.created", title="v1", dataset=None),
           qalita_event(1, 2, "issue.updated", title="v2", dataset=None))
    assert h.issue_of(1)["summary"] == "v3"
    assert link_of(database, 1).applied_version == 3
    with database.unit_of_work() as session:
        decisions = session.scalars(select(LogEntry.decision)).all()
    assert decisions.count("stale") == 2
