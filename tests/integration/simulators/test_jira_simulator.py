"""The simulator's REST API: auth, shapes, validation, edits, workflows, comments, users."""

from __future__ import annotations

import base64
import re

import pytest
import requests

from jira_sync.simulators.jira import FieldDef, ProjectDef, TransitionDef
from jira_sync.simulators.jira.config import DONE, IN_PROGRESS, TO_DO

from .conftest import ANA, SVC, Jira, adf

JIRA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def assert_jira_error(response: requests.Response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errorMessages", "errors"}
    assert isinstance(body["errorMessages"], list) and isinstance(body["errors"], dict)
    assert body["errorMessages"] or body["errors"]
    return body


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, ("svc@example.com", "wrong"), ("nobody@x.io", "tok-123")])
def test_missing_or_wrong_credentials_are_401(jira: Jira, auth) -> None:
    response = requests.get(f"{jira.api}/myself", auth=auth, timeout=5)
    assert_jira_error(response, 401)


def test_service_account_and_people_log_in(jira: Jira) -> None:
    me = jira.get("/myself").json()
    assert me["displayName"] == "jira-sync"
    assert me["emailAddress"] == "svc@example.com"
    ana = jira.as_user(ANA).get("/myself").json()
    if jira.cloud:
        assert ana["accountId"] == "712020:ana-0001" and "name" not in ana
    else:
        assert (ana["name"], ana["key"]) == ("ana", "ana")


def test_bearer_pat_only_on_server(simulate) -> None:
    for deployment, expected in (("server", 200), ("cloud", 401)):
        jira = simulate(deployment)
        api = jira.api
        for token, name in (("pat-123", "jira-sync"), ("pat-ana", "Ana")):
            response = requests.get(f"{api}/myself", timeout=5,
                                    headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == expected
            if expected == 200:
                assert response.json()["displayName"] == name


def test_configured_credentials_replace_the_defaults(simulate) -> None:
    jira = simulate("cloud", credentials=("bot@acme.io", "s3cret"))
    assert requests.get(f"{jira.api}/myself", auth=SVC, timeout=5).status_code == 401
    response = requests.get(f"{jira.api}/myself", auth=("bot@acme.io", "s3cret"), timeout=5)
    assert response.status_code == 200


def test_the_other_rest_version_is_not_served(jira: Jira) -> None:
    other = f"{jira.base_url}/rest/api/{2 if jira.cloud else 3}/myself"
    assert requests.get(other, auth=SVC, timeout=5).status_code == 404


# -- projects, metadata, users ------------------------------------------------------------


def test_projects_issue_types_components_priorities(jira: Jira) -> None:
    projects = {p["key"]: p for p in jira.get("/project").json()}
    assert set(projects) == {"DATA", "OPS"}
    assert {t["name"] for t in projects["DATA"]["issueTypes"]} == {"Bug", "Task"}
    data = jira.get("/project/data").json()
    assert data["key"] == "DATA"
    assert [c["name"] for c in data["components"]] == ["billing", "ingestion"]
    assert jira.get("/project/OPS").json()["components"] == []
    assert jira.get("/project/NOPE").status_code == 404
    names = [p["name"] for p in jira.get("/priority").json()]
    assert names == ["Highest", "High", "Medium", "Low", "Lowest"]


def test_createmeta_lists_fields_with_required_and_allowed_values(jira: Jira) -> None:
    page = jira.get("/issue/createmeta/DATA/issuetypes").json()
    types = page["issueTypes"] if jira.cloud else page["values"]
    bug = next(t for t in types if t["name"] == "Bug")
    page = jira.get(f"/issue/createmeta/DATA/issuetypes/{bug['id']}").json()
    fields = {f["fieldId"]: f for f in (page["fields"] if jira.cloud else page["values"])}
    assert fields["summary"]["required"] is True
    assert fields["description"]["required"] is False
    assert [c["name"] for c in fields["components"]["allowedValues"]] == ["billing", "ingestion"]
    assert "Medium" in [p["name"] for p in fields["priority"]["allowedValues"]]
    assert fields["labels"]["operations"] == ["add", "set", "remove"]
    if jira.cloud:
        too_many = jira.get("/issue/createmeta/DATA/issuetypes", params={"maxResults": 201})
        assert_jira_error(too_many)


def test_user_search(jira: Jira) -> None:
    if jira.cloud:
        found = jira.get("/user/search", params={"query": "ana@"}).json()
        assert [(u["accountId"], u["displayName"], u["emailAddress"], u["active"])
                for u in found] == [("712020:ana-0001", "Ana", "ana@example.com", True)]
        assert [u["displayName"] for u in jira.get("/user/search",
                                                   params={"query": "b"}).json()] == ["Bo"]
        assert_jira_error(jira.get("/user/search"))
    else:
        found = jira.get("/user/search", params={"username": "bo"}).json()
        assert [(u["name"], u["key"], u["displayName"], u["emailAddress"]) for u in found] == [
            ("bo", "bo", "Bo", "bo@example.com")]
        by_email = jira.get("/user/search", params={"username": "ana@example.com"}).json()
        assert [u["name"] for u in by_email] == ["ana"]


# -- issues -------------------------------------------------------------------------------


def test_create_get_by_id_or_key_and_delete(jira: Jira) -> None:
    created = jira.create(description=jira.text("Details"), labels=["qalita", "x:y"],
                          priority={"name": "High"}, components=[{"name": "billing"}],
                          assignee=jira.user_ref("ana"))
    assert set(created) == {"id", "key", "self"}
    assert created["key"] == "DATA-1"
    assert created["self"].endswith(f"/issue/{created['id']}")
    by_key = jira.get(f"/issue/{created['key']}").json()
    by_id = jira.get(f"/issue/{created['id']}").json()
    assert by_key == by_id
    assert jira.get("/issue/data-1").json()["id"] == created["id"]
    fields = by_key["fields"]
    assert fields["summary"] == "Orders table is stale"
    assert fields["description"] == jira.text("Details")
    assert fields["labels"] == ["qalita", "x:y"]
    assert fields["priority"]["name"] == "High"
    assert [c["name"] for c in fields["components"]] == ["billing"]
    assert fields["assignee"]["displayName"] == "Ana"
    assert fields["reporter"]["displayName"] == "jira-sync"
    assert fields["status"]["statusCategory"]["key"] == "new"
    assert fields["status"]["id"] == TO_DO and fields["resolution"] is None
    assert JIRA_TIME.match(fields["created"]) and JIRA_TIME.match(fields["updated"])
    only = jira.get(f"/issue/{created['id']}", params={"fields": "summary,labels"}).json()
    assert set(only["fields"]) == {"summary", "labels"}
    excluded = jira.get(f"/issue/{created['id']}", params={"fields": "*all,-comment"}).json()
    assert "comment" not in excluded["fields"] and "summary" in excluded["fields"]

    assert jira.delete(f"/issue/{created['key']}").status_code == 204
    assert_jira_error(jira.get(f"/issue/{created['id']}"), 404)
    assert jira.sim(f"/issues/{created['key']}")["deleted"] is True


def test_edit_with_fields_and_label_operations(jira: Jira) -> None:
    key = jira.create(labels=["qalita", "stale", "keep"])["key"]
    response = jira.put(f"/issue/{key}", {
        "fields": {"summary": "New title", "priority": {"id": "1"}},
        "update": {"labels": [{"add": "triaged"}, {"remove": "stale"}]}})
    assert response.status_code == 204, response.text
    fields = jira.get(f"/issue/{key}").json()["fields"]
    assert fields["summary"] == "New title"
    assert fields["priority"]["name"] == "Highest"
    assert fields["labels"] == ["qalita", "keep", "triaged"]
    assert jira.put(f"/issue/{key}", {"update": {"labels": [{"set": ["only"]}]}}).ok
    assert jira.get(f"/issue/{key}").json()["fields"]["labels"] == ["only"]
    returned = jira.put(f"/issue/{key}", {"fields": {"summary": "Again"}},
                        params={"returnIssue": "true"})
    assert returned.status_code == 200 and returned.json()["fields"]["summary"] == "Again"


def test_assign_endpoint_and_unassign(jira: Jira) -> None:
    key = jira.create()["key"]
    assert jira.put(f"/issue/{key}/assignee", jira.user_ref("bo")).status_code == 204
    assert jira.get(f"/issue/{key}").json()["fields"]["assignee"]["displayName"] == "Bo"
    nobody = {"accountId": None} if jira.cloud else {"name": None}
    assert jira.put(f"/issue/{key}/assignee", nobody).status_code == 204
    assert jira.get(f"/issue/{key}").json()["fields"]["assignee"] is None


def test_bulk_create_partial_failure_is_201(jira: Jira) -> None:
    good = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Task"},
                       "summary": "one"}}
    bad = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Task"},
                      "summary": "two", "labels": ["has space"]}}
    response = jira.post("/issue/bulk", {"issueUpdates": [good, bad, good]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert [i["key"] for i in body["issues"]] == ["DATA-1", "DATA-2"]
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["failedElementNumber"] == 1 and error["status"] == 400
    assert "labels" in error["elementErrors"]["errors"]

    all_bad = jira.post("/issue/bulk", {"issueUpdates": [bad, bad]})
    assert all_bad.status_code == 400
    assert [e["failedElementNumber"] for e in all_bad.json()["errors"]] == [0, 1]
    assert_jira_error(jira.post("/issue/bulk", {"issueUpdates": [good] * 51}))
    assert len(jira.sim("/issues")) == 2


def test_entity_properties(jira: Jira) -> None:
    body = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                       "summary": "with property"},
            "properties": [{"key": "qalita.sync", "value": {"id": 4211}}]}
    created = jira.post("/issue", body).json()
    url = f"/issue/{created['key']}/properties/qalita.sync"
    assert jira.get(url).json() == {"key": "qalita.sync", "value": {"id": 4211}}
    assert jira.put(url, {"id": 4212}).status_code == 200
    assert jira.put(f"/issue/{created['key']}/properties/other", {"a": 1}).status_code == 201
    read = jira.get(f"/issue/{created['id']}", params={"properties": "qalita.sync"}).json()
    assert read["properties"] == {"qalita.sync": {"id": 4212}}
    assert jira.delete(url).status_code == 204
    assert_jira_error(jira.get(url), 404)


# -- validation: what Jira refuses, the simulator refuses -----------------------------------

LONG_TEXT = "x" * 32768
REJECTED_FIELDS = [
    # (deployment or None for both, fields to merge, error key)
    ("cloud", {"description": "plain text"}, "description"),
    ("server", {"description": adf("rich")}, "description"),
    ("cloud", {"description": {"type": "doc", "version": 2, "content": []}}, "description"),
    ("cloud", {"description": {"type": "paragraph", "content": []}}, "description"),
    ("cloud", {"description": {"type": "doc", "version": 1, "content": [{"type": "table"}]}},
     "description"),
    ("cloud", {"description": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}}, "description"),
    ("cloud", {"description": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "x",
                                           "marks": [{"type": "color"}]}]}]}}, "description"),
    ("cloud", {"description": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "x",
                                           "marks": [{"type": "link"}]}]}]}}, "description"),
    ("cloud", {"description": {"type": "doc", "version": 1, "content": [
        {"type": "bulletList", "content": [{"type": "listItem", "content": [
            {"type": "bulletList", "content": []}]}]}]}}, "description"),
    ("cloud", {"description": adf(LONG_TEXT)}, "description"),
    ("server", {"description": LONG_TEXT}, "description"),
    (None, {"labels": ["two words"]}, "labels"),
    (None, {"labels": ["x" * 256]}, "labels"),
    (None, {"summary": ""}, "summary"),
    (None, {"summary": "x" * 256}, "summary"),
    (None, {"summary": "line\nbreak"}, "summary"),
    (None, {"status": {"name": "Done"}}, "status"),
    (None, {"project": {"key": "NOPE"}}, "project"),
    (None, {"issuetype": {"name": "Epic"}}, "issuetype"),
    (None, {"priority": {"name": "Blocker"}}, "priority"),
    (None, {"priority": {"id": "99"}}, "priority"),
    (None, {"components": [{"name": "nope"}]}, "components"),
    ("cloud", {"assignee": {"accountId": "712020:nobody"}}, "assignee"),
    ("cloud", {"assignee": {"id": "712020:nobody"}}, "assignee"),
    ("server", {"assignee": {"name": "nobody"}}, "assignee"),
    (None, {"customfield_99999": "x"}, "customfield_99999"),
    (None, {"foo": "bar"}, "foo"),
]


CASES = [(deployment, fields, key) for only, fields, key in REJECTED_FIELDS
         for deployment in ((only,) if only else ("cloud", "server"))]


@pytest.mark.parametrize(("deployment", "fields", "error_key"), CASES,
                         ids=[f"{d}-{k}-{i}" for i, (d, _, k) in enumerate(CASES)])
def test_create_rejects_what_jira_rejects(simulate, deployment, fields, error_key) -> None:
    jira = simulate(deployment)
    body = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                       "summary": "ok", **fields}}
    error = assert_jira_error(jira.post("/issue", body))
    assert error_key in error["errors"], error
    assert jira.sim("/issues") == []


def test_missing_summary_and_messages_per_deployment(jira: Jira) -> None:
    body = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"}}}
    error = assert_jira_error(jira.post("/issue", body))
    assert error["errors"] == {"summary": "You must specify a summary of the issue."}
    body["fields"].update(summary="ok", labels=["a b"])
    message = assert_jira_error(jira.post("/issue", body))["errors"]["labels"]
    assert message == ("The label 'a b' can't contain spaces." if jira.cloud
                       else "The label 'a b' contains spaces which is invalid.")
    body["fields"].update(labels=[], description="plain" if jira.cloud else adf("x"))
    message = assert_jira_error(jira.post("/issue", body))["errors"]["description"]
    assert message == ("Operation value must be an Atlassian Document (see the Atlassian "
                       "Document Format)" if jira.cloud else "Operation value must be a string")


def test_edit_rejections(jira: Jira) -> None:
    key = jira.create()["key"]
    cases = [
        ({"fields": {"status": {"id": DONE}}}, "status"),
        ({"fields": {"labels": ["a"]}, "update": {"labels": [{"add": "b"}]}}, "labels"),
        ({"update": {"labels": [{"add": "with space"}]}}, "labels"),
        ({"update": {"summary": [{"add": "x"}]}}, "summary"),
        ({"fields": {"project": {"key": "OPS"}}}, "project"),
        ({"fields": {"description": "x" if jira.cloud else adf("x")}}, "description"),
    ]
    for body, key_in_error in cases:
        error = assert_jira_error(jira.put(f"/issue/{key}", body))
        assert key_in_error in error["errors"], (body, error)
    assert jira.get(f"/issue/{key}").json()["fields"]["labels"] == []


def test_comment_body_must_match_the_deployment(jira: Jira) -> None:
    key = jira.create()["key"]
    wrong = {"body": "plain" if jira.cloud else adf("rich")}
    assert "comment" in assert_jira_error(jira.post(f"/issue/{key}/comment", wrong))["errors"]
    assert_jira_error(jira.post(f"/issue/{key}/comment", {"body": jira.text("x" * 32768)}))
    assert_jira_error(jira.post(f"/issue/{key}/comment", {}))


def test_project_with_an_extra_required_field(simulate) -> None:
    project = ProjectDef("EXT", "External", "10100", workflow=(), fields=(
        FieldDef("customfield_10050", "External ID", required=True),
        FieldDef("customfield_10051", "Notes", kind="textarea"),
        FieldDef("customfield_10052", "Tier", kind="option", options=("gold", "silver"))))
    jira = simulate("cloud", projects=(project,))
    base = {"project": {"key": "EXT"}, "issuetype": {"name": "Task"}, "summary": "x"}
    error = assert_jira_error(jira.post("/issue", {"fields": base}))
    assert error["errors"] == {"customfield_10050": "External ID is required."}
    bad_option = {**base, "customfield_10050": "E-1", "customfield_10052": {"value": "bronze"}}
    assert "customfield_10052" in assert_jira_error(
        jira.post("/issue", {"fields": bad_option}))["errors"]
    ok = {**base, "customfield_10050": "E-1", "customfield_10051": adf("n"),
          "customfield_10052": {"value": "gold"}}
    key = jira.post("/issue", {"fields": ok}).json()["key"]
    fields = jira.get(f"/issue/{key}").json()["fields"]
    assert fields["customfield_10050"] == "E-1"
    assert fields["customfield_10052"]["value"] == "gold"
    meta = jira.get("/issue/createmeta/EXT/issuetypes/10003").json()["fields"]
    assert next(f for f in meta if f["fieldId"] == "customfield_10050")["required"] is True


def test_unsupported_media_type_and_bad_json(jira: Jira) -> None:
    response = jira.session.post(f"{jira.api}/issue", data="x=1", timeout=5,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_jira_error(response, 415)
    response = jira.session.post(f"{jira.api}/issue", data="{not json", timeout=5,
                                 headers={"Content-Type": "application/json"})
    assert_jira_error(response, 400)


# -- workflows --------------------------------------------------------------------------


def transition_ids(jira: Jira, key: str) -> list[str]:
    return [t["id"] for t in jira.get(f"/issue/{key}/transitions").json()["transitions"]]


def test_data_workflow_needs_two_hops_to_done(jira: Jira) -> None:
    key = jira.create()["key"]
    listed = jira.get(f"/issue/{key}/transitions").json()["transitions"]
    assert [t["id"] for t in listed] == ["21"]
    assert listed[0]["to"]["statusCategory"] == {
        "self": listed[0]["to"]["statusCategory"]["self"], "id": 4, "key": "indeterminate",
        "colorName": "yellow", "name": "In Progress"}
    assert listed[0]["hasScreen"] is False and listed[0]["isAvailable"] is True
    error = assert_jira_error(jira.post(f"/issue/{key}/transitions", {"transition": {"id": "31"}}))
    assert error == {"errorMessages": ["Transition id '31' is not valid for this issue."],
                     "errors": {}}
    assert jira.post(f"/issue/{key}/transitions", {"transition": {"id": "21"}}).status_code == 204
    assert transition_ids(jira, key) == ["31"]
    assert jira.post(f"/issue/{key}/transitions", {"transition": {"id": "31"}}).status_code == 204
    fields = jira.get(f"/issue/{key}").json()["fields"]
    assert fields["status"]["id"] == DONE and fields["status"]["statusCategory"]["key"] == "done"
    assert fields["resolution"]["name"] == "Done" and fields["resolutiondate"]
    assert transition_ids(jira, key) == ["41"]
    assert jira.post(f"/issue/{key}/transitions", {"transition": {"id": "41"}}).status_code == 204
    fields = jira.get(f"/issue/{key}").json()["fields"]
    assert fields["status"]["id"] == TO_DO and fields["resolution"] is None


def test_ops_done_screen_requires_resolution(jira: Jira) -> None:
    key = jira.create(project="OPS")["key"]
    listed = jira.get(f"/issue/{key}/transitions",
                      params={"expand": "transitions.fields"}).json()["transitions"]
    close = next(t for t in listed if t["id"] == "51")
    assert close["hasScreen"] is True and close["to"]["id"] == DONE
    resolution = close["fields"]["resolution"]
    assert resolution["required"] is True
    assert [v["name"] for v in resolution["allowedValues"]] == ["Done", "Won't Do"]
    assert [v["id"] for v in resolution["allowedValues"]] == ["10000", "10001"]
    assert "fields" not in jira.get(f"/issue/{key}/transitions").json()["transitions"][0]

    error = assert_jira_error(jira.post(f"/issue/{key}/transitions", {"transition": {"id": "51"}}))
    assert error == {"errorMessages": [], "errors": {"resolution": "Resolution is required."}}
    not_on_screen = {"transition": {"id": "21"}, "fields": {"resolution": {"name": "Done"}}}
    assert "resolution" in assert_jira_error(
        jira.post(f"/issue/{key}/transitions", not_on_screen))["errors"]
    ok = {"transition": {"id": "51"}, "fields": {"resolution": {"name": "Won't Do"}}}
    assert jira.post(f"/issue/{key}/transitions", ok).status_code == 204
    assert jira.get(f"/issue/{key}").json()["fields"]["resolution"]["name"] == "Won't Do"


def test_a_workflow_with_no_path_to_done(simulate) -> None:
    stuck = ProjectDef("STUCK", "Stuck", "10200", workflow=(
        TransitionDef("11", "Start", IN_PROGRESS, (TO_DO,)),
        TransitionDef("12", "Stop", TO_DO, (IN_PROGRESS,))))
    jira = simulate("server", projects=(stuck,))
    key = jira.create(project="STUCK")["key"]
    seen = set()
    for _ in range(3):
        listed = jira.get(f"/issue/{key}/transitions").json()["transitions"]
        seen |= {t["to"]["statusCategory"]["key"] for t in listed}
        jira.post(f"/issue/{key}/transitions", {"transition": {"id": listed[0]["id"]}})
    assert "done" not in seen


# -- comments ----------------------------------------------------------------------------


def test_comment_lifecycle(jira: Jira) -> None:
    key = jira.create()["key"]
    created = jira.as_user(ANA).post(f"/issue/{key}/comment", {"body": jira.text("First")})
    assert created.status_code == 201
    comment = created.json()
    assert comment["body"] == jira.text("First")
    assert comment["author"]["displayName"] == "Ana"
    assert JIRA_TIME.match(comment["created"])
    jira.post(f"/issue/{key}/comment", {"body": jira.text("Second")})
    page = jira.get(f"/issue/{key}/comment").json()
    assert (page["startAt"], page["total"]) == (0, 2)
    assert [c["body"] for c in page["comments"]] == [jira.text("First"), jira.text("Second")]
    newest = jira.get(f"/issue/{key}/comment", params={"orderBy": "-created"}).json()
    assert newest["comments"][0]["body"] == jira.text("Second")
    assert_jira_error(jira.get(f"/issue/{key}/comment", params={"orderBy": "author"}))

    edited = jira.put(f"/issue/{key}/comment/{comment['id']}", {"body": jira.text("Edited")})
    assert edited.status_code == 200 and edited.json()["body"] == jira.text("Edited")
    assert edited.json()["updateAuthor"]["displayName"] == "jira-sync"
    assert jira.delete(f"/issue/{key}/comment/{comment['id']}").status_code == 204
    assert_jira_error(jira.get(f"/issue/{key}/comment/{comment['id']}"), 404)
    assert jira.get(f"/issue/{key}/comment").json()["total"] == 1


# -- inspection API ------------------------------------------------------------------------


def test_sim_calls_filters_count_and_reset(jira: Jira) -> None:
    key = jira.create(labels=["a"])["key"]
    jira.get(f"/issue/{key}")
    jira.as_user(ANA).post(f"/issue/{key}/comment", {"body": jira.text("hi")})
    requests.get(f"{jira.api}/myself", timeout=5)  # 401, still logged
    create_path = f"/rest/api/{3 if jira.cloud else 2}/issue"
    posts = jira.sim("/calls", params={"method": "POST", "path": create_path})
    assert len(posts) == 1
    call = posts[0]
    assert call["status"] == 201 and call["actor"] == "svc"
    assert call["body"]["fields"]["labels"] == ["a"]
    assert jira.sim("/calls/count", params={"path": create_path + "*"})["count"] == 3
    assert jira.sim("/calls/count", params={"path": "*/comment"})["count"] == 1
    assert jira.sim("/calls/count", params={"status": 401})["count"] == 1
    every = jira.sim("/calls")
    assert [c["seq"] for c in every] == sorted(c["seq"] for c in every)
    assert {"method", "path", "query", "status", "body", "actor", "time"} <= set(every[0])

    issue = jira.sim("/issues")[0]
    assert issue["key"] == key and issue["status"]["category"] == "new"
    assert issue["comments"][0]["author"] == "ana@example.com"

    assert jira.sim_post("/reset").json() == {"reset": True}
    assert jira.sim("/issues") == [] and jira.sim("/calls") == []
    assert jira.create()["key"] == "DATA-1"


def test_sim_config_read_and_change(jira: Jira) -> None:
    config = jira.sim("/config")
    assert config["deployment"] == jira.deployment and config["fail_rate"] == 0.0
    changed = jira.sim_post("/config", {"fail_rate": 0.5, "index_lag_ms": 5})
    assert changed.status_code == 200 and changed.json()["fail_rate"] == 0.5
    assert jira.sim_post("/config", {"fail_rate": 2}).status_code == 400
    assert jira.sim_post("/config", {"deployment": "server"}).status_code == 400


def test_basic_header_with_garbage_is_401(jira: Jira) -> None:
    header = "Basic " + base64.b64encode(b"\xff\xfe").decode()
    response = requests.get(f"{jira.api}/myself", headers={"Authorization": header}, timeout=5)
    assert_jira_error(response, 401)
