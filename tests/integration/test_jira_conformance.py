"""The client and the simulator, held to Atlassian's own Cloud v3 OpenAPI document.

Every client operation is run against the Cloud simulator over HTTP; every request it made
must be an operation of the document, with a body that validates against the operation's
request schema. Every route the simulator serves under /rest/api/3 must be in the document
too. ADF bodies are free-form in the document; the simulator's own ADF validation covers
them (it rejects what Jira rejects).
"""

import inspect

import pytest
import requests

from jira_sync.jira.auth import BasicAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.simulators.jira import SimulatorConfig, make_app, running_simulator
from tests.support import openapi

pytestmark = pytest.mark.integration

ADF = {"type": "doc", "version": 1,
       "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}]}
NOT_HTTP = {"user_ref", "is_cloud"}


class Recording:
    """Wraps the client and remembers which operations a test ran."""

    def __init__(self, client: JiraClient) -> None:
        self.client, self.used = client, set()

    def __getattr__(self, name):
        self.used.add(name)
        return getattr(self.client, name)


def public_operations() -> set[str]:
    return {name for name, member in inspect.getmembers(JiraClient)
            if not name.startswith("_") and callable(member)} - NOT_HTTP


def exercise_every_operation(jira: Recording) -> None:
    jira.myself()
    assert {p["key"] for p in jira.projects()} >= {"DATA", "OPS"}
    assert jira.project("DATA")["key"] == "DATA"
    bug = next(t for t in jira.create_issue_types("DATA") if t["name"] == "Bug")
    assert any(f["fieldId"] == "summary" for f in jira.create_fields("DATA", bug["id"]))
    assert jira.my_permissions("DATA", ("CREATE_ISSUES",)) == {"CREATE_ISSUES": True}
    assert any(t["name"] == "Bug" for t in jira.project_statuses("DATA"))
    fields = {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
              "summary": "Orders table is stale", "description": ADF,
              "labels": ["qalita", "qalita-id-default-1"]}
    created = jira.create_issue(fields, properties=[{"key": "qalita", "value": {"id": 1}}])
    bulk = jira.bulk_create([{"fields": {**fields, "summary": f"bulk {n}"}} for n in range(2)])
    assert len(bulk.created) == 2 and not bulk.failed
    issue = created["id"]
    assert jira.get_issue(issue)["key"] == created["key"]
    jira.edit_issue(issue, fields={"summary": "Orders table is stale (2)"},
                    update={"labels": [{"add": "severity:high"}, {"remove": "qalita"}]})
    transition = next(t for t in jira.transitions(issue) if t["to"]["name"] == "In Progress")
    jira.transition(issue, transition["id"])
    comment = jira.add_comment(issue, ADF)
    jira.edit_comment(issue, comment["id"], ADF)
    assert [c["id"] for c in jira.comments(issue)] == [comment["id"]]
    jira.delete_comment(issue, comment["id"])
    ana = jira.find_user("ana@example.com")
    assert ana is not None and jira.search_users("bo@")
    jira.edit_issue(issue, fields={"assignee": jira.user_ref(ana)})
    assert jira.user(ana["accountId"])["emailAddress"] == "ana@example.com"
    assert {s["statusCategory"]["key"] for s in jira.statuses()} == {"new", "indeterminate",
                                                                     "done"}
    marked = {created["id"], *(i["id"] for i in bulk.created.values())}
    assert {i["id"] for i in jira.search('labels = "qalita-id-default-1"')} == marked
    assert jira.count("project = DATA") == len(marked)
    fetched = jira.bulk_fetch([bulk.created[0]["id"], "999999"], fields=("status",))
    assert [i["id"] for i in fetched] == [bulk.created[0]["id"]]
    jira.delete_issue(bulk.created[0]["id"])


@pytest.fixture
def cloud_simulator():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0)) as sim:
        yield sim


def test_every_client_call_is_an_operation_of_the_openapi_document(cloud_simulator):
    client = JiraClient(JiraSite(cloud_simulator.base_url, "cloud"),
                        BasicAuth("svc@example.com", "tok-123"))
    recording = Recording(client)
    exercise_every_operation(recording)
    assert recording.used >= public_operations(), "an operation is not exercised here"

    calls = requests.get(f"{cloud_simulator.base_url}/_sim/calls", timeout=10).json()
    api_calls = [c for c in calls if c["path"].startswith("/rest/api/3/")]
    assert len(api_calls) >= len(public_operations())
    problems = []
    for call in api_calls:
        if openapi.operation(call["method"], call["path"]) is None:
            problems.append(f"{call['method']} {call['path']}: not in the document")
        problems += [f"{call['method']} {call['path']}: {error}"
                     for error in openapi.body_errors(call["method"], call["path"],
                                                      call.get("body"))]
        assert call["status"] < 400, call
    assert problems == []


def test_every_route_the_cloud_simulator_serves_is_in_the_document():
    app = make_app(SimulatorConfig(deployment="cloud"))
    routes = [(rule.rule, method) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}
              if rule.rule.startswith("/rest/api/3/")]
    assert routes
    missing = []
    for rule, method in routes:
        concrete = rule.replace("<", "{").replace(">", "}")
        concrete = "/".join("X-1" if part.startswith("{") else part
                            for part in concrete.split("/"))
        if openapi.operation(method, concrete) is None:
            missing.append(f"{method} {rule}")
    assert missing == []
