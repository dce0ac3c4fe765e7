"""`jira-sync webhook url` and the URL it prints, delivered to through a real `jira-sync web`."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.processes import ServiceProcess, free_port, run_cli

pytestmark = pytest.mark.integration


def test_the_printed_url_receives_until_it_is_rotated(service_env, tmp_path):
    port = free_port()
    env = {**service_env, "JIRA_BASE_URL": "https://jira.internal.example/",
           "JIRA_DEPLOYMENT": "server", "JIRA_PAT": "pat-123", "JIRA_SYNC_WEB_PORT": str(port),
           # As an operator writes it: with a trailing slash.
           "JIRA_SYNC_PUBLIC_URL": f"http://127.0.0.1:{port}/"}
    made = run_cli(["webhook", "url"], env)
    assert made.returncode == 0, made.stderr
    first = made.stdout.strip()
    assert first.startswith(f"http://127.0.0.1:{port}/api/v2/integrations/jira/webhook/")
    again = run_cli(["webhook", "url"], env)
    assert again.returncode == 1 and again.stdout == ""
    assert "already has a webhook URL" in again.stderr and "--rotate" in again.stderr
    web = ServiceProcess(["web"], env, tmp_path / "web.log")
    try:
        web.wait_http(f"http://127.0.0.1:{port}/healthz")
        body = json.dumps({"webhookEvent": "jira:issue_updated",
                           "issue": {"id": "10001", "key": "DATA-1"}})
        headers = {"Content-Type": "application/json",
                   "X-Atlassian-Webhook-Identifier": "one"}
        assert requests.post(first, data=body, headers=headers, timeout=10).status_code == 202
        rotated = run_cli(["webhook", "url", "--rotate"], env)
        assert rotated.returncode == 0, rotated.stderr
        second = rotated.stdout.strip()
        assert second != first
        refused = requests.post(first, data=body, headers=headers, timeout=10)
        assert refused.status_code == 401
        headers["X-Atlassian-Webhook-Identifier"] = "two"
        assert requests.post(second, data=body, headers=headers, timeout=10).status_code == 202
    finally:
        web.kill()


def test_a_tenant_without_an_integration_is_named(service_env):
    result = run_cli(["webhook", "url", "--tenant", "nobody"], service_env)
    assert result.returncode == 1
    assert result.stderr == "jira-sync: no integration for tenant 'nobody' (set JIRA_BASE_URL " \
                            "and its credentials)\n"
