"""`jira-sync links list|create|sync|sever` as an operator runs them: a real worker process,
Redis, Postgres, and the Jira and QALITA simulators over HTTP."""

from __future__ import annotations

import json

import pytest
import requests

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.support.processes import run_cli
from tests.support.stack import Stack, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def jira():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=200)) as sim:
        yield sim


@pytest.fixture
def qalita():
    # No broker: QALITA's own events never arrive, only what the operator asks for happens.
    with running_qalita_simulator(QalitaSimulatorConfig()) as sim:
        yield sim


@pytest.fixture
def stack(service_env, jira, qalita, tmp_path):
    running = Stack(service_env, jira, qalita, tmp_path)
    yield running
    running.close()


def links(stack: Stack, *args: str):
    return run_cli(["links", *args], stack.env)


def listed(stack: Stack, *args: str) -> list[dict]:
    result = links(stack, "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]


def test_create_sync_list_and_sever_through_a_real_worker(stack):
    stack.start("worker")
    issue_id = stack.qalita_new()["id"]
    created = links(stack, "create", str(issue_id))
    assert created.returncode == 0, created.stderr
    issue = stack.jira_issue_of(issue_id)
    assert issue is not None and f"{issue['key']}" in created.stdout
    assert "linked" in created.stdout
    again = links(stack, "create", str(issue_id), "--tenant", "default")
    assert again.returncode == 0 and issue["key"] in again.stdout
    assert len([i for i in stack.jira_issues()
                if f"qalita-id-default-{issue_id}" in i["labels"]]) == 1
    [item] = listed(stack)
    assert item["jira_key"] == issue["key"] and item["state"] == "linked"
    assert item["jira_url"] == f"{stack.jira.base_url}/browse/{issue['key']}"
    synced = links(stack, "sync", str(issue_id))
    assert synced.returncode == 0 and issue["key"] in synced.stdout
    severed = links(stack, "sever", str(issue_id))
    assert severed.returncode == 0 and "sever" in severed.stdout
    eventually(lambda: listed(stack, "--state", "severed"), timeout=30)
    kept = next(i for i in stack.jira_issues() if i["id"] == issue["id"])
    assert f"qalita-id-default-{issue_id}" not in kept["labels"]
    table = links(stack, "list")
    assert table.returncode == 0 and "severed" in table.stdout


def test_refusals_exit_1_with_the_reason_and_bad_usage_exits_2(stack):
    missing = links(stack, "create", "424242")
    assert missing.returncode == 1 and "QALITA has no issue 424242" in missing.stderr
    unknown = links(stack, "sever", "5", "--tenant", "elsewhere")
    assert unknown.returncode == 1 and "no integration for tenant 'elsewhere'" in unknown.stderr
    assert links(stack, "sync", "7").returncode == 1
    assert links(stack, "sever", "x").returncode == 2
    assert links(stack, "list", "--cursor", "nonsense").returncode == 2
    # No worker runs: the create is queued and said so, not an error.
    issue_id = stack.qalita_new()["id"]
    queued = links(stack, "create", str(issue_id), "--wait", "0.5")
    assert queued.returncode == 0 and "pending" in queued.stdout
    assert requests.get(f"{stack.jira.base_url}/_sim/issues", timeout=10).json() == []
