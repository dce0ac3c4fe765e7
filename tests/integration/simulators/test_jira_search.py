"""Search: index lag, paging on both deployments, the removed Cloud endpoint, and JQL."""

from __future__ import annotations

import time

import pytest

from .conftest import Jira


def keys(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [issue["key"] for issue in response.json()["issues"]]


def test_new_issue_is_searchable_only_after_the_index_lag(simulate) -> None:
    for deployment in ("cloud", "server"):
        jira = simulate(deployment, index_lag_ms=300)
        created = jira.create(labels=["qalita-id-default-1"])
        fields = {"fields": "summary"} if jira.cloud else {}
        assert keys(jira.search('labels = "qalita-id-default-1"', **fields)) == []
        assert jira.get(f"/issue/{created['id']}").status_code == 200  # reads are immediate
        time.sleep(0.35)
        assert keys(jira.search('labels = "qalita-id-default-1"', **fields)) == [created["key"]]


def test_reconcile_issues_reads_its_own_writes(simulate) -> None:
    jira = simulate("cloud", index_lag_ms=60000)
    created = jira.create(labels=["fresh"])
    assert jira.search('labels = "fresh"').json()["issues"] == []
    found = jira.search('labels = "fresh"', reconcileIssues=created["id"]).json()["issues"]
    assert found == [{"id": created["id"]}]


def test_cloud_search_jql_pages_with_tokens(cloud: Jira) -> None:
    created = [cloud.create(summary=f"issue {n}", labels=["batch"]) for n in range(7)]
    ids, token, pages = [], None, 0
    while True:
        params = {"maxResults": 3, **({"nextPageToken": token} if token else {})}
        body = cloud.search('labels = batch ORDER BY key ASC', **params).json()
        pages += 1
        ids += [issue["id"] for issue in body["issues"]]
        assert set(body) <= {"issues", "nextPageToken", "isLast"}
        assert all(set(issue) == {"id"} for issue in body["issues"])  # fields default: id only
        if body["isLast"]:
            assert "nextPageToken" not in body
            break
        token = body["nextPageToken"]
    assert pages == 3 and ids == [c["id"] for c in created]
    posted = cloud.post("/search/jql", {"jql": "project = DATA", "fields": ["summary"],
                                        "maxResults": 2}).json()
    assert posted["isLast"] is False and posted["nextPageToken"]
    assert set(posted["issues"][0]) == {"expand", "id", "self", "key", "fields"}
    assert set(posted["issues"][0]["fields"]) == {"summary"}
    bad = cloud.search("project = DATA", nextPageToken="garbage")
    assert bad.status_code == 400


def test_server_search_pages_with_start_at_and_total(server: Jira) -> None:
    for n in range(5):
        server.create(summary=f"issue {n}")
    first = server.search("project = DATA ORDER BY key ASC", maxResults=2).json()
    assert (first["startAt"], first["maxResults"], first["total"]) == (0, 2, 5)
    assert [i["key"] for i in first["issues"]] == ["DATA-1", "DATA-2"]
    assert "summary" in first["issues"][0]["fields"]
    last = server.post("/search", {"jql": "project = DATA ORDER BY key ASC", "startAt": 4,
                                   "maxResults": 2, "fields": ["labels"]}).json()
    assert [i["key"] for i in last["issues"]] == ["DATA-5"]
    assert set(last["issues"][0]["fields"]) == {"labels"}
    assert server.search("").json()["total"] == 5  # Server allows unbounded queries


def test_old_cloud_search_is_gone(cloud: Jira) -> None:
    for version in (2, 3):
        for method in ("get", "post"):
            response = getattr(cloud.session, method)(
                f"{cloud.base_url}/rest/api/{version}/search", timeout=5,
                **({"params": {"jql": "project = DATA"}} if method == "get"
                   else {"json": {"jql": "project = DATA"}}))
            assert response.status_code == 410
            assert response.json()["errorMessages"][0].startswith(
                "The requested API has been removed. Please migrate to the "
                "/rest/api/3/search/jql API.")
    assert cloud.session.get(f"{cloud.api}/search/jql", timeout=5).status_code == 400


@pytest.mark.parametrize("jql", ["", "ORDER BY key", "order by updated DESC"])
def test_cloud_refuses_unbounded_queries(cloud: Jira, jql: str) -> None:
    response = cloud.search(jql)
    assert response.status_code == 400
    assert "Unbounded JQL queries are not allowed" in response.json()["errorMessages"][0]


def test_jql_clauses(jira: Jira) -> None:
    first = jira.create(labels=['quote"d', "back\\slash", "qalita"])
    second = jira.create(project="OPS", labels=["qalita"])
    third = jira.create(summary="Null rate above threshold")
    jira.post(f"/issue/{second['key']}/transitions", {"transition": {"id": "21"}})
    cases = {
        r'labels = "quote\"d"': [first],
        r'labels = "back\\slash"': [first],
        "labels = qalita AND project = OPS": [second],
        'project = "DATA" ORDER BY key DESC': [third, first],
        f'key in ({first["key"]}, "{second["key"]}") ORDER BY key': [first, second],
        f'id in ({third["id"]}, {first["id"]}) ORDER BY created ASC': [first, third],
        'status = "In Progress"': [second],
        "statusCategory = done": [],
        'labels = qalita OR summary ~ "null rate" ORDER BY key ASC': [first, third, second],
        "project = DATA AND NOT labels = qalita": [third],
        "(project = OPS OR labels = nothing) AND labels is not EMPTY": [second],
        'updated >= "2000-01-01 00:00" AND project = OPS': [second],
        'updated >= "2000/01/01 00:00" AND created >= "2000-01-01"': [first, second, third],
        'updated >= "-15m" AND project = OPS': [second],
        'updated <= "-1d"': [],
    }
    for jql, expected in cases.items():
        got = keys(jira.search(jql, fields="key"))
        if "ORDER BY" in jql:
            assert got == [e["key"] for e in expected], jql
        else:
            assert sorted(got) == sorted(e["key"] for e in expected), jql


@pytest.mark.parametrize(("jql", "message"), [
    ("project = ", "Expecting either a value, list or function"),
    ("project DATA", "Expecting operator but got 'DATA'"),
    ('labels = "unterminated', "has not been completed"),
    ("project = DO", "'DO' is a reserved JQL word"),
    ("updated >= 2026/01/01", "reserved JQL character"),
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
    ("status = Nope", "The value 'Nope' does not exist for the field 'status'."),
    ("key = DATA-999", "An issue with key 'DATA-999' does not exist for field 'key'."),
    ("key = NOPE-1", "The issue key 'NOPE-1' for field 'key' is invalid."),
    ('updated >= "yesterday"', "Date value 'yesterday' for field 'updated' is invalid."),
    ("colour = red", "Field 'colour' does not exist"),
    ("labels > x", "The operator '>' is not supported by the 'labels' field."),
    ("project = DATA ORDER BY colour", "Field 'colour' does not exist"),
    ("(project = DATA", "Expecting ')'"),
    ("project = DATA AND", "Expecting a field name"),
    ("updated >= now()", "Unable to find JQL function 'now()'"),
])
def test_jql_errors_are_400_like_jira(jira: Jira, jql: str, message: str) -> None:
    response = jira.search(jql)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"] == {}
    assert message in body["errorMessages"][0], body


def test_deleted_issues_leave_the_index(jira: Jira) -> None:
    created = jira.create(labels=["gone"])
    jira.delete(f"/issue/{created['key']}")
    assert keys(jira.search("labels = gone", fields="key")) == []


# -- issue ids: Server checks them, Cloud does not ---------------------------------------------


def test_server_refuses_an_id_that_does_not_exist(server: Jira) -> None:
    created = server.create()
    gone = server.create()
    server.delete(f"/issue/{gone['id']}")
    for jql, missing in ((f"id in ({created['id']}, 99999)", "99999"),
                         (f"id = {gone['id']}", gone["id"])):
        response = server.search(jql)
        assert response.status_code == 400, jql
        assert response.json()["errorMessages"] == [
            f"A value with ID '{missing}' does not exist for the field 'id'."]
    assert keys(server.search(f"id = {created['id']}")) == [created["key"]]


def test_server_validate_query_false_warns_and_matches_nothing_for_it(server: Jira) -> None:
    created = server.create()
    jql = f"id in ({created['id']}, 99999) OR key = DATA-77"
    got = server.search(jql, validateQuery="false").json()
    assert [i["key"] for i in got["issues"]] == [created["key"]]
    assert got["warningMessages"] == [
        "A value with ID '99999' does not exist for the field 'id'.",
        "An issue with key 'DATA-77' does not exist for field 'key'."]
    posted = server.post("/search", {"jql": jql, "validateQuery": False}).json()
    assert [i["key"] for i in posted["issues"]] == [created["key"]]
    quiet = server.search(jql, validateQuery="none").json()
    assert "warningMessages" not in quiet and quiet["total"] == 1
    assert server.search(jql, validateQuery="strict").status_code == 400
    assert server.post("/search", {"jql": jql, "validateQuery": True}).status_code == 400
    assert server.search(jql, validateQuery="maybe").status_code == 400


def test_cloud_lets_an_unknown_id_match_nothing(cloud: Jira) -> None:
    created = cloud.create()
    assert keys(cloud.search(f"id in ({created['id']}, 99999)", fields="key")) == [
        created["key"]]
    assert keys(cloud.search("id = 99999", fields="key")) == []


# -- the reconciliation sweep's query -----------------------------------------------------------


@pytest.mark.parametrize("since", ["-15m", "-1d", "-2h", "-1w"])
def test_relative_dates_with_projects_in_and_updated_ascending(jira: Jira, since: str) -> None:
    first = jira.create()
    second = jira.create(project="OPS")
    time.sleep(0.01)
    jira.put(f"/issue/{first['key']}", {"fields": {"summary": "touched last"}})
    jql = f'updated >= "{since}" AND project in ("DATA", "OPS") ORDER BY updated ASC'
    assert keys(jira.search(jql, fields="key")) == [second["key"], first["key"]]
    descending = jql.replace("ASC", "DESC")
    assert keys(jira.search(descending, fields="key")) == [first["key"], second["key"]]
    older = f'updated < "{since}" AND project in ("DATA", "OPS") ORDER BY updated ASC'
    assert keys(jira.search(older, fields="key")) == []


def test_keys_a_moved_issue_had_still_find_it(jira: Jira) -> None:
    created = jira.create()
    jira.act(f"{created['key']}/move", {"project": "OPS"})
    assert keys(jira.search("key = DATA-1", fields="key")) == ["OPS-1"]
    assert keys(jira.search("key in (DATA-1, OPS-1)", fields="key")) == ["OPS-1"]
    assert keys(jira.search("issuekey = data-1", fields="key")) == ["OPS-1"]
