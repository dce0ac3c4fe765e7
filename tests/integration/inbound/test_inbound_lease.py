"""An inbound flush leases and reads its links together, then writes each on its own: a link
that is busy, not yet due or failing is only its own concern; and a flush that dies holding a
link leaves it to the sweep, which makes it due again. Both simulators over HTTP, real
Postgres and Redis (tests/support/two_way.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from jira_sync.store.models import IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync import inbound, sweep

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("deployment", ["cloud"])]


def _links_with_jira_changes(sync, database, count: int) -> tuple[list[dict], dict[int, int]]:
    """``count`` linked issues, each moved to Done by a person in Jira, the deliveries folded
    but no inbound flush run; returns the QALITA issues and their link ids."""
    issues = [sync.qalita_new(title=f"Stale table {n}") for n in range(count)]
    sync.settle()
    for issue in issues:
        key = sync.jira_issue_of(issue["id"])["id"]
        sync.transition(key, "Start Progress")
        sync.transition(key, "Done")
    while sync.take_deliveries():
        pass
    sync.queue.clear()
    with database.unit_of_work() as session:
        links = {link.qalita_issue_id: link.id for link in session.scalars(select(IssueLink))}
    return issues, {issue["id"]: links[issue["id"]] for issue in issues}


def test_one_flush_writes_the_due_links_and_leaves_the_others_theirs(make, database):
    sync = make()
    issues, link_of = _links_with_jira_changes(sync, database, 4)
    written, busy, later, failing = (link_of[issue["id"]] for issue in issues)
    now = utcnow()
    with database.unit_of_work() as session:
        held = session.get(IssueLink, busy)
        held.lease_owner, held.lease_expires_at = "another-worker", now + timedelta(seconds=3)
        session.get(IssueLink, later).inbound_due_at = now + timedelta(seconds=30)
    requests.post(f"{sync.qalita.base_url}/_sim/faults", json={
        "status": 503, "count": 4, "method": "PUT",  # every try of the client's
        "path": f"/api/v2/issues/{issues[3]['id']}"},
        timeout=10).raise_for_status()

    dues = {due.link_id: due for due in
            inbound.flush_inbound(sync.ctx, [written, busy, later, failing])}

    assert [sync.qalita_issue(issue["id"])["status"] for issue in issues] == \
        ["resolved", "open", "open", "open"]
    assert written not in dues
    assert now < dues[busy].at <= now + timedelta(seconds=4)
    assert dues[later].at == now + timedelta(seconds=30)
    assert dues[failing].at > now and all(due.inbound for due in dues.values())
    with database.unit_of_work() as session:
        rows = {link.id: link for link in session.scalars(select(IssueLink))}
        assert rows[busy].lease_owner == "another-worker"
        assert rows[later].lease_owner is None and rows[written].lease_owner is None
        assert (rows[failing].inbound_attempts, rows[failing].lease_owner) == (1, None)
        assert rows[written].inbound_due_at is None

    # Once free and due, the others are written by later flushes, each once.
    with database.unit_of_work() as session:
        session.get(IssueLink, busy).lease_owner = None
        session.get(IssueLink, later).inbound_due_at = utcnow()
    sync.schedule([dues[failing], *inbound.flush_inbound(sync.ctx, [busy, later])])
    sync.settle()
    assert {sync.qalita_issue(issue["id"])["status"] for issue in issues} == {"resolved"}
    assert sorted(w["path"] for w in sync.qalita_writes() if w["status"] == 200) == \
        sorted(f"/api/v2/issues/{issue['id']}" for issue in issues)


def test_the_sweep_makes_a_link_due_again_when_its_inbound_flush_died(make, database):
    sync = make()
    [issue], link_of = _links_with_jira_changes(sync, database, 1)
    link_id = link_of[issue["id"]]
    # A worker leased the link (which clears its due time) and died before writing.
    with database.unit_of_work() as session:
        link = session.get(IssueLink, link_id)
        link.inbound_due_at = None
        link.lease_owner, link.lease_expires_at = "dead-worker", utcnow() - timedelta(seconds=1)
    with database.unit_of_work() as session:
        assert sweep.overdue_inbound(session, grace_seconds=5.0) == []  # within the grace
        session.get(IssueLink, link_id).lease_expires_at = utcnow() - timedelta(seconds=10)
    with database.unit_of_work() as session:
        assert sweep.overdue_inbound(session, grace_seconds=5.0) == [link_id]
    inbound.flush_inbound(sync.ctx, [link_id])
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "resolved"
    assert [w["json"] for w in sync.qalita_writes()] == [{"status": "resolved"}]
