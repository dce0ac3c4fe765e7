"""The QALITA simulator over real HTTP, driven by the real adapter, publishing to real Redis."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import requests

from jira_sync.publish import QALITA_EVENT_TASK, QALITA_QUEUE
from jira_sync.qalita import QalitaClient
from jira_sync.remote import AuthError, PermanentError, RateLimited, RetryPolicy, TransientError
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.support.processes import ServiceProcess, clean_env, free_port

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base_seconds=0.01, cap_seconds=0.02, timeout=(2.0, 5.0))
EVENT_TYPES = {"issue.created", "issue.updated", "issue.deleted", "issue.comment_created",
               "issue.comment_updated", "issue.comment_deleted"}


@pytest.fixture
def sim():
    with running_qalita_simulator(QalitaSimulatorConfig()) as running:
        yield running


@pytest.fixture
def client(sim) -> QalitaClient:
    return QalitaClient(sim.base_url, "qalita-tok", policy=FAST)


def control(sim, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
    response = requests.request(method, sim.base_url + path, json=body, timeout=10)
    if expect is not None:
        assert response.status_code == expect, response.text
    return response.json() if response.content else None


def new_issue(sim, **fields: Any) -> dict[str, Any]:
    return control(sim, "POST", "/_sim/issues", {"title": "Orders table is stale", **fields},
                   expect=201)["event"]["issue"]


def count(sim, method: str, path: str) -> int:
    return control(sim, "GET", f"/_sim/calls/count?method={method}&path={path}")["count"]


# Each adapter call against the simulator.

def test_reading_issues(sim, client):
    first = new_issue(sim, dataset="orders", severity="high")
    second = new_issue(sim)
    assert client.get_issue(first["id"]) == {**first}
    assert [issue["id"] for issue in client.list_issues(0, 10)] == [first["id"], second["id"]]
    assert [issue["id"] for issue in client.list_issues(1, 10)] == [second["id"]]
    assert client.get_issue(999) is None


def test_iterating_issues_walks_every_page(sim, client):
    ids = [new_issue(sim)["id"] for _ in range(5)]
    assert [issue["id"] for issue in client.iter_issues(page_size=2)] == ids
    assert count(sim, "GET", "/api/v2/issues") == 3


def test_a_deleted_issue_is_gone(sim, client):
    issue = new_issue(sim)
    control(sim, "DELETE", f"/_sim/issues/{issue['id']}", expect=200)
    assert client.get_issue(issue["id"]) is None
    assert control(sim, "GET", "/_sim/calls?method=GET")[-1]["status"] == 204
    assert client.list_issues(0, 10) == []


def test_updating_an_issue_bumps_its_version(sim, client):
    issue = new_issue(sim)
    client.update_issue(issue["id"], {"status": "resolved", "labels": ["x"],
                                      "assignee_email": "bo@example.com"})
    stored = client.get_issue(issue["id"])
    assert stored["status"] == "resolved" and stored["tags"] == ["x"]
    assert stored["owner"] == {"email": "bo@example.com", "name": "Bo"}
    assert stored["version"] == issue["version"] + 1
    assert not {"assignee_email", "labels"} & set(stored)


def test_comments_round_trip(sim, client):
    issue = new_issue(sim)
    comment_id = client.add_comment(issue["id"], "root cause found", "jira:10042", "Bo")
    client.edit_comment(issue["id"], comment_id, "root cause fixed")
    [comment] = control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"]
    assert comment["id"] == comment_id and comment["body"] == "root cause fixed"
    assert comment["external_id"] == "jira:10042" and comment["author_name"] == "Bo"
    assert comment["origin"] == "jira-sync"
    client.delete_comment(issue["id"], comment_id)
    client.delete_comment(issue["id"], comment_id)  # already gone: still done
    assert control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"] == []
    assert [c["status"] for c in control(sim, "GET", "/_sim/calls?method=DELETE")] == [204, 404]


def test_a_repeated_comment_post_is_a_duplicate_as_in_qalita(sim, client):
    issue = new_issue(sim)
    first = client.add_comment(issue["id"], "same", "jira:1", "Bo")
    second = client.add_comment(issue["id"], "same", "jira:1", "Bo")
    assert first != second
    comments = control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"]
    assert [c["external_id"] for c in comments] == ["jira:1", "jira:1"]


def test_calls_are_recorded_with_the_origin_on_writes(sim, client):
    issue = new_issue(sim)
    client.get_issue(issue["id"])
    client.update_issue(issue["id"], {"title": "new"})
    calls = control(sim, "GET", "/_sim/calls")
    assert [(c["method"], c["path"], c["origin"]) for c in calls] == [
        ("GET", f"/api/v2/issues/{issue['id']}", None),
        ("PUT", f"/api/v2/issues/{issue['id']}", "jira-sync"),
    ]
    assert calls[1]["json"] == {"title": "new"} and calls[1]["status"] == 200
    assert [c["changed"] for c in calls] == [None, True]
    assert calls[0]["authenticated"] is True and calls[0]["time"].endswith("Z")
    assert count(sim, "PUT", "/api/v2/issues/*") == 1
    control(sim, "POST", "/_sim/reset", expect=200)
    assert control(sim, "GET", "/_sim/calls") == [] and control(sim, "GET", "/_sim/issues") == []


# Writes applied as QALITA applies them.

def put(sim, issue_id: int, body: Any, origin: str = "jira-sync") -> requests.Response:
    """A PUT sent raw, so a test chooses the body and the origin header."""
    return requests.put(f"{sim.base_url}/api/v2/issues/{issue_id}", json=body, timeout=10,
                        headers={"Authorization": "Bearer qalita-tok",
                                 "X-Qalita-Origin": origin})


def test_assignee_email_sets_the_owner(sim, client):
    issue = new_issue(sim, owner={"email": "ana@example.com", "name": "Ana Lima"})
    # QALITA learns people from the owners and comment authors its users set.
    new_issue(sim, owner={"email": "ana@example.com", "name": "Ana"})
    other = new_issue(sim, owner={"email": "eve@example.com", "name": "Eve"})
    control(sim, "PATCH", f"/_sim/issues/{other['id']}",
            {"owner": {"email": "cy@example.com", "name": "Cy"}}, expect=200)
    control(sim, "POST", f"/_sim/issues/{issue['id']}/comments",
            {"body": "hi", "author": {"email": "di@example.com", "name": "Di"}}, expect=201)

    def owner_after(email: str | None) -> Any:
        client.update_issue(issue["id"], {"assignee_email": email, "title": f"to {email}"})
        return client.get_issue(issue["id"])["owner"]

    # The same e-mail keeps the owner's own name, not the one the directory has for it.
    assert owner_after("ana@example.com") == {"email": "ana@example.com", "name": "Ana Lima"}
    assert owner_after("bo@example.com") == {"email": "bo@example.com", "name": "Bo"}
    assert owner_after("cy@example.com") == {"email": "cy@example.com", "name": "Cy"}
    assert owner_after("di@example.com") == {"email": "di@example.com", "name": "Di"}
    assert owner_after("eve@example.com") == {"email": "eve@example.com", "name": "Eve"}
    assert owner_after("zed@example.com") == {"email": "zed@example.com", "name": None}
    assert owner_after(None) is None
    shown = control(sim, "GET", f"/_sim/issues/{issue['id']}")
    assert shown["owner"] is None and shown["title"] == "to None"
    assert not {"assignee_email", "labels"} & set(shown)


def test_labels_set_the_tags(sim, client):
    issue = new_issue(sim, tags=["finance"])
    client.update_issue(issue["id"], {"labels": ["finance", "triaged"]})
    assert client.get_issue(issue["id"])["tags"] == ["finance", "triaged"]
    client.update_issue(issue["id"], {"labels": []})
    [listed] = client.list_issues(0, 10)
    assert listed["tags"] == [] and "labels" not in listed


def test_sim_refuses_the_put_only_keys(sim):
    issue = new_issue(sim)
    for key, field in (("assignee_email", "owner"), ("labels", "tags")):
        answer = control(sim, "PATCH", f"/_sim/issues/{issue['id']}", {key: None}, expect=422)
        assert answer["detail"][0]["loc"] == ["body", key]
        assert repr(field) in answer["detail"][0]["msg"]
    control(sim, "POST", "/_sim/issues", {"title": "t", "labels": ["x"]}, expect=422)


def test_a_write_that_restates_qalita_changes_nothing(sim, client):
    issue = new_issue(sim, owner={"email": "ana@example.com", "name": "Ana"}, tags=["a"])
    same = {"status": "open", "title": issue["title"], "description": "",
            "assignee_email": "ana@example.com", "labels": ["a"]}
    assert put(sim, issue["id"], same).json() == issue
    client.update_issue(issue["id"], {**same, "status": "active"})
    assert client.get_issue(issue["id"])["version"] == issue["version"] + 1
    comment_id = client.add_comment(issue["id"], "hello", "jira:1", "Bo")
    before = control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"]
    client.edit_comment(issue["id"], comment_id, "hello")
    assert control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"] == before
    client.edit_comment(issue["id"], comment_id, "hello again")
    client.delete_comment(issue["id"], comment_id)
    client.delete_comment(issue["id"], comment_id)  # 404: gone already, nothing changed
    writes = [(c["method"], c["status"], c["changed"])
              for c in control(sim, "GET", "/_sim/calls") if c["method"] != "GET"]
    assert writes == [("PUT", 200, False), ("PUT", 200, True), ("POST", 201, True),
                      ("PUT", 200, False), ("PUT", 200, True), ("DELETE", 204, True),
                      ("DELETE", 404, False)]


def test_a_write_that_fails_is_recorded_as_no_change(sim, client):
    issue = new_issue(sim)
    assert put(sim, issue["id"], {"status": "closed"}).status_code == 422
    assert put(sim, 999, {"title": "t"}).status_code == 404
    control(sim, "POST", "/_sim/faults", {"status": 500, "method": "PUT"}, expect=201)
    control(sim, "POST", "/_sim/faults", {"status": 502, "method": "PUT", "applied": True},
            expect=201)
    assert put(sim, issue["id"], {"title": "once"}).status_code == 500
    assert put(sim, issue["id"], {"title": "twice"}).status_code == 502
    assert client.get_issue(issue["id"])["title"] == "twice"
    assert [c["changed"] for c in control(sim, "GET", "/_sim/calls")] == [
        False, False, False, True, None]


# Errors, as the adapter sees them.

def test_a_wrong_token_is_an_auth_error(sim):
    with pytest.raises(AuthError, match="Not authenticated") as caught:
        QalitaClient(sim.base_url, "wrong-token", policy=FAST).get_issue(1)
    assert "wrong-token" not in str(caught.value)
    assert count(sim, "GET", "/api/v2/issues/1") == 1
    assert requests.get(sim.base_url + "/api/v2/issues", timeout=5).status_code == 401


def test_503_faults_are_retried_then_succeed(sim, client):
    issue = new_issue(sim)
    control(sim, "POST", "/_sim/faults", {"status": 503, "count": 2}, expect=201)
    assert client.get_issue(issue["id"])["id"] == issue["id"]
    assert [c["status"] for c in control(sim, "GET", "/_sim/calls")] == [503, 503, 200]
    control(sim, "POST", "/_sim/faults", {"status": 502, "method": "PUT"}, expect=201)
    client.update_issue(issue["id"], {"title": "t"})
    assert count(sim, "PUT", f"/api/v2/issues/{issue['id']}") == 2


def test_a_comment_post_is_not_retried_after_a_503(sim, client):
    issue = new_issue(sim)
    control(sim, "POST", "/_sim/faults", {"status": 503, "applied": True}, expect=201)
    with pytest.raises(TransientError) as caught:
        client.add_comment(issue["id"], "hello", "jira:7", "Bo")
    assert caught.value.maybe_applied is True
    assert count(sim, "POST", f"/api/v2/issues/{issue['id']}/comments") == 1
    # The fault came after the comment was stored, as a struggling server may do.
    assert len(control(sim, "GET", f"/_sim/issues/{issue['id']}")["comments"]) == 1


def test_an_html_200_is_a_clear_permanent_error(sim, client):
    control(sim, "POST", "/_sim/faults", {"status": 200, "body": "<html>Sign in</html>",
                                          "content_type": "text/html"}, expect=201)
    with pytest.raises(PermanentError, match=r"non-JSON body \(text/html\).*QALITA_API_URL"):
        client.get_issue(1)


def test_a_long_retry_after_reaches_the_caller(sim, client):
    control(sim, "POST", "/_sim/faults", {"status": 429, "retry_after": 60}, expect=201)
    with pytest.raises(RateLimited) as caught:
        client.list_issues(0, 10)
    assert caught.value.retry_after == 60


def test_a_bad_update_is_a_422_with_qalitas_message(sim, client):
    issue = new_issue(sim)
    with pytest.raises(PermanentError, match="status: value is not a valid enumeration") as e:
        client.update_issue(issue["id"], {"status": "closed"})
    assert e.value.status == 422
    with pytest.raises(PermanentError, match="labels: value is not a valid list of strings"):
        client.update_issue(issue["id"], {"labels": "a,b"})
    response = requests.put(f"{sim.base_url}/api/v2/issues/{issue['id']}",
                            json={"severity": "high"}, timeout=5,
                            headers={"Authorization": "Bearer qalita-tok"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "severity"]
    assert client.get_issue(issue["id"])["version"] == issue["version"]


def test_faults_can_be_aimed_at_one_path(sim, client):
    issue = new_issue(sim)
    control(sim, "POST", "/_sim/faults",
            {"status": 401, "path": "/api/v2/issues/*", "method": "put"}, expect=201)
    assert client.get_issue(issue["id"]) is not None
    with pytest.raises(AuthError):
        client.update_issue(issue["id"], {"title": "t"})
    assert control(sim, "GET", "/_sim/faults") == []


# /_sim changes publish CONTRACT §4 events.

def queued_events(broker_url: str) -> list[dict[str, Any]]:
    """The events waiting on the queue, oldest first (kombu LPUSHes onto a list per queue)."""
    messages = redis.Redis.from_url(broker_url).lrange(QALITA_QUEUE, 0, -1)
    events = []
    for raw in reversed(messages):
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == QALITA_EVENT_TASK
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        events.append(args[0])
    return events


def assert_valid_event(event: dict[str, Any]) -> None:
    assert event["schema"] == "qalita.issue.v1"
    assert event["event_type"] in EVENT_TYPES
    assert len(event["event_id"]) == 36 and event["occurred_at"].endswith("Z")
    assert isinstance(event["issue"]["id"], int) and isinstance(event["issue"]["version"], int)
    assert {"owner", "tags"} <= set(event["issue"])
    assert not {"assignee_email", "labels"} & set(event["issue"])
    if event["event_type"] in ("issue.created", "issue.updated"):
        assert event["issue"]["title"] and event["issue"]["status"] in (
            "open", "active", "resolved", "muted", "ignored")
    if event["event_type"].startswith("issue.comment_"):
        assert {"id", "body", "author", "created_at", "external_id"} <= set(event["comment"])
    else:
        assert event["comment"] is None


def test_sim_changes_publish_events(broker_url):
    config = QalitaSimulatorConfig(broker_url=broker_url, tenant="acme")
    with running_qalita_simulator(config) as sim:
        answers = [control(sim, "POST", "/_sim/issues", {"title": "Stale", "severity": "high"},
                           expect=201)]
        issue_id = answers[0]["event"]["issue"]["id"]
        answers.append(control(sim, "PATCH", f"/_sim/issues/{issue_id}", {"status": "active"},
                               expect=200))
        answers.append(control(sim, "POST", f"/_sim/issues/{issue_id}/comments",
                               {"body": "looking"}, expect=201))
        comment_id = answers[-1]["event"]["comment"]["id"]
        answers.append(control(sim, "PUT", f"/_sim/issues/{issue_id}/comments/{comment_id}",
                               {"body": "fixed"}, expect=200))
        answers.append(control(sim, "DELETE", f"/_sim/issues/{issue_id}/comments/{comment_id}",
                               expect=200))
        answers.append(control(sim, "POST", "/_sim/issues", {"id": issue_id, "title": "Stale!"},
                               expect=200))
        answers.append(control(sim, "DELETE", f"/_sim/issues/{issue_id}", expect=200))

    assert all(answer["published"] for answer in answers)
    events = queued_events(broker_url)
    assert {e["event_id"] for e in events} == {a["event"]["event_id"] for a in answers}
    events.sort(key=lambda e: [a["event"]["event_id"] for a in answers].index(e["event_id"]))
    assert [e["event_type"] for e in events] == [
        "issue.created", "issue.updated", "issue.comment_created", "issue.comment_updated",
        "issue.comment_deleted", "issue.updated", "issue.deleted"]
    for event in events:
        assert_valid_event(event)
        assert event["tenant"] == "acme" and event["origin"] == "qalita-sim"
    assert [e["issue"]["version"] for e in events] == [1, 2, 2, 2, 2, 3, 4]
    assert events[1]["issue"]["status"] == "active"
    assert events[2]["comment"]["author"] == {"email": "ana@example.com", "name": "Ana"}
    assert events[3]["comment"]["body"] == "fixed"


def test_api_writes_publish_events_by_default(broker_url):
    with running_qalita_simulator(QalitaSimulatorConfig(broker_url=broker_url)) as sim:
        issue = new_issue(sim)
        client = QalitaClient(sim.base_url, "qalita-tok", policy=FAST)
        client.update_issue(issue["id"], {"status": "resolved", "labels": ["x"],
                                          "assignee_email": "bo@example.com"})
        comment_id = client.add_comment(issue["id"], "from Jira", "jira:5", "Bo")
        client.edit_comment(issue["id"], comment_id, "from Jira, edited")
        client.delete_comment(issue["id"], comment_id)
        assert put(sim, issue["id"], {"title": "by hand"}, origin="qalita-ui").status_code == 200
    events = queued_events(broker_url)
    assert [(e["event_type"], e["origin"], e["issue"]["version"]) for e in events] == [
        ("issue.created", "qalita-sim", 1), ("issue.updated", "jira-sync", 2),
        ("issue.comment_created", "jira-sync", 2), ("issue.comment_updated", "jira-sync", 2),
        ("issue.comment_deleted", "jira-sync", 2), ("issue.updated", "qalita-ui", 3)]
    for event in events:
        assert_valid_event(event)
    assert events[1]["issue"]["owner"] == {"email": "bo@example.com", "name": "Bo"}
    assert events[1]["issue"]["tags"] == ["x"] and events[1]["issue"]["status"] == "resolved"
    assert [e["comment"]["external_id"] for e in events[2:5]] == ["jira:5"] * 3
    assert events[3]["comment"]["body"] == "from Jira, edited"
    assert events[2]["comment"]["author"] == {"email": None, "name": "Bo"}


def test_writes_that_change_nothing_publish_nothing(broker_url):
    with running_qalita_simulator(QalitaSimulatorConfig(broker_url=broker_url)) as sim:
        issue = new_issue(sim, tags=["a"])
        client = QalitaClient(sim.base_url, "qalita-tok", policy=FAST)
        client.update_issue(issue["id"], {"status": "open", "labels": ["a"],
                                          "assignee_email": None})
        comment_id = client.add_comment(issue["id"], "same", "jira:6", "Bo")
        client.edit_comment(issue["id"], comment_id, "same")
    assert [e["event_type"] for e in queued_events(broker_url)] == [
        "issue.created", "issue.comment_created"]


def test_api_events_can_be_switched_off(broker_url):
    config = QalitaSimulatorConfig(broker_url=broker_url, publish_api_writes=False)
    with running_qalita_simulator(config) as sim:
        issue = new_issue(sim)
        QalitaClient(sim.base_url, "qalita-tok", policy=FAST).update_issue(
            issue["id"], {"status": "resolved"})
        control(sim, "PATCH", f"/_sim/issues/{issue['id']}", {"status": "active"}, expect=200)
    assert [(e["event_type"], e["origin"]) for e in queued_events(broker_url)] == [
        ("issue.created", "qalita-sim"), ("issue.updated", "qalita-sim")]


def test_without_a_broker_the_event_is_returned_unpublished(sim):
    answer = control(sim, "POST", "/_sim/issues", {"title": "t"}, expect=201)
    assert answer["published"] is False
    assert_valid_event(answer["event"])


def test_an_unreachable_broker_is_reported_and_the_change_kept():
    config = QalitaSimulatorConfig(broker_url="redis://127.0.0.1:1/0")
    with running_qalita_simulator(config) as sim:
        response = requests.post(sim.base_url + "/_sim/issues", json={"title": "t"}, timeout=60)
        assert response.status_code == 502 and response.json()["published"] is False
        assert len(control(sim, "GET", "/_sim/issues")) == 1


def test_sim_refuses_bad_values(sim):
    answer = control(sim, "POST", "/_sim/issues", {"title": "t", "severity": "urgent"},
                     expect=422)
    assert answer["detail"][0]["loc"] == ["body", "severity"]
    control(sim, "PATCH", "/_sim/issues/42", {"status": "open"}, expect=404)


# The process.

@pytest.mark.parametrize(("flags", "published"), [
    ([], ["issue.created", "issue.updated"]),
    (["--no-api-events"], ["issue.created"]),
])
def test_the_command_publishes_api_events_unless_told_not_to(tmp_path, broker_url, flags,
                                                              published):
    port = free_port()
    process = ServiceProcess(
        ["simulate", "qalita", "--port", str(port), "--broker-url", broker_url, *flags],
        clean_env(), tmp_path / "qalita-sim.log")
    try:
        sim = SimpleNamespace(base_url=f"http://127.0.0.1:{port}")
        process.wait_http(f"{sim.base_url}/_sim/calls")
        issue = new_issue(sim)
        QalitaClient(sim.base_url, "qalita-tok", policy=FAST).update_issue(
            issue["id"], {"status": "resolved"})
        assert [e["event_type"] for e in queued_events(broker_url)] == published
        assert process.stop() == 0
    finally:
        process.kill()


def test_serve_returns_cleanly_on_sigterm():
    port = free_port()
    code = ("from jira_sync.simulators.qalita import QalitaSimulatorConfig, serve; "
            f"serve(QalitaSimulatorConfig(), port={port})")
    process = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_sim/issues", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, process.stderr
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
