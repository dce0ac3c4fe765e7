"""What people do in Jira reaches QALITA once, and nothing jira-sync wrote comes back: both
simulators over HTTP, the real receiver, real Postgres and Redis (tests/support/two_way.py)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("deployment", ["cloud", "server"])]


def test_a_status_a_person_sets_in_jira_reaches_qalita_once(make):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    jira_issue = sync.jira_issue_of(issue["id"])
    jira_writes = len(sync.jira_writes())
    sync.transition(jira_issue["id"], "Start Progress")
    sync.transition(jira_issue["id"], "Done")
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "resolved"
    assert [w["json"] for w in sync.qalita_writes()] == [{"status": "resolved"}]
    # QALITA's event for that write is an echo: nothing goes back to Jira.
    assert len(sync.jira_writes()) == jira_writes


def test_a_first_status_change_after_the_create_is_no_conflict(make, database):
    """The create put QALITA's status in Jira: a person moving the issue afterwards changed it
    on one side only, so even a policy that keeps QALITA's status lets it through."""
    sync = make(mapping={"conflicts": {"status": "qalita"}})
    issue = sync.qalita_new()
    sync.settle()
    sync.transition(sync.jira_issue_of(issue["id"])["id"], "Start Progress")
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "active"
    assert "conflict" not in decisions(database, "inbound")


def decisions(database, action: str | None = None) -> list[str]:
    from sqlalchemy import select

    from jira_sync.store.models import LogEntry
    with database.unit_of_work() as session:
        query = select(LogEntry.decision).order_by(LogEntry.id)
        if action is not None:
            query = query.where(LogEntry.action == action)
        return list(session.scalars(query))


def test_a_two_hop_transition_made_by_jira_sync_writes_nothing_back(make, database):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    sync.qalita_change(issue["id"], status="resolved")
    sync.settle()
    assert sync.jira_issue_of(issue["id"])["status"]["category"] == "done"
    assert sync.qalita_writes() == []
    assert decisions(database, "jira:issue_updated").count("echo") >= 2


def test_a_value_set_again_after_a_reopen_syncs(make):
    sync = make()
    issue = sync.qalita_new(status="resolved")
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.transition(key, "Reopen")
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "open"
    # A person sets Done again: the same value jira-sync wrote before, now a person's.
    sync.transition(key, "Start Progress")
    sync.transition(key, "Done")
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "resolved"
    assert [w["json"] for w in sync.qalita_writes()] == [{"status": "open"},
                                                       {"status": "resolved"}]


def test_the_ignored_label_and_other_labels(make):
    sync = make()
    issue = sync.qalita_new(tags=["finance"])
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [
        {"add": "customer-facing"}, {"add": "ignored"}]}})
    sync.settle()
    seen = sync.qalita_issue(issue["id"])
    assert seen["status"] == "ignored" and seen["tags"] == ["finance", "customer-facing"]
    sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [
        {"remove": "ignored"}, {"remove": "customer-facing"}]}})
    sync.settle()
    seen = sync.qalita_issue(issue["id"])
    assert seen["status"] == "open" and seen["tags"] == ["finance"]
    # The labels jira-sync manages never reach QALITA's tags, and nothing bounced back.
    labels = sync.jira_issue_of(issue["id"])["labels"]
    assert "ignored" not in labels and "customer-facing" not in labels
    assert len(sync.qalita_writes()) == 2


def test_a_status_set_in_jira_while_the_ignored_label_goes_keeps_what_jira_then_shows(make):
    """Found by the loop soak: QALITA unmutes an issue while a person moves it in Jira. The
    later Jira change wins the status conflict, and Jira's status by then is the one without
    the ignored label outbound just removed, not the muted one the delivery showed."""
    sync = make()
    issue = sync.qalita_new(status="ignored")
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    assert "ignored" in sync.jira_issue_of(issue["id"])["labels"]
    sync.qalita_change(issue["id"], status="open")
    sync.transition(key, "Start Progress")
    sync.settle()
    jira_issue, seen = sync.jira_issue_of(issue["id"]), sync.qalita_issue(issue["id"])
    assert "ignored" not in jira_issue["labels"]
    assert (seen["status"], jira_issue["status"]["name"]) == ("active", "In Progress")


def test_comments_go_both_ways_once(make, deployment):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    body = "Looked at the loader" if deployment == "server" else {
        "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "Looked at the loader"}]}]}
    posted = sync.as_person("POST", f"/issue/{key}/comment", {"body": body}).json()
    sync.settle()
    [comment] = sync.qalita_issue(issue["id"])["comments"]
    assert comment["body"] == "Looked at the loader" and comment["author_name"] == "Ana"
    assert comment["external_id"] == f"jira:{posted['id']}"
    # QALITA's event for that comment does not come back as a Jira comment.
    assert len(sync.jira_issue_of(issue["id"])["comments"]) == 1
    edited = "Looked at the loader: fixed" if deployment == "server" else {
        **body, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "Looked at the loader: fixed"}]}]}
    sync.as_person("PUT", f"/issue/{key}/comment/{posted['id']}", {"body": edited})
    sync.settle()
    assert sync.qalita_issue(issue["id"])["comments"][0]["body"] == \
        "Looked at the loader: fixed"
    sync.as_person("DELETE", f"/issue/{key}/comment/{posted['id']}")
    sync.settle()
    assert sync.qalita_issue(issue["id"])["comments"] == []
    assert sync.jira_issue_of(issue["id"])["comments"] == []
    assert [w["method"] for w in sync.qalita_writes()] == ["POST", "PUT", "DELETE"]


def test_a_qalita_comment_posted_to_jira_is_not_written_back(make):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    import requests
    requests.post(f"{sync.qalita.base_url}/_sim/issues/{issue['id']}/comments",
                  json={"body": "From QALITA"}, timeout=10).raise_for_status()
    sync.settle()
    assert len(sync.jira_issue_of(issue["id"])["comments"]) == 1
    assert len(sync.qalita_issue(issue["id"])["comments"]) == 1
    assert sync.qalita_writes() == []


def test_assignee_title_and_description_flow_back_when_enabled(make):
    sync = make(mapping={"inbound": {"assignee": True, "title": True, "description": True}})
    issue = sync.qalita_new(owner={"email": "ana@example.com", "name": "Ana"},
                            description="Loaded late")
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    ref = {"accountId": "712020:bo-0002"} if sync.deployment == "cloud" else {"name": "bo"}
    sync.as_person("PUT", f"/issue/{key}", {"fields": {"assignee": ref,
                                                       "summary": "Orders: loader down"}})
    sync.settle()
    seen = sync.qalita_issue(issue["id"])
    assert seen["owner"]["email"] == "bo@example.com" and seen["title"] == "Orders: loader down"
    assert len(sync.qalita_writes()) == 1  # one PUT with both keys
    jira_writes = len(sync.jira_writes())
    sync.settle()
    assert len(sync.jira_writes()) == jira_writes  # the echoes changed nothing in Jira


def test_off_by_default_assignee_and_title_stay_qalitas(make):
    sync = make()
    issue = sync.qalita_new(owner={"email": "ana@example.com", "name": "Ana"})
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    ref = {"accountId": "712020:bo-0002"} if sync.deployment == "cloud" else {"name": "bo"}
    sync.as_person("PUT", f"/issue/{key}", {"fields": {"assignee": ref, "summary": "Mine"}})
    sync.settle()
    seen = sync.qalita_issue(issue["id"])
    assert seen["owner"]["email"] == "ana@example.com" and seen["title"] == issue["title"]
    assert sync.qalita_writes() == []


def test_deleted_in_jira_with_tombstone_closes_the_link_with_one_qalita_comment(make, database):
    from sqlalchemy import select

    from jira_sync.store.models import IssueLink
    sync = make(mapping={"on_jira_delete": "tombstone"})
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["key"]
    sync.as_person("DELETE", f"/issue/{key}")
    sync.settle()
    with database.unit_of_work() as session:
        link = session.scalars(select(IssueLink)).one()
    assert (link.state, link.state_reason) == ("tombstoned", "deleted in Jira")
    [note] = sync.qalita_issue(issue["id"])["comments"]
    assert key in note["body"] and "deleted" in note["body"]
    assert sync.qalita_issue(issue["id"])["status"] == "open"  # nothing else written
    sync.qalita_change(issue["id"], title="Still stale")
    sync.settle()
    assert len(sync.qalita_issue(issue["id"])["comments"]) == 1


def test_deleted_in_jira_with_recreate_makes_a_new_issue(make):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    first = sync.jira_issue_of(issue["id"])
    sync.as_person("DELETE", f"/issue/{first['key']}")
    sync.settle()
    again = sync.jira_issue_of(issue["id"])
    assert again["id"] != first["id"]
    assert sync.qalita_writes() == []


def captured(sync, event: str) -> list[dict]:
    import requests
    found = requests.get(f"{sync.jira.base_url}/_sim/webhooks?payload=1", timeout=10).json()
    return [d for d in found["deliveries"] if d["event"] == event]


def signed_post(sync, payload: dict, identifier: str):
    import hashlib
    import hmac
    import json

    import requests

    from tests.support.two_way import SECRET
    body = json.dumps(payload).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(sync.receiver_url, data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature": f"sha256={digest}",
        "X-Atlassian-Webhook-Identifier": identifier})


def test_one_delivery_five_times_is_one_qalita_write(make):
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["id"]
    sync.hold()
    sync.transition(key, "Start Progress")
    [delivery] = [d for d in captured(sync, "jira:issue_updated")
                  if d["issue_event_type_name"] == "issue_generic"]
    answers = [signed_post(sync, delivery["payload"], "same-id").status_code for _ in range(3)]
    # Re-fired with new identifiers, the same change is stale by its changelog id.
    answers += [signed_post(sync, delivery["payload"], f"other-{n}").status_code
                for n in range(2)]
    assert answers == [202, 200, 200, 202, 202]
    sync.settle()
    assert [w["json"] for w in sync.qalita_writes()] == [{"status": "active"}]


def test_deliveries_in_any_order_end_in_the_same_state(make):
    import random
    sync = make()
    issues = [sync.qalita_new(title=f"issue {n}") for n in range(3)]
    sync.settle()
    sync.hold()
    keys = [sync.jira_issue_of(i["id"])["id"] for i in issues]
    for key in keys:
        sync.transition(key, "Start Progress")
        sync.transition(key, "Done")
        sync.transition(key, "Reopen")
        sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [{"add": "a"}]}})
        sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [{"add": "b"}]}})
        sync.as_person("PUT", f"/issue/{key}", {"update": {"labels": [{"remove": "a"}]}})
    deliveries = captured(sync, "jira:issue_updated")
    random.Random(7).shuffle(deliveries)
    for delivery in deliveries:
        assert signed_post(sync, delivery["payload"], delivery["id"]).status_code == 202
    sync.settle()
    for issue in issues:
        seen = sync.qalita_issue(issue["id"])
        assert (seen["status"], seen["tags"]) == ("open", ["b"]), seen


def sim_act(sync, path: str, body: dict | None = None, method: str = "POST"):
    import requests
    response = requests.request(method, f"{sync.jira.base_url}/_sim/issues/{path}",
                                json=body, timeout=10)
    assert response.status_code < 300, response.text
    return response.json()


def test_a_moved_issue_is_followed_by_its_id(make, database):
    from sqlalchemy import select

    from jira_sync.store.models import IssueLink
    sync = make()
    issue = sync.qalita_new()
    sync.settle()
    first = sync.jira_issue_of(issue["id"])
    sim_act(sync, f"{first['key']}/move", {"as": "bo@example.com", "project": "OPS"})
    sync.settle()
    with database.unit_of_work() as session:
        link = session.scalars(select(IssueLink)).one()
    assert (link.jira_issue_id, link.jira_issue_key, link.jira_project_key) == (
        first["id"], "OPS-1", "OPS")
    sim_act(sync, "OPS-1/transition", {"as": "bo@example.com", "status": "In Progress"})
    sync.qalita_change(issue["id"], title="Moved and renamed", dataset=None)
    sync.settle()
    assert sync.qalita_issue(issue["id"])["status"] == "active"
    assert sync.jira_issue_of(issue["id"])["summary"] == "Moved and renamed"
    assert sync.jira_issue_of(issue["id"])["key"] == "OPS-1"


def test_comment_deliveries_that_follow_a_deletion_are_ignored(make):
    sync = make(mapping={"on_jira_delete": "tombstone"})
    issue = sync.qalita_new()
    sync.settle()
    key = sync.jira_issue_of(issue["id"])["key"]
    sim_act(sync, f"{key}/comments", {"as": "bo@example.com", "body": "one"})
    sim_act(sync, f"{key}/comments", {"as": "bo@example.com", "body": "two"})
    sync.settle()
    assert len(sync.qalita_issue(issue["id"])["comments"]) == 2
    sim_act(sync, f"{key}?as=bo@example.com", method="DELETE")
    sync.settle()
    comments = sync.qalita_issue(issue["id"])["comments"]
    # The two comments stay; one more says the Jira issue is gone.
    assert [c["body"] for c in comments][:2] == ["one", "two"] and len(comments) == 3
    assert [w["method"] for w in sync.qalita_writes()] == ["POST", "POST", "POST"]
