"""`jira-sync integration test` against the Jira and QALITA simulators over HTTP."""

import pytest
import requests

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.support.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def jira_cloud():
    with running_simulator(SimulatorConfig(deployment="cloud")) as sim:
        yield sim


@pytest.fixture
def qalita():
    with running_qalita_simulator(QalitaSimulatorConfig()) as sim:
        yield sim


@pytest.fixture
def env_for(service_env, qalita):
    def env_for(sim, **overrides) -> dict[str, str]:
        return {**service_env, "JIRA_BASE_URL": sim.base_url, "JIRA_EMAIL": "svc@example.com",
                "JIRA_API_TOKEN": "tok-123", "JIRA_PROJECT_KEY": "DATA",
                "JIRA_ISSUE_TYPE": "Bug", "QALITA_API_URL": qalita.base_url,
                "QALITA_API_TOKEN": "qalita-tok", "JIRA_SYNC_PUBLIC_URL": "https://sync.example",
                **overrides}
    return env_for


def test_a_working_integration_says_ok(env_for, jira_cloud):
    result = run_cli(["integration", "test"], env_for(jira_cloud))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "  ok       credentials: signed in as svc@example.com" in lines
    assert "  ok       create_permission: the account may create issues in DATA" in lines
    assert "  warning  webhook: no delivery in the last 24 h" in lines
    assert ("           fix: no delivery in the last 24 h: create a webhook in Jira with the "
            "token URL `jira-sync webhook url` gives (no webhook secret is set) and the issue "
            "and comment events, or check its secret") in lines
    assert lines[-1] == "ok: every error-level check passed"


@pytest.mark.parametrize(("switches", "overrides", "line", "fix"), [
    ({}, {"JIRA_API_TOKEN": "wrong-token"}, "  FAILED   credentials: Jira refused the "
     "credentials: ", "check the e-mail and API token (or PAT)"),
    ({}, {"JIRA_PROJECT_KEY": "NOPE"}, "  FAILED   project: project NOPE does not exist or "
     "the account cannot browse it", "check the base URL and project key"),
    ({}, {"JIRA_ISSUE_TYPE": "Epic"}, "  FAILED   issue_type: DATA has no issue type 'Epic'",
     "the project has no issue type Epic: pick one of Bug, Task"),
    ({"deny_create": ["DATA"]}, {}, "  FAILED   create_permission: the account may not "
     "create issues in DATA", "grant Create Issues in the project's permission scheme"),
])
def test_each_problem_is_named_with_its_fix_under_it(env_for, jira_cloud, switches, overrides,
                                                    line, fix):
    requests.post(f"{jira_cloud.base_url}/_sim/switches", json=switches,
                  timeout=10).raise_for_status()
    result = run_cli(["integration", "test"], env_for(jira_cloud, **overrides))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failed = next(i for i, text in enumerate(lines) if text.startswith(line))
    assert lines[failed + 1].startswith(f"           fix: {fix}")
    assert lines[-1] == "not ok: an error-level check failed"
    assert "wrong-token" not in result.stdout + result.stderr


def test_server_with_a_personal_access_token(env_for):
    with running_simulator(SimulatorConfig(deployment="server")) as sim:
        env = env_for(sim, JIRA_DEPLOYMENT="server", JIRA_PAT="pat-123",
                      JIRA_WEBHOOK_SECRET="whsec-1")
        env.pop("JIRA_EMAIL")
        env.pop("JIRA_API_TOKEN")
        result = run_cli(["integration", "test", "--tenant", "default"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "with URL https://sync.example/api/v2/integrations/jira/webhook and" in result.stdout
    assert "whsec-1" not in result.stdout and "pat-123" not in result.stdout


def test_a_tenant_without_an_integration(env_for, jira_cloud):
    result = run_cli(["integration", "test", "--tenant", "other"], env_for(jira_cloud))
    assert result.returncode == 1
    assert "no integration for tenant 'other'" in result.stderr
