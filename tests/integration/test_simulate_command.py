"""The simulators started by their command lines alone, with the contract's defaults (§7)."""

import os

import pytest
import requests

from tests.support.processes import ServiceProcess, clean_env, free_port, run_cli

pytestmark = pytest.mark.integration


def started(args: list[str], tmp_path) -> tuple[ServiceProcess, str]:
    port = free_port()
    process = ServiceProcess(["simulate", *args, "--port", str(port)], clean_env(),
                             tmp_path / f"sim-{port}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{base}/_sim/calls")
    except AssertionError:
        process.kill()
        raise
    return process, base


def test_jira_cloud_defaults(tmp_path):
    process, base = started(["jira"], tmp_path)
    try:
        assert requests.get(f"{base}/rest/api/3/project", timeout=5).status_code == 401
        projects = requests.get(f"{base}/rest/api/3/project", timeout=5,
                                auth=("svc@example.com", "tok-123")).json()
        assert {p["key"] for p in projects} == {"DATA", "OPS"}
        users = requests.get(f"{base}/rest/api/3/user/search", params={"query": "ana@"},
                             auth=("svc@example.com", "tok-123"), timeout=5).json()
        assert [u["emailAddress"] for u in users] == ["ana@example.com"]
        assert process.stop() == 0
    finally:
        process.kill()


def test_jira_server_accepts_the_default_pat_and_basic(tmp_path):
    process, base = started(["jira", "--deployment", "server"], tmp_path)
    try:
        bearer = requests.get(f"{base}/rest/api/2/myself", timeout=5,
                              headers={"Authorization": "Bearer pat-123"})
        basic = requests.get(f"{base}/rest/api/2/myself", timeout=5,
                             auth=("svc@example.com", "tok-123"))
        assert bearer.status_code == basic.status_code == 200
        assert requests.get(f"{base}/rest/api/3/myself", timeout=5,
                            headers={"Authorization": "Bearer pat-123"}).status_code == 404
    finally:
        process.kill()


def test_jira_options_reach_the_simulator(tmp_path):
    process, base = started(["jira", "--credentials", "me@x.io:secret", "--rate-limit", "3",
                             "--fail-rate", "0.25", "--index-lag-ms", "50"], tmp_path)
    try:
        config = requests.get(f"{base}/_sim/config", timeout=5).json()
        assert (config["rate_limit"], config["fail_rate"], config["index_lag_ms"]) == (
            3, 0.25, 50)
        requests.post(f"{base}/_sim/config", json={"fail_rate": 0}, timeout=5)
        assert requests.get(f"{base}/rest/api/3/myself", auth=("me@x.io", "secret"),
                            timeout=5).status_code == 200
        assert requests.get(f"{base}/rest/api/3/myself", auth=("svc@example.com", "tok-123"),
                            timeout=5).status_code == 401
    finally:
        process.kill()


def test_jira_refuses_a_bad_option_in_one_line():
    result = run_cli(["simulate", "jira", "--port", "1", "--credentials", "no-colon"],
                     dict(os.environ))
    assert result.returncode == 2 and "EMAIL:TOKEN" in result.stderr


def test_qalita_requires_its_default_token(tmp_path):
    process, base = started(["qalita"], tmp_path)
    try:
        assert requests.get(f"{base}/api/v2/issues", timeout=5).status_code == 401
        answer = requests.get(f"{base}/api/v2/issues", timeout=5,
                              headers={"Authorization": "Bearer qalita-tok"})
        assert answer.status_code in (200, 204)
        assert process.stop() == 0
    finally:
        process.kill()
