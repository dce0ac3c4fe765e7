"""Every /rest write in the call log says whether it changed the site, so a test can assert
that a client never writes what Jira already holds. Reads say nothing (null)."""

from __future__ import annotations

import contextlib

import requests

from .conftest import Jira


def changed(jira: Jira) -> list[bool | None]:
    """Each logged call's ``changed``, in order."""
    return [call["changed"] for call in jira.sim("/calls")]


def test_writes_that_restate_the_current_state_change_nothing(jira: Jira) -> None:
    key = jira.create(labels=["qalita"], assignee=jira.user_ref("ana"))["key"]
    issue = f"/issue/{key}"
    jira.put(issue, {"fields": {"summary": "Orders table is stale"},
                     "update": {"labels": [{"add": "qalita"}]}})
    jira.put(issue, {"fields": {"summary": "New title"}})
    jira.put(f"{issue}/assignee", jira.user_ref("ana"))
    jira.put(f"{issue}/assignee", jira.user_ref("bo"))
    comment = jira.post(f"{issue}/comment", {"body": jira.text("hi")}).json()["id"]
    jira.put(f"{issue}/comment/{comment}", {"body": jira.text("hi")})
    jira.put(f"{issue}/comment/{comment}", {"body": jira.text("hello")})
    jira.delete(f"{issue}/comment/{comment}")
    jira.put(f"{issue}/properties/qalita", {"id": 1})
    jira.put(f"{issue}/properties/qalita", {"id": 1})
    jira.put(f"{issue}/properties/qalita", {"id": 2})
    jira.delete(f"{issue}/properties/qalita")
    jira.put(issue, {"properties": [{"key": "p", "value": 1}]})
    jira.put(issue, {"properties": [{"key": "p", "value": 1}]})
    jira.post(f"{issue}/transitions", {"transition": {"id": "21"}})
    jira.delete(issue)
    assert changed(jira) == [
        True, False, True, False, True, True, False, True, True, True, False, True, True,
        True, False, True, True]


def test_reads_and_refused_writes(jira: Jira) -> None:
    key = jira.create()["key"]
    jira.get(f"/issue/{key}")
    jira.search("project = DATA", fields="key")
    if jira.cloud:
        jira.post("/search/jql", {"jql": "project = DATA"})
        jira.post("/issue/bulkfetch", {"issueIdsOrKeys": [key]})
    else:
        jira.post("/search", {"jql": "project = DATA"})
    jira.put(f"/issue/{key}", {"fields": {"labels": ["two words"]}})  # 400
    jira.post(f"/issue/{key}/transitions", {"transition": {"id": "31"}})  # not available
    requests.put(f"{jira.api}/issue/{key}", json={"fields": {"summary": "x"}}, timeout=5)  # 401
    jira.delete("/issue/DATA-99")  # 404
    reads = 4 if jira.cloud else 3
    assert changed(jira) == [True, *[None] * reads, *[False] * 4]
    assert jira.sim("/issues")[0]["summary"] == "Orders table is stale"


def test_a_fault_after_the_change_still_counts_as_changed(simulate) -> None:
    jira = simulate("cloud", fail_rate=1.0, seed=42)
    for n in range(12):
        with contextlib.suppress(requests.ConnectionError):
            jira.post("/issue", {"fields": {"project": {"key": "DATA"},
                                            "issuetype": {"name": "Bug"}, "summary": f"{n}"}})
    calls = jira.sim("/calls")
    assert {c["fault"] for c in calls} == {"before", "after"}
    assert all(c["changed"] is (c["fault"] == "after") for c in calls)


def test_sim_actions_are_not_logged_as_calls(cloud: Jira) -> None:
    key = cloud.create()["key"]
    cloud.act(f"{key}/edit", {"summary": "by a person"})
    assert len(cloud.sim("/calls")) == 1
