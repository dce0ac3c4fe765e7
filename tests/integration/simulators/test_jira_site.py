"""What third-party clients read first (serverInfo, the field list) and Cloud's bulk fetch."""

from __future__ import annotations

import pytest
import requests

from jira_sync.simulators.jira import FieldDef, ProjectDef
from jira_sync.simulators.jira.config import DATA_WORKFLOW

from . import oas
from .conftest import SVC, Jira

JIRA_TIME_SUFFIX = "+0000"


def versions(jira: Jira) -> list[int]:
    """The REST versions a deployment answers serverInfo and field on."""
    return [2, 3] if jira.cloud else [2]


# -- serverInfo ----------------------------------------------------------------------------


def test_server_info_needs_no_authentication(jira: Jira) -> None:
    prefixes = [f"/rest/api/{v}" for v in versions(jira)]
    if not jira.cloud:
        prefixes.append("/rest/api/latest")
    for prefix in prefixes:
        response = requests.get(f"{jira.base_url}{prefix}/serverInfo", timeout=5)
        assert response.status_code == 200, prefix
        info = response.json()
        assert info["deploymentType"] == ("Cloud" if jira.cloud else "Server")
        assert info["baseUrl"] == jira.base_url and info["serverTitle"] == "Jira"
        assert info["versionNumbers"][0] == (1001 if jira.cloud else 9)
        assert info["version"].startswith(str(info["versionNumbers"][0]))
        assert isinstance(info["buildNumber"], int)
        assert info["serverTime"].endswith(JIRA_TIME_SUFFIX)
    calls = jira.sim("/calls", params={"path": "*/serverInfo"})
    assert {c["actor"] for c in calls} == {None}


def test_server_info_with_wrong_credentials_is_still_401(jira: Jira) -> None:
    response = requests.get(f"{jira.api}/serverInfo", auth=("svc@example.com", "nope"),
                            timeout=5)
    assert response.status_code == 401
    assert jira.get("/serverInfo").json()["deploymentType"]  # right credentials are fine
    assert requests.get(f"{jira.api}/myself", timeout=5).status_code == 401  # only serverInfo


def test_cloud_server_info_fits_the_openapi_document(cloud: Jira) -> None:
    for version in (2, 3):
        info = requests.get(f"{cloud.base_url}/rest/api/{version}/serverInfo", timeout=5).json()
        assert oas.errors("ServerInformation", info) == []


def test_server_has_no_v3(server: Jira) -> None:
    for path in ("serverInfo", "field"):
        assert requests.get(f"{server.base_url}/rest/api/3/{path}", auth=SVC,
                            timeout=5).status_code == 404


# -- fields --------------------------------------------------------------------------------


def test_field_list_covers_every_field_an_issue_carries(jira: Jira) -> None:
    key = jira.create()["key"]
    for version in versions(jira):
        fields = requests.get(f"{jira.base_url}/rest/api/{version}/field", auth=SVC,
                              timeout=5).json()
        by_id = {f["id"]: f for f in fields}
        assert len(by_id) == len(fields)
        issue = jira.get(f"/issue/{key}").json()
        assert set(issue["fields"]) <= set(by_id), set(issue["fields"]) - set(by_id)
        assert by_id["summary"] == {
            "id": "summary", "key": "summary", "name": "Summary", "custom": False,
            "orderable": True, "navigable": True, "searchable": True,
            "clauseNames": ["summary"], "schema": {"type": "string", "system": "summary"}}
        assert by_id["labels"]["schema"] == {"type": "array", "items": "string",
                                             "system": "labels"}
        assert by_id["issuekey"]["clauseNames"] == ["id", "issue", "issuekey", "key"]
        assert ("statusCategory" in by_id) == jira.cloud


def test_custom_fields_are_listed_once(simulate) -> None:
    external = FieldDef("customfield_10050", "External ID")
    notes = FieldDef("customfield_10051", "Notes", kind="textarea")
    jira = simulate("cloud", projects=(
        ProjectDef("EXT", "External", "10100", DATA_WORKFLOW, fields=(external, notes)),
        ProjectDef("MORE", "More", "10101", DATA_WORKFLOW, fields=(external,))))
    fields = [f for f in jira.get("/field").json() if f["custom"]]
    assert fields == [
        {"id": "customfield_10050", "key": "customfield_10050", "name": "External ID",
         "custom": True, "orderable": True, "navigable": True, "searchable": True,
         "clauseNames": ["cf[10050]", "External ID"],
         "schema": {"type": "string",
                    "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                    "customId": 10050}},
        {"id": "customfield_10051", "key": "customfield_10051", "name": "Notes",
         "custom": True, "orderable": True, "navigable": True, "searchable": True,
         "clauseNames": ["cf[10051]", "Notes"],
         "schema": {"type": "string",
                    "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
                    "customId": 10051}}]
    for field in jira.get("/field").json():
        assert oas.errors("FieldDetails", field) == [], field["id"]


def test_field_list_needs_authentication(jira: Jira) -> None:
    assert requests.get(f"{jira.api}/field", timeout=5).status_code == 401


# -- bulk fetch ----------------------------------------------------------------------------


def bulk(jira: Jira, body: dict, version: int = 3) -> requests.Response:
    return jira.session.post(f"{jira.base_url}/rest/api/{version}/issue/bulkfetch", json=body,
                             timeout=10)


def test_bulk_fetch_by_ids_and_keys(cloud: Jira) -> None:
    first = cloud.create(summary="first", description=cloud.text("Hello"))
    second = cloud.create(summary="second")
    gone = cloud.create(summary="gone")
    cloud.delete(f"/issue/{gone['id']}")
    answer = bulk(cloud, {"issueIdsOrKeys": [second["key"], first["id"], "data-1", "DATA-99",
                                             gone["key"], "12345"],
                          "fields": ["summary", "description"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert oas.errors("BulkIssueResults", body) == []
    assert [(i["id"], i["key"]) for i in body["issues"]] == [
        (first["id"], "DATA-1"), (second["id"], "DATA-2")]  # ascending id, each once
    assert set(body["issues"][0]["fields"]) == {"summary", "description"}
    assert body["issues"][0]["fields"]["description"] == cloud.text("Hello")
    # Not found, deleted or unknown: left out, not listed as errors (Atlassian's rule).
    assert body["issueErrors"] == []
    assert bulk(cloud, {"issueIdsOrKeys": ["DATA-1"]}).json()["issues"][0]["fields"]


def test_bulk_fetch_defaults_to_navigable_fields_and_expands_changelog(cloud: Jira) -> None:
    key = cloud.create()["key"]
    cloud.act(f"{key}/transition", {"status": "Done"})
    issue = bulk(cloud, {"issueIdsOrKeys": [key], "expand": ["changelog"],
                         "properties": [], "fieldsByKeys": False}).json()["issues"][0]
    assert "summary" in issue["fields"] and "comment" not in issue["fields"]
    assert issue["changelog"]["total"] == 2


def test_bulk_fetch_finds_moved_issues_by_their_old_key(cloud: Jira) -> None:
    created = cloud.create()
    cloud.act(f"{created['key']}/move", {"project": "OPS"})
    body = bulk(cloud, {"issueIdsOrKeys": ["DATA-1", created["id"], "OPS-1"]}).json()
    assert [(i["id"], i["key"]) for i in body["issues"]] == [(created["id"], "OPS-1")]
    assert body["issueErrors"] == []


def test_bulk_fetch_under_cloud_v2_answers_in_v2_shapes(cloud: Jira) -> None:
    key = cloud.create(description=cloud.text("Hello"))["key"]
    issue = bulk(cloud, {"issueIdsOrKeys": [key], "fields": ["description"]}, 2).json()[
        "issues"][0]
    assert issue["fields"]["description"] == "Hello"
    assert issue["self"].startswith(f"{cloud.base_url}/rest/api/2/")


@pytest.mark.parametrize(("body", "message"), [
    ({"issueIdsOrKeys": []}, "At least one issue ID or key"),
    ({"issueIdsOrKeys": [str(n) for n in range(101)]}, "at most 100"),
    ({}, "'issueIdsOrKeys' must be given"),
    ({"issueIdsOrKeys": "DATA-1"}, "'issueIdsOrKeys' must be a list of strings"),
    ({"issueIdsOrKeys": ["DATA-1"], "expand": "changelog"}, "'expand' must be a list"),
    ({"issueIdsOrKeys": ["DATA-1"], "properties": list("abcdef")}, "At most 5"),
    ({"issueIdsOrKeys": ["DATA-1"], "jql": "x"}, "Unrecognized field 'jql'"),
])
def test_bulk_fetch_refusals(cloud: Jira, body: dict, message: str) -> None:
    cloud.create()
    response = bulk(cloud, body)
    assert response.status_code == 400 and message in response.text, response.text


def test_bulk_fetch_accepts_exactly_one_hundred(cloud: Jira) -> None:
    cloud.create()
    body = bulk(cloud, {"issueIdsOrKeys": ["DATA-1"] + [str(n) for n in range(99)]}).json()
    assert len(body["issues"]) == 1 and body["issueErrors"] == []


def test_bulk_fetch_is_cloud_only(server: Jira) -> None:
    server.create()
    # Server has no such operation: the path is /issue/{key}'s, which takes no POST.
    assert bulk(server, {"issueIdsOrKeys": ["DATA-1"]}, 2).status_code == 405
