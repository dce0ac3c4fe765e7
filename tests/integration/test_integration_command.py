"""`jira-sync integration test` against the Jira simulator over HTTP."""

import pytest

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from tests.support.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def jira_cloud():
    with running_simulator(SimulatorConfig(deployment="cloud")) as sim:
        yield sim


def env_for(service_env, sim, **overrides) -> dict[str, str]:
    return {**service_env, "JIRA_BASE_URL": sim.base_url, "JIRA_EMAIL": "svc@example.com",
            "JIRA_API_TOKEN": "tok-123", "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
            **overrides}


def test_a_working_integration_says_ok(service_env, jira_cloud):
    result = run_cli(["integration", "test"], env_for(service_env, jira_cloud))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signed in as svc@example.com" in result.stdout
    assert "ok: can create Bug issues in DATA" in result.stdout


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"JIRA_API_TOKEN": "wrong-token"}, "problem: authentication failed: "),
    ({"JIRA_PROJECT_KEY": "NOPE"}, "problem: project NOPE does not exist or is not visible"),
    ({"JIRA_ISSUE_TYPE": "Epic"}, "problem: issue type 'Epic' cannot be created in DATA; "
                                  "available: Bug, Task"),
])
def test_each_problem_is_named(service_env, jira_cloud, overrides, problem):
    result = run_cli(["integration", "test"], env_for(service_env, jira_cloud, **overrides))
    assert result.returncode == 1
    assert problem in result.stdout
    assert "wrong-token" not in result.stdout + result.stderr


def test_server_with_a_personal_access_token(service_env):
    with running_simulator(SimulatorConfig(deployment="server")) as sim:
        env = {**env_for(service_env, sim, JIRA_DEPLOYMENT="server", JIRA_PAT="pat-123")}
        env.pop("JIRA_EMAIL")
        env.pop("JIRA_API_TOKEN")
        result = run_cli(["integration", "test"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: can create Bug issues in DATA" in result.stdout
