"""Comments, deletions on either side, crash recovery by marker, invalid and waiting events:
the outbound sync's lifecycle rules against the simulator over HTTP on Postgres."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from jira_sync.render import adf_to_text, wiki_to_text
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.store.models import CommentLink, DeadLetter, InboxEvent, Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync.outbound import flush_link
from tests.support.sync import Harness, qalita_event

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("deployment", ["cloud", "server"])]
PERSON = ("ana@example.com", "tok-ana")


@pytest.fixture
def sim(deployment):
    with running_simulator(SimulatorConfig(deployment=deployment, index_lag_ms=0)) as running:
        yield running


def comment(comment_id: int, issue_id: int, event_type: str, body: str | None = "hello",
            **kwargs) -> dict:
    return qalita_event(issue_id, 1, event_type, comment={
        "id": comment_id, "body": body, "author": {"email": "ana@example.com", "name": "Ana"}},
        **kwargs)


def comment_texts(h: Harness, qalita_id: int) -> list[str]:
    read = adf_to_text if h.deployment == "cloud" else wiki_to_text
    return [read(c["body"]) for c in h.issue_of(qalita_id)["comments"]]


def link_of(database, qalita_id: int) -> IssueLink:
    with database.unit_of_work() as session:
        return session.scalars(select(IssueLink).where(
            IssueLink.qalita_issue_id == qalita_id)).one()


def api(sim) -> str:
    return f"{sim.base_url}/rest/api/{sim.config.api_version}"


def test_comments_are_posted_with_a_prefix_then_edited_and_deleted(database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    h.sync(qalita_event(1), comment(991, 1, "issue.comment_created", "first words"))
    [text] = comment_texts(h, 1)
    assert text.startswith("QALITA comment by Ana:") and text.endswith("first words")
    h.sync(comment(991, 1, "issue.comment_updated", "better words"))
    assert comment_texts(h, 1)[0].endswith("better words")
    h.sync(comment(991, 1, "issue.comment_deleted", None))
    assert comment_texts(h, 1) == []


def test_comment_events_before_the_issue_wait_for_it_and_keep_the_newest_text(
        database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    early, later = "2026-11-28T10:00:00+00:00", "2026-11-28T10:05:00+00:00"
    h.sync(comment(1, 7, "issue.comment_updated", "edited text", occurred_at=later),
           comment(2, 7, "issue.comment_deleted", None, occurred_at=later))
    assert h.issues() == []  # waiting for the issue
    h.sync(comment(1, 7, "issue.comment_created", "original", occurred_at=early),
           comment(2, 7, "issue.comment_created", "deleted before posting", occurred_at=early),
           qalita_event(7))
    texts = comment_texts(h, 7)
    assert len(texts) == 1 and texts[0].endswith("edited text")
    with database.unit_of_work() as session:
        states = dict(session.execute(select(CommentLink.qalita_comment_id,
                                                CommentLink.state)).all())
    assert states == {1: "posted", 2: "tombstone"}


def test_a_comment_that_landed_before_the_connection_dropped_is_not_posted_again(
        database, deployment):
    # Under this seed the first fault drawn strikes after applying and drops the connection;
    # the comment's POST is the only call the flush makes while every call fails.
    config = SimulatorConfig(deployment=deployment, index_lag_ms=0, seed=6)
    with running_simulator(config) as sim:
        h = Harness(database, sim.base_url, deployment)
        h.sync(qalita_event(1))
        requests.post(f"{sim.base_url}/_sim/config", json={"fail_rate": 1.0}, timeout=10)
        h.send(comment(5, 1, "issue.comment_created", "only once"))
        flushes = list(h.queue)
        h.queue.clear()
        for _, _, link_id in flushes:
            h.schedule(flush_link(h.ctx, link_id))
        requests.post(f"{sim.base_url}/_sim/config", json={"fail_rate": 0.0}, timeout=10)
        [struck] = h.calls(method="POST", path="*/comment")
        assert (struck["fault"], struck["dropped"], struck["changed"]) == ("after", True, True)
        h.drain()
        assert len(comment_texts(h, 1)) == 1
        assert len(h.calls(method="POST", path="*/comment")) == 1
        h.sync(comment(5, 1, "issue.comment_updated", "only once, edited",
                       occurred_at=(utcnow() + timedelta(seconds=1)).isoformat()))
        texts = comment_texts(h, 1)
        assert len(texts) == 1 and texts[0].endswith("only once, edited")


def test_an_issue_deleted_in_jira_is_recreated_after_checking_it_is_a_deletion(
        database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    h.sync(qalita_event(1), comment(3, 1, "issue.comment_created", "keep me"))
    first = h.issue_of(1)
    requests.delete(f"{api(sim)}/issue/{first['id']}", auth=("svc@example.com", "tok-123")
                    if deployment == "cloud" else None,
                    headers={} if deployment == "cloud" else {"Authorization": "Bearer pat-123"},
                    timeout=10).raise_for_status()
    h.sync(qalita_event(1, 2, "issue.updated", title="after deletion", dataset=None))
    again = h.issue_of(1)
    assert again["id"] != first["id"] and again["summary"] == "after deletion"
    assert len(comment_texts(h, 1)) == 1
    searches = h.calls(path="*search*")
    project_reads = h.calls(method="GET", path=f"/rest/api/{sim.config.api_version}/project/DATA")
    assert searches and project_reads  # checked before recreating


def test_tombstone_instead_of_recreate_when_configured(database, sim, deployment):
    h = Harness(database, sim.base_url, deployment, mapping={"on_jira_delete": "tombstone"})
    h.sync(qalita_event(1))
    first = h.issue_of(1)
    auth = {"auth": ("svc@example.com", "tok-123")} if deployment == "cloud" else \
        {"headers": {"Authorization": "Bearer pat-123"}}
    requests.delete(f"{api(sim)}/issue/{first['id']}", timeout=10, **auth).raise_for_status()
    h.sync(qalita_event(1, 2, "issue.updated", title="ignored now", dataset=None))
    assert h.issues() == [] and link_of(database, 1).state == "tombstoned"


def test_qalita_delete_closes_the_jira_issue(database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    h.sync(qalita_event(1))
    h.sync(qalita_event(1, 1, "issue.deleted"))
    assert h.issue_of(1)["status"]["category"] == "done"
    assert link_of(database, 1).state == "closed"


def test_a_crash_after_the_create_is_recovered_by_the_marker_not_a_second_issue(
        database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    requests.post(f"{sim.base_url}/_sim/config", json={"index_lag_ms": 1000}, timeout=10)
    h.sync(qalita_event(1))
    issue = h.issue_of(1)
    # Make the database look as if the worker died between Jira's answer and the commit.
    with database.unit_of_work() as session:
        session.execute(update(IssueLink).values(
            jira_issue_id=None, jira_issue_key=None, state="pending", written={},
            create_attempted_at=utcnow(), due_at=None))
    h.send(qalita_event(1, 2, "issue.updated", title="after the crash", dataset=None))
    h.drain()
    assert [i["id"] for i in h.issues()] == [issue["id"]]
    assert h.issue_of(1)["summary"] == "after the crash"


def test_invalid_events_become_dead_letters_and_valid_ones_go_on(database, sim, deployment):
    h = Harness(database, sim.base_url, deployment)
    bad_types = qalita_event(2)
    bad_types["issue"]["id"] = "two"
    missing = qalita_event(3)
    del missing["issue"]["title"]
    unknown = qalita_event(4, event_type="issue.exploded")
    huge = qalita_event(5, title="t" * 1_048_577)
    h.sync("not an object", bad_types, missing, unknown, huge, qalita_event(6))
    with database.unit_of_work() as session:
        reasons = session.scalars(select(DeadLetter.reason).order_by(DeadLetter.id)).all()
    assert len(reasons) == 5
    assert "not" in reasons[0] and "issue.id" in reasons[1] and "title" in reasons[2]
    assert "event_type" in reasons[3] and "1 MiB" in reasons[4]
    assert h.issue_of(6)["summary"] == "[QALITA] orders: freshness"


def test_an_event_for_an_unserved_tenant_waits_then_syncs(database, sim, deployment):
    from jira_sync import intake

    h = Harness(database, sim.base_url, deployment)
    with database.unit_of_work() as session:  # a deleted integration serves no tenant
        session.execute(update(Integration).values(deleted_at=utcnow()))
    h.sync(qalita_event(1))
    with database.unit_of_work() as session:
        assert session.scalars(select(InboxEvent.state)).all() == ["waiting"]
        session.execute(update(Integration).values(deleted_at=None))
    with database.unit_of_work() as session:
        h.schedule(intake.pump_waiting(session, h.ctx))
    h.drain()
    assert h.issue_of(1)


def test_a_create_jira_refuses_is_a_dead_letter_with_request_response_and_reason(
        database, sim, deployment):
    h = Harness(database, sim.base_url, deployment,
                mapping={"routing": [{"domain": "nowhere", "project": "NOPE"}]})
    h.sync(qalita_event(1, domain="nowhere"), qalita_event(2))
    link = link_of(database, 1)
    assert link.state == "failed" and "NOPE" in link.state_reason
    with database.unit_of_work() as session:
        letter = session.scalars(select(DeadLetter)).one()
    assert letter.kind == "jira_rejected" and letter.link_id == link.id
    assert letter.request["project"] == "NOPE" and letter.response["status"]
    assert letter.payload["issue"]["id"] == 1
    assert h.issue_of(2)  # the other project's create went on


@pytest.mark.parametrize("action", ["comment", "nothing"])
def test_qalita_delete_can_comment_or_do_nothing(database, sim, deployment, action):
    h = Harness(database, sim.base_url, deployment, mapping={"on_qalita_delete": action})
    h.sync(qalita_event(1))
    h.sync(qalita_event(1, 1, "issue.deleted"))
    issue = h.issue_of(1)
    assert issue["status"]["category"] == "new"
    assert len(issue["comments"]) == (1 if action == "comment" else 0)
    assert link_of(database, 1).state == "closed"
