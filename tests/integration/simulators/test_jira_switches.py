"""The `/_sim/switches` failures, each seen through the REST API as real Jira shows it, and
`mypermissions` and project statuses, held to the Cloud OpenAPI document."""

from __future__ import annotations

import pytest

from tests.integration.simulators import oas
from tests.integration.simulators.conftest import Jira

pytestmark = pytest.mark.integration


def switch(jira: Jira, **switches) -> dict:
    response = jira.sim_post("/switches", switches)
    assert response.status_code == 200, response.text
    return response.json()


def can_create(jira: Jira, project: str = "DATA") -> bool:
    response = jira.get("/mypermissions", params={"projectKey": project,
                                                  "permissions": "CREATE_ISSUES"})
    assert response.status_code == 200, response.text
    return response.json()["permissions"]["CREATE_ISSUES"]["havePermission"]


def categories(jira: Jira, project: str = "DATA", issue_type: str = "Bug") -> set[str]:
    listing = jira.get(f"/project/{project}/statuses").json()
    entry = next(e for e in listing if e["name"] == issue_type)
    return {s["statusCategory"]["key"] for s in entry["statuses"]}


def test_permissions_and_statuses_answer_as_jira_does(jira: Jira) -> None:
    assert can_create(jira)
    answer = jira.get("/mypermissions", params={"permissions": "CREATE_ISSUES,ADMINISTER"})
    assert answer.json()["permissions"]["ADMINISTER"]["havePermission"] is False
    if jira.cloud:
        assert oas.errors("Permissions", answer.json()) == []
        assert jira.get("/mypermissions").status_code == 400  # Cloud requires the keys
    else:
        assert "BROWSE_PROJECTS" in jira.get("/mypermissions").json()["permissions"]
    assert jira.get("/mypermissions", params={"permissions": "NO_SUCH"}).status_code == 400
    assert jira.get("/mypermissions", params={"projectKey": "NOPE",
                                              "permissions": "CREATE_ISSUES"}).status_code == 404
    assert categories(jira) == {"new", "indeterminate", "done"}
    assert jira.get("/project/NOPE/statuses").status_code == 404


def test_each_switch_breaks_the_site_and_reset_mends_it(jira: Jira) -> None:
    switch(jira, revoke_token=True)
    assert jira.get("/myself").status_code == 401
    assert jira.as_user(("ana@example.com", "tok-ana")).get("/myself").status_code == 200
    switch(jira, revoke_token=False, hide_projects=["data"])
    assert jira.get("/project/DATA").status_code == 404
    assert [p["key"] for p in jira.get("/project").json()] == ["OPS"]
    assert jira.post("/issue", {"fields": {"project": {"key": "DATA"}, "issuetype": {
        "name": "Bug"}, "summary": "x"}}).status_code == 400
    switch(jira, hide_projects=[], remove_issue_types=["Bug"])
    assert [t["name"] for t in jira.get("/project/DATA").json()["issueTypes"]] == ["Task"]
    switch(jira, remove_issue_types=[], deny_create=["DATA"])
    assert not can_create(jira) and can_create(jira, "OPS")
    refused = jira.post("/issue", {"fields": {"project": {"key": "DATA"}, "issuetype": {
        "name": "Bug"}, "summary": "x"}})
    assert refused.status_code == 400 and "permission" in refused.json()["errors"]["project"]
    switch(jira, deny_create=[], require_field=["DATA"])
    missing = jira.post("/issue", {"fields": {"project": {"key": "DATA"}, "issuetype": {
        "name": "Bug"}, "summary": "x"}})
    assert missing.json()["errors"] == {"customfield_10900": "Cost Centre is required."}
    jira.create(customfield_10900="CC-7")
    switch(jira, require_field=[], no_done_path=["DATA"])
    assert categories(jira) == {"new", "indeterminate"}
    assert categories(jira, "OPS") == {"new", "indeterminate", "done"}
    switch(jira, revoke_token=True, hide_projects=["OPS"], deny_create=["DATA"])
    assert jira.sim_post("/reset").status_code == 200
    assert jira.sim("/switches") == {"revoke_token": False, "hide_projects": [],
                                     "remove_issue_types": [], "deny_create": [],
                                     "require_field": [], "no_done_path": []}
    assert jira.get("/myself").status_code == 200 and can_create(jira)


@pytest.mark.parametrize("body", [{"revoke_token": "yes"}, {"hide_projects": "DATA"},
                                  {"deny_create": [""]}, {"no_such_switch": True}, ["x"]])
def test_a_bad_switch_is_refused_and_changes_nothing(cloud: Jira, body) -> None:
    response = cloud.sim_post("/switches", body)
    assert response.status_code == 400 and response.json()["errorMessages"]
    assert cloud.sim("/switches")["revoke_token"] is False
