"""The changelog as a readable history: every change after creation is kept under the id its
webhook carried, and read back through expand=changelog, /changelog and searches."""

from __future__ import annotations

import pytest

from . import oas
from .conftest import ANA, Jira, Receiver

ACCOUNT = {"ana": "712020:ana-0001", "svc": "712020:svc-0000"}


def make_history(jira: Jira) -> str:
    """Four changes by REST and one by a person; comments and creation write no history."""
    key = jira.create(labels=["qalita"])["key"]
    jira.put(f"/issue/{key}", {"fields": {"summary": "Renamed"}})
    jira.as_user(ANA).put(f"/issue/{key}/assignee", jira.user_ref("bo"))
    jira.post(f"/issue/{key}/transitions", {"transition": {"id": "21"}})
    jira.post(f"/issue/{key}/comment", {"body": jira.text("no history for me")})
    jira.put(f"/issue/{key}", {"fields": {"summary": "Renamed"}})  # no change, no history
    jira.act(f"{key}/edit", {"as": "bo@example.com", "add_labels": ["triaged"]})
    return key


def summary(histories: list[dict]) -> list[tuple[str, list[str]]]:
    return [(h["id"], [i["fieldId"] for i in h["items"]]) for h in histories]


@pytest.fixture(params=["cloud", "server"])
def site(request: pytest.FixtureRequest, hooked) -> Jira:
    return hooked(request.param)


def test_histories_carry_the_ids_their_webhooks_carried(site: Jira, receiver: Receiver) -> None:
    key = make_history(site)
    site.flush()
    sent = [(b["changelog"]["id"], [i["fieldId"] for i in b["changelog"]["items"]])
            for b in receiver.bodies()
            if b["webhookEvent"] == "jira:issue_updated" and "changelog" in b]
    assert [fields for _, fields in sent] == [["summary"], ["assignee"], ["status"], ["labels"]]
    issue = site.get(f"/issue/{key}", params={"expand": "changelog"}).json()
    changelog = issue["changelog"]
    assert summary(changelog["histories"]) == sent
    assert (changelog["startAt"], changelog["maxResults"], changelog["total"]) == (0, 4, 4)
    authors = [h["author"]["displayName"] for h in changelog["histories"]]
    assert authors == ["jira-sync", "Ana", "jira-sync", "Bo"]
    assert all(h["created"].endswith("+0000") for h in changelog["histories"])
    assignee = changelog["histories"][1]["items"][0]
    assert (assignee["fromString"], assignee["toString"]) == (None, "Bo")
    inspected = site.sim(f"/issues/{key}")["histories"]
    assert [(h["id"], h["author"]) for h in inspected] == [
        (h["id"], a) for h, a in zip(changelog["histories"], [
            "svc@example.com", "ana@example.com", "svc@example.com", "bo@example.com"],
            strict=True)]


def test_no_changelog_without_expand(jira: Jira) -> None:
    key = make_history(jira)
    assert "changelog" not in jira.get(f"/issue/{key}").json()
    with_fields = jira.get(f"/issue/{key}", params={"expand": "names,changelog",
                                                   "fields": "summary"}).json()
    assert set(with_fields["fields"]) == {"summary"} and with_fields["changelog"]["total"] == 4


def test_cloud_issue_with_changelog_fits_the_openapi_document(cloud: Jira) -> None:
    key = make_history(cloud)
    issue = cloud.get(f"/issue/{key}", params={"expand": "changelog"}).json()
    assert oas.errors("IssueBean", issue) == []
    assert issue["changelog"]["histories"][1]["items"][0]["tmpToAccountId"] == (
        "712020:bo-0002")


def test_cloud_changelog_endpoint_pages_oldest_first(cloud: Jira) -> None:
    key = make_history(cloud)
    everything = cloud.get(f"/issue/{key}/changelog").json()
    assert oas.errors("PageBeanChangelog", everything) == []
    assert (everything["startAt"], everything["maxResults"], everything["total"],
            everything["isLast"]) == (0, 100, 4, True)
    assert "nextPage" not in everything
    ids = [h["id"] for h in everything["values"]]
    assert ids == sorted(ids, key=int)
    first = cloud.get(f"/issue/{key}/changelog", params={"startAt": 1, "maxResults": 2}).json()
    assert [h["id"] for h in first["values"]] == ids[1:3]
    assert first["isLast"] is False and first["total"] == 4
    assert first["self"].endswith(f"/rest/api/3/issue/{key}/changelog?startAt=1&maxResults=2")
    assert first["nextPage"].endswith("?startAt=3&maxResults=2")
    assert cloud.get("/issue/DATA-99/changelog").status_code == 404
    by_id = cloud.get(f"/issue/{cloud.get(f'/issue/{key}').json()['id']}/changelog").json()
    assert by_id["values"] == everything["values"]


def test_server_has_no_changelog_endpoint(server: Jira) -> None:
    key = make_history(server)
    assert server.get(f"/issue/{key}/changelog").status_code == 404


def test_cloud_search_expands_changelog_from_a_string(cloud: Jira) -> None:
    key = make_history(cloud)
    got = cloud.search(f"key = {key}", fields="summary", expand="changelog").json()
    assert got["issues"][0]["changelog"]["total"] == 4
    ids_only = cloud.search(f"key = {key}", expand="renderedFields,changelog").json()
    assert set(ids_only["issues"][0]) == {"id", "changelog"}
    posted = cloud.post("/search/jql", {"jql": f"key = {key}", "fields": ["summary"],
                                        "expand": "changelog"}).json()
    assert summary(posted["issues"][0]["changelog"]["histories"]) == summary(
        got["issues"][0]["changelog"]["histories"])
    assert oas.errors("SearchAndReconcileResults", posted) == []
    assert "changelog" not in cloud.search(f"key = {key}", fields="summary").json()["issues"][0]
    as_list = cloud.post("/search/jql", {"jql": f"key = {key}", "expand": ["changelog"]})
    assert as_list.status_code == 400


def test_server_search_expands_changelog(server: Jira) -> None:
    key = make_history(server)
    got = server.search(f"key = {key}", expand="changelog").json()
    assert got["issues"][0]["changelog"]["total"] == 4
    posted = server.post("/search", {"jql": f"key = {key}", "expand": ["changelog"]}).json()
    assert posted["issues"][0]["changelog"] == got["issues"][0]["changelog"]
    assert "changelog" not in server.search(f"key = {key}").json()["issues"][0]
