"""Secrets written through the admin API never come back out: not in an answer, a log line,
a dead letter, a metric or a database column. The whole service runs (web, worker, beat,
both simulators) through a create, an inbound change, Test Connection, a refused create and
a refused token, then every answer, every process's output, ``/metrics`` and a full
``pg_dump`` are searched for each secret."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from sqlalchemy.engine import make_url

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.integration.admin.conftest import start_service
from tests.support.stack import eventually

pytestmark = pytest.mark.integration

API_TOKEN = "tok-LEAKCHECK-4f2a9c71d0"
WRONG_TOKEN = "tok-LEAKCHECK-WRONG-7be3"
WEBHOOK_SECRET = "whs-LEAKCHECK-b81e55aa"
QALITA_TOKEN = "qat-LEAKCHECK-0d93c2f4"
SECRETS = (API_TOKEN, WRONG_TOKEN, WEBHOOK_SECRET, QALITA_TOKEN)


@pytest.fixture
def jira():
    config = SimulatorConfig(deployment="cloud", index_lag_ms=0,
                             credentials=("svc@example.com", API_TOKEN))
    with running_simulator(config) as sim:
        yield sim


@pytest.fixture
def qalita(broker_url):
    config = QalitaSimulatorConfig(broker_url=broker_url, token=QALITA_TOKEN)
    with running_qalita_simulator(config) as sim:
        yield sim


@pytest.fixture
def service(service_env, jira, qalita, tmp_path):
    made = start_service(service_env, jira, qalita, tmp_path, webhook_secret=WEBHOOK_SECRET,
                         api_token=API_TOKEN, qalita_api_token=QALITA_TOKEN)
    yield made
    made.stack.close()


def test_no_secret_leaves_the_service(service, jira, postgres_url):
    stack, path = service.stack, service.path
    answers: list[str] = [json.dumps(service.integration)]

    def call(method: str, path: str, **kwargs) -> requests.Response:
        response = service.api.call(method, path, **kwargs)
        answers.append(response.text)
        return response

    # Outbound and inbound work, with the secrets in use.
    issue = stack.qalita_new()
    key = eventually(lambda: (stack.jira_issue_of(issue["id"]) or {}).get("key"))
    stack.transition(key, "Start Progress")
    stack.transition(key, "Done")
    eventually(lambda: stack.qalita_issue(issue["id"])["status"] == "resolved")
    report = call("POST", f"{path}/test")
    assert report.status_code == 200 and report.json()["ok"], report.text

    # A create Jira refuses: a dead letter with Jira's request and answer.
    requests.post(f"{jira.base_url}/_sim/switches", json={"deny_create": ["DATA"]},
                  timeout=10).raise_for_status()
    refused = stack.qalita_new(title="Refused create")
    eventually(lambda: call("GET", f"{path}/dead-letters").json()["items"])
    requests.post(f"{jira.base_url}/_sim/switches", json={"deny_create": []},
                  timeout=10).raise_for_status()

    # A wrong token: Jira answers 401 and the integration pauses.
    assert call("PUT", path, json={"api_token": WRONG_TOKEN}).status_code == 200
    stack.qalita_new(title="After the token changed")
    eventually(lambda: call("GET", f"{path}/overview").json()["paused"].get("jira"))
    assert not call("POST", f"{path}/test").json()["ok"]

    for method, read in (("GET", path), ("GET", "/integrations/jira"), ("GET", f"{path}/logs"),
                         ("GET", f"{path}/links"), ("GET", "/dead-letters"),
                         ("GET", f"/issues/{refused['id']}/jira")):
        assert call(method, read, params={"limit": 500} if read.endswith("s") else {}) \
            .status_code == 200
    answers.append(requests.get(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=10).text)

    url = make_url(postgres_url)
    dump = subprocess.run(["pg_dump", "--data-only", "-h", url.host or "127.0.0.1",
                           "-p", str(url.port or 5432), "-U", url.username or "postgres",
                           url.database or ""], capture_output=True, text=True, timeout=120,
                          check=True).stdout
    assert "integration_log" in dump and "dead_letters" in dump
    places = {"answers": "\n".join(answers), "pg_dump": dump,
              **{process.log_path.name: process.output for process in stack.processes}}
    leaks = {(secret, where) for secret in SECRETS for where, text in places.items()
             if secret in text}
    assert not leaks, leaks
