"""A create whose answer was lost leaves its Jira issue unknown to the link until the marker
search adopts it; what people changed in it meanwhile reached no link (its deliveries were
dropped as unlinked) and must not be undone by the edit after the adoption. Found by the
broker-down process test: a person's transition was reverted. The outbound sync against the
simulator over HTTP, on Postgres."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.store.models import IssueLink, LogEntry
from jira_sync.store.types import utcnow
from tests.support.sync import Harness, qalita_event

pytestmark = pytest.mark.integration
SERVICE = ("svc@example.com", "tok-123")
PERSON = ("ana@example.com", "tok-ana")


@pytest.fixture
def sim():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0)) as running:
        yield running


def test_a_change_made_before_the_adoption_goes_to_qalita_and_is_not_undone(database, sim):
    api = f"{sim.base_url}/rest/api/3"
    h = Harness(database, sim.base_url, "cloud")
    h.send(qalita_event(1))
    with database.unit_of_work() as session:  # the attempt whose answer was lost
        session.execute(update(IssueLink).values(create_attempted_at=utcnow()
                                                 - timedelta(minutes=5)))
    created = requests.post(f"{api}/issue", auth=SERVICE, timeout=10, json={"fields": {
        "project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
        "summary": "[QALITA] orders: freshness", "labels": ["qalita-id-default-1"]}}).json()
    moves = requests.get(f"{api}/issue/{created['key']}/transitions", auth=PERSON,
                         timeout=10).json()["transitions"]
    start = next(t for t in moves if t["name"] == "Start Progress")
    requests.post(f"{api}/issue/{created['key']}/transitions", auth=PERSON, timeout=10,
                  json={"transition": {"id": start["id"]}}).raise_for_status()

    h.drain()

    assert h.issue_of(1)["status"]["name"] == "In Progress"
    assert not h.calls(method="POST", path=f"/rest/api/3/issue/{created['id']}/transitions",
                       status=204)
    with database.unit_of_work() as session:
        link = session.scalars(select(IssueLink)).one()
        assert link.jira_issue_key == created["key"]
        rows = [(r.action, r.decision, r.message) for r in session.scalars(
            select(LogEntry).order_by(LogEntry.id))]
    # Adopted, then the person's change taken in as its delivery would have been (the
    # harness has no QALITA API to write it to), and kept by the edit that followed.
    assert [row[:2] for row in rows[1:3]] == [("create", "adopted"),
                                              ("jira:issue_updated", "accepted")]
    assert f"status of {created['key']} changed in Jira" in rows[2][2]
