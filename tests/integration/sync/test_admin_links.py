"""Create External Issue, sync now, sever and the links list (jira_sync/admin/links.py), run
through the real intake and flushes against both simulators over HTTP on Postgres and Redis
(tests/support/two_way.py plays the worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
import requests
from sqlalchemy import select, update

from jira_sync.admin import links
from jira_sync.admin.errors import Conflict, Invalid, NotFound, Unavailable
from jira_sync.publish import QALITA_QUEUE
from jira_sync.store.models import Integration, IssueLink, LogEntry
from jira_sync.store.types import utcnow
from tests.support.processes import free_port
from tests.support.two_way import TwoWay

pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)]


@pytest.fixture
def sync(database, jira, qalita, broker_url):
    harness = TwoWay(database, jira, qalita, broker_url)
    yield harness
    harness.close()


def quiet_issue(sync: TwoWay, **fields) -> int:
    """A QALITA issue whose creation event never reaches jira-sync (only an operator's
    Create External Issue links it)."""
    issue = sync.qalita_new(**fields)
    redis.Redis.from_url(sync.broker_url).delete(QALITA_QUEUE)
    return issue["id"]


def act(sync: TwoWay, action, *args) -> links.LinkOutcome:
    """One admin action in its own unit of work, its flushes scheduled after the commit."""
    with sync.database.unit_of_work() as session:
        outcome = action(session, *args)
    sync.schedule(outcome.dues)
    return outcome


def create(sync: TwoWay, issue_id: int, tenant: str = "default") -> links.LinkOutcome:
    outcome = links.create_external(sync.ctx, tenant, issue_id)
    sync.schedule(outcome.dues)
    return outcome


def shown(sync: TwoWay, issue_id: int) -> dict:
    with sync.database.unit_of_work() as session:
        return links.show(session, "default", issue_id)


def marked(sync: TwoWay, issue_id: int) -> list[dict]:
    marker = f"qalita-id-default-{issue_id}"
    return [i for i in requests.get(f"{sync.jira.base_url}/_sim/issues", timeout=10).json()
            if not i["deleted"] and marker in i["labels"]]


def jira_issue(sync: TwoWay, jira_id: str) -> dict:
    return next(i for i in requests.get(f"{sync.jira.base_url}/_sim/issues", timeout=10).json()
                if i["id"] == jira_id)


def admin_decisions(database) -> list[str]:
    with database.unit_of_work() as session:
        return list(session.scalars(select(LogEntry.decision).where(
            LogEntry.action == "admin").order_by(LogEntry.id)))


def test_create_external_issue_twice_gives_one_jira_issue(sync, database):
    issue_id = quiet_issue(sync)
    first = create(sync, issue_id)
    assert first.created and first.view["state"] == "pending" and first.dues
    again = create(sync, issue_id)  # before the worker got to it: the same link, due now
    assert not again.created and again.link_id == first.link_id
    sync.settle()
    done = create(sync, issue_id)
    assert not done.created and done.dues == [] and done.view["state"] == "linked"
    [issue] = marked(sync, issue_id)
    assert done.view["jira_key"] == issue["key"]
    assert done.view["jira_url"] == f"{sync.jira.base_url}/browse/{issue['key']}"
    assert done.view["last_sync"] is not None
    assert issue["summary"] == "[QALITA] orders: freshness"
    assert admin_decisions(database) == ["create", "create"]  # the linked one is left as is


def test_wait_for_link_answers_with_the_key_once_the_flush_ran(sync):
    issue_id = quiet_issue(sync)
    outcome = create(sync, issue_id)
    assert links.wait_for_link(sync.database, outcome.link_id, 0.2)["jira_key"] is None
    sync.settle()
    view = links.wait_for_link(sync.database, outcome.link_id, 5)
    assert view["jira_key"] == marked(sync, issue_id)[0]["key"]


def test_sever_keeps_the_jira_issue_drops_the_marker_and_a_new_create_makes_a_new_issue(
        sync, database):
    issue = sync.qalita_new()
    sync.settle()
    [old] = marked(sync, issue["id"])
    outcome = act(sync, links.sever, "default", issue["id"])
    assert outcome.view["state"] == "severing" and shown(sync, issue["id"])["state"] == \
        "severing"
    sync.settle()
    assert shown(sync, issue["id"])["state"] == "severed"
    kept = jira_issue(sync, old["id"])
    assert not kept["deleted"] and "qalita" in kept["labels"]
    assert f"qalita-id-default-{issue['id']}" not in kept["labels"]
    # QALITA's later events create nothing and change nothing in Jira.
    writes = len(sync.jira_writes())
    sync.qalita_change(issue["id"], title="changed after the sever", status="active")
    sync.settle()
    assert marked(sync, issue["id"]) == [] and len(sync.jira_writes()) == writes
    with database.unit_of_work() as session:
        assert session.scalar(select(LogEntry.message).where(
            LogEntry.decision == "ignored", LogEntry.action == "issue.updated")).endswith(
            "link is severed; Create External Issue links it again")
    # Create External Issue makes a new link and a new Jira issue.
    again = create(sync, issue["id"])
    assert again.created and again.link_id != outcome.link_id
    sync.settle()
    [new] = marked(sync, issue["id"])
    assert new["id"] != old["id"] and new["status"]["category"] == "indeterminate"
    assert shown(sync, issue["id"])["jira_key"] == new["key"]
    with database.unit_of_work() as session:
        states = session.scalars(select(IssueLink.state).order_by(IssueLink.id)).all()
    assert states == ["severed", "linked"]
    assert admin_decisions(database) == ["sever", "create"]


def test_a_severed_issue_that_kept_its_marker_is_not_adopted_by_a_later_create(sync, database):
    issue = sync.qalita_new()
    sync.settle()
    [old] = marked(sync, issue["id"])
    act(sync, links.sever, "default", issue["id"])
    sync.settle()
    marker = f"qalita-id-default-{issue['id']}"
    sync.as_person("PUT", f"/issue/{old['id']}", {"update": {"labels": [{"add": marker}]}})
    sync.settle()
    again = create(sync, issue["id"])
    # As if a first attempt had died after Jira's answer: the create searches by marker first.
    with database.unit_of_work() as session:
        session.execute(update(IssueLink).where(IssueLink.id == again.link_id).values(
            create_attempted_at=utcnow() - timedelta(hours=1)))
    sync.settle()
    new = [i for i in marked(sync, issue["id"]) if i["id"] != old["id"]]
    assert len(new) == 1
    assert shown(sync, issue["id"])["jira_issue_id"] == new[0]["id"]


def test_sever_of_a_link_with_nothing_in_jira_is_immediate_and_repeatable(sync, database):
    issue_id = quiet_issue(sync)
    create(sync, issue_id)  # not flushed: no create attempted yet
    outcome = act(sync, links.sever, "default", issue_id)
    assert outcome.view["state"] == "severed" and outcome.dues == []
    sync.settle()
    assert marked(sync, issue_id) == []
    assert act(sync, links.sever, "default", issue_id).view["state"] == "severed"
    with pytest.raises(NotFound):
        act(sync, links.sever, "default", issue_id + 1000)


def test_a_failed_link_becomes_due_again(sync, database):
    with database.unit_of_work() as session:
        session.execute(update(Integration).values(
            options={"mapping": {"routing": [{"domain": "billing", "project": "NOPE"}]}},
            updated_at=utcnow()))
    issue = sync.qalita_new()
    sync.settle()
    assert shown(sync, issue["id"])["state"] == "failed"
    assert "NOPE" in shown(sync, issue["id"])["last_error"]
    outcome = create(sync, issue["id"])
    assert not outcome.created and outcome.view["state"] == "pending" and outcome.dues
    assert outcome.view["last_error"] is None
    sync.settle()
    # Tried again (and refused again, the routing being what it is).
    assert shown(sync, issue["id"])["state"] == "failed"
    with database.unit_of_work() as session:
        assert len(session.scalars(select(LogEntry).where(
            LogEntry.decision == "dead_letter")).all()) == 2
    assert marked(sync, issue["id"]) == []


def test_sync_now_makes_a_linked_issue_due_both_ways(sync, database):
    issue = sync.qalita_new()
    sync.settle()
    outcome = act(sync, links.sync_now, "default", issue["id"])
    assert {due.inbound for due in outcome.dues} == {False, True}
    sync.settle()
    with database.unit_of_work() as session:
        link = session.scalars(select(IssueLink)).one()
        assert link.due_at is None and link.inbound_due_at is None
    assert admin_decisions(database) == ["sync"]
    with pytest.raises(NotFound):
        act(sync, links.sync_now, "default", issue["id"] + 1000)
    act(sync, links.sever, "default", issue["id"])
    with pytest.raises(Conflict):
        act(sync, links.sync_now, "default", issue["id"])


def test_qalita_404_unreachable_and_failing_are_refused_with_the_reason(sync, database):
    with pytest.raises(NotFound, match="QALITA has no issue 999"):
        create(sync, 999)
    issue_id = quiet_issue(sync)
    requests.post(f"{sync.qalita.base_url}/_sim/faults",
                  json={"status": 401, "count": 5}, timeout=10).raise_for_status()
    with pytest.raises(Unavailable, match="QALITA could not be read"):
        create(sync, issue_id)
    requests.delete(f"{sync.qalita.base_url}/_sim/faults", timeout=10)
    with database.unit_of_work() as session:
        session.execute(update(Integration).values(
            qalita_api_url=f"http://127.0.0.1:{free_port()}", updated_at=utcnow()))
    with pytest.raises(Unavailable) as refused:
        create(sync, issue_id)
    assert "qalita-tok" not in refused.value.reason
    with database.unit_of_work() as session:
        assert session.scalars(select(IssueLink)).all() == []


def test_a_disabled_deleted_or_unknown_integration_is_refused(sync, database):
    issue_id = quiet_issue(sync)
    with database.unit_of_work() as session:
        session.execute(update(Integration).values(enabled=False))
    with pytest.raises(Conflict, match="disabled"):
        create(sync, issue_id)
    with database.unit_of_work() as session:
        session.execute(update(Integration).values(enabled=True, deleted_at=utcnow()))
    with pytest.raises(Conflict, match="deleted"):
        create(sync, issue_id)
    with pytest.raises(NotFound, match="tenant 'elsewhere'"):
        create(sync, issue_id, tenant="elsewhere")


def test_the_links_list_filters_and_pages(sync, database):
    first, second, third = (sync.qalita_new()["id"] for _ in range(3))
    sync.settle()
    act(sync, links.sever, "default", second)
    sync.settle()
    integration_id = sync.integration_id
    with database.unit_of_work() as session:
        every = links.list_links(session, integration_id)
        assert [i["qalita_issue_id"] for i in every.items] == [third, second, first]
        assert every.next_cursor is None
        one = links.list_links(session, integration_id, limit=2)
        rest = links.list_links(session, integration_id, limit=2, cursor=one.next_cursor)
        assert [i["qalita_issue_id"] for i in one.items + rest.items] == [third, second, first]
        severed = links.list_links(session, integration_id, state="severed").items
        assert [i["qalita_issue_id"] for i in severed] == [second]
        key = every.items[0]["jira_key"]
        assert [i["qalita_issue_id"] for i in links.list_links(
            session, integration_id, jira_key=key).items] == [third]
        assert len(links.list_links(session, integration_id, project="DATA").items) == 3
        assert links.list_links(session, integration_id, project="OPS").items == []
        assert [i["jira_key"] for i in links.list_links(
            session, integration_id, qalita_issue_id=first).items] == [every.items[2]["jira_key"]]
        assert all(i["last_sync"] for i in every.items)
        with pytest.raises(Invalid):
            links.list_links(session, integration_id, limit=0)
        with pytest.raises(NotFound):
            links.list_links(session, integration_id + 1000)
