"""The daily operations through the admin API on the whole running service (web, worker, beat,
both simulators): Create External Issue, sync now, sever, Test Connection, dead letters and
their replay, disable and enable, delete, logs and the overview."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.admin.conftest import Service, start_service
from tests.support.stack import eventually

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whs-operations-1"


@pytest.fixture
def service(service_env, jira, qalita, tmp_path):
    made = start_service(service_env, jira, qalita, tmp_path, webhook_secret=WEBHOOK_SECRET,
                         api_token="tok-123", qalita_api_token="qalita-tok")
    yield made
    made.stack.close()


def switch(jira: Any, **switches: Any) -> None:
    requests.post(f"{jira.base_url}/_sim/switches", json=switches,
                  timeout=10).raise_for_status()


def marked(service: Service, issue_id: int) -> list[dict[str, Any]]:
    """The Jira issues carrying the QALITA issue's marker label."""
    marker = f"qalita-id-default-{issue_id}"
    return [i for i in service.stack.jira_issues() if marker in i["labels"]]


# Quiet: the issue's own event would create its Jira issue, racing the request.
@pytest.mark.parametrize("qalita", [False], indirect=True)
def test_create_external_issue_sync_and_sever(service: Service, jira):
    api, stack = service.api, service.stack
    issue = stack.qalita_new(title="Create me from the admin API")
    path = f"/issues/{issue['id']}/jira"

    first = api.call("POST", path)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["jira_key"] and body["state"] == "linked"
    assert body["jira_url"] == f"{jira.base_url}/browse/{body['jira_key']}"
    again = api.call("POST", path, json={"tenant": "default"})
    assert again.status_code == 200 and again.json()["jira_key"] == body["jira_key"]
    assert len(marked(service, issue["id"])) == 1
    assert api.call("GET", path).json()["jira_key"] == body["jira_key"]
    assert api.call("POST", f"{path}/sync").status_code == 202

    severing = api.call("DELETE", path)
    assert severing.status_code == 202 and severing.json()["state"] in ("severing", "severed")
    eventually(lambda: api.call("GET", path).json()["state"] == "severed")
    assert marked(service, issue["id"]) == []
    kept = [i for i in stack.jira_issues() if i["key"] == body["jira_key"]]
    assert len(kept) == 1  # the Jira issue stays, without the marker

    relinked = api.call("POST", path)
    assert relinked.status_code == 201, relinked.text
    assert relinked.json()["jira_key"] != body["jira_key"]
    assert len(marked(service, issue["id"])) == 1

    listed = api.call("GET", f"{service.path}/links",
                      params={"qalita_issue_id": issue["id"]}).json()["items"]
    assert [link["state"] for link in listed] == ["linked", "severed"]
    logged = api.call("GET", f"{service.path}/logs", params={
        "qalita_issue_id": issue["id"], "decision": "sever"}).json()["items"]
    assert len(logged) == 1 and logged[0]["action"] == "admin"

    assert api.call("POST", "/issues/99999/jira").status_code == 404
    assert api.call("POST", path, params={"tenant": "elsewhere"}).status_code == 404
    assert api.call("POST", path, params={"tenant": "not a slug"}).status_code == 400


def test_test_connection_and_dead_letters(service: Service, jira):
    api, stack = service.api, service.stack
    report = api.call("POST", f"{service.path}/test").json()
    assert report["ok"], report
    switch(jira, revoke_token=True)
    report = api.call("POST", f"{service.path}/test").json()
    credentials = next(c for c in report["checks"] if c["name"] == "credentials")
    assert not report["ok"] and not credentials["ok"] and "id.atlassian.com" in credentials["fix"]
    switch(jira, revoke_token=False)

    switch(jira, deny_create=["DATA"])
    issue = stack.qalita_new(title="Refused at first")
    letters = eventually(lambda: api.call("GET", f"{service.path}/dead-letters").json()["items"])
    [letter] = letters
    assert letter["kind"] == "jira_rejected" and letter["state"] == "open"
    assert letter["link"]["qalita_issue_id"] == issue["id"]
    assert api.call("GET", f"/dead-letters/{letter['id']}").json()["id"] == letter["id"]
    assert [item["id"] for item in api.call("GET", "/dead-letters").json()["items"]] == \
        [letter["id"]]

    # Still broken: the same letter comes back with its count up.
    replayed = api.call("POST", f"{service.path}/dead-letters/{letter['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    eventually(lambda: api.call("GET", f"/dead-letters/{letter['id']}").json()["state"]
               == "open")
    assert api.call("GET", f"/dead-letters/{letter['id']}").json()["replay_count"] == 1
    assert len(api.call("GET", "/dead-letters").json()["items"]) == 1

    # Fixed: a bulk replay job, and the issue syncs once.
    switch(jira, deny_create=[])
    job = api.call("POST", "/dead-letters/replay", json={"integration_id":
                                                         service.integration["id"]})
    assert job.status_code == 202 and job.json()["total"] == 1
    done = eventually(lambda: (lambda view: view if view["state"] == "done" else None)(
        api.call("GET", f"/jobs/{job.json()['id']}").json()))
    assert done["done"] == 1 and done["failed"] == 0
    eventually(lambda: api.call("GET", f"/dead-letters/{letter['id']}").json()["state"]
               == "resolved")
    eventually(lambda: len(marked(service, issue["id"])) == 1)
    assert api.call("DELETE", f"/dead-letters/{letter['id']}").status_code == 409
    assert api.call("GET", "/dead-letters/424242").status_code == 404
    assert api.call("POST", f"/integrations/jira/424242/dead-letters/{letter['id']}/replay") \
        .status_code == 404

    overview = api.call("GET", f"{service.path}/overview").json()
    assert overview["links_by_state"] == {"linked": 1} and overview["dead_letters_open"] == 0
    assert overview["last_jira_write_at"] is not None and overview["paused"] == {}


def test_disable_holds_enable_releases_and_delete(service: Service, jira):
    api, stack = service.api, service.stack
    first = stack.qalita_new(title="Before")
    eventually(lambda: len(marked(service, first["id"])) == 1)

    assert api.call("PUT", service.path, json={"enabled": False}).json()["enabled"] is False
    held = stack.qalita_new(title="Held while disabled")
    refused = api.call("POST", f"/issues/{held['id']}/jira")
    assert refused.status_code == 409 and "disabled" in refused.json()["reason"]
    links = eventually(lambda: api.call("GET", f"{service.path}/links", params={
        "qalita_issue_id": held["id"]}).json()["items"])
    assert links[0]["state"] == "pending"
    assert marked(service, held["id"]) == []

    assert api.call("PUT", service.path, json={"enabled": True}).json()["enabled"] is True
    eventually(lambda: len(marked(service, held["id"])) == 1)

    deleted = api.call("DELETE", service.path, params={"sever": "true"})
    assert deleted.status_code == 204
    assert api.call("GET", service.path).status_code == 404
    assert api.call("POST", f"/issues/{first['id']}/jira").status_code == 409
    severed = api.call("GET", f"/issues/{first['id']}/jira").json()
    assert severed["state"] == "severed"
