"""``jira-sync integration list|show|add|update|enable|disable|delete`` and ``jira-sync logs``:
the admin API's functions without HTTP, run as the real command on this test's database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import run_cli

pytestmark = pytest.mark.integration

API_TOKEN = "tok-cli-3d9e1f7a"


def cli(env: dict[str, str], *args: str, stdin: str | None = None,
        **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jira_sync", *args], env={**env, **extra},
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_add_show_update_and_list(service_env, tmp_path: Path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("labels: [data-quality]\n")
    added = cli(service_env, "integration", "add", "--tenant", "acme",
                "--base-url", "https://acme.atlassian.net/", "--email", "svc@example.com",
                "--project-key", "DATA", "--issue-type", "Bug", "--mapping", str(mapping),
                "--secrets-from", "stdin",
                stdin=f"# the service account\napi_token={API_TOKEN}\nwebhook_secret=whs-1\n")
    assert added.returncode == 0, added.stderr
    assert "webhook URL (shown once): http://127.0.0.1:8080/api/v2/integrations/jira/webhook/" \
        in added.stdout
    assert API_TOKEN not in added.stdout + added.stderr

    shown = json.loads(cli(service_env, "integration", "show", "--tenant", "acme",
                           "--json").stdout)
    assert shown["api_token_set"] and shown["webhook_secret_set"] and not shown["pat_set"]
    assert shown["mapping"] == {"labels": ["data-quality"]}
    assert shown["base_url"] == "https://acme.atlassian.net"

    updated = cli(service_env, "integration", "update", "--tenant", "acme",
                  "--project-key", "OPS", "--clear", "webhook_secret", "--secrets-from", "env",
                  JIRA_API_TOKEN="tok-cli-new")
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout.strip() == "changed: api_token, project_key, webhook_secret"
    shown = json.loads(cli(service_env, "integration", "show", "--tenant", "acme",
                           "--json").stdout)
    assert shown["project_key"] == "OPS" and not shown["webhook_secret_set"]

    listed = json.loads(cli(service_env, "integration", "list", "--json").stdout)
    assert [item["tenant"] for item in listed] == ["acme"]
    text = cli(service_env, "integration", "list").stdout
    assert "acme" in text and "https://acme.atlassian.net" in text and "enabled" in text


def test_refusals_and_usage_errors(service_env):
    def add(*args: str, stdin: str = f"api_token={API_TOKEN}\n") -> subprocess.CompletedProcess:
        return cli(service_env, "integration", "add", "--tenant", "acme", "--email", "a@b.c",
                   "--secrets-from", "stdin", *args, stdin=stdin)

    bad_url = add("--base-url", "acme.atlassian.net")
    assert bad_url.returncode == 2 and "base_url: expected an http(s) URL" in bad_url.stderr
    no_token = add("--base-url", "https://acme.atlassian.net", stdin="")
    assert no_token.returncode == 2 and "api_token: required" in no_token.stderr
    bad_line = add("--base-url", "https://acme.atlassian.net", stdin="token: abc-secret\n")
    assert bad_line.returncode == 2 and "stdin line 1" in bad_line.stderr
    assert "abc-secret" not in bad_line.stderr
    assert add("--base-url", "https://acme.atlassian.net").returncode == 0
    taken = add("--base-url", "https://acme.atlassian.net")
    assert taken.returncode == 1 and "already has integration" in taken.stderr
    nothing = cli(service_env, "integration", "update", "--tenant", "acme")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    unknown = cli(service_env, "integration", "show", "--tenant", "nobody")
    assert unknown.returncode == 1 and "no integration for tenant 'nobody'" in unknown.stderr
    assert run_cli(["integration", "add", "--tenant", "x", "--api-token", "t"],
                   service_env).returncode == 2  # secrets are never arguments


def test_disable_enable_delete_and_logs(service_env):
    assert cli(service_env, "integration", "add", "--tenant", "acme", "--base-url",
               "https://acme.atlassian.net", "--pat", "x").returncode == 2
    assert cli(service_env, "integration", "add", "--tenant", "acme", "--base-url",
               "https://acme.atlassian.net", "--auth-method", "pat", "--secrets-from", "env",
               JIRA_PAT="pat-cli-1").returncode == 0
    assert cli(service_env, "integration", "disable", "--tenant", "acme").stdout.strip() \
        == "disabled"
    assert cli(service_env, "integration", "disable", "--tenant", "acme").stdout.strip() \
        == "already disabled"
    assert not json.loads(cli(service_env, "integration", "show", "--tenant", "acme",
                              "--json").stdout)["enabled"]
    assert cli(service_env, "integration", "enable", "--tenant", "acme").stdout.strip() \
        == "enabled"

    logs = cli(service_env, "logs", "--tenant", "acme").stdout.splitlines()
    assert [line.split()[2] for line in logs] == ["admin/created:", "admin/disabled:",
                                                  "admin/enabled:"]
    as_json = json.loads(cli(service_env, "logs", "--tenant", "acme", "--json",
                             "--decision", "enabled").stdout)
    assert [row["decision"] for row in as_json] == ["enabled"]
    assert cli(service_env, "logs", "--tenant", "acme", "--level", "loud").returncode == 2

    assert cli(service_env, "integration", "delete", "--tenant", "acme").returncode == 1
    deleted = cli(service_env, "integration", "delete", "--tenant", "acme", "--sever", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(cli(service_env, "integration", "list", "--json").stdout) == []


def test_logs_follow_prints_new_rows_as_they_come(service_env):
    assert cli(service_env, "integration", "add", "--tenant", "acme", "--base-url",
               "https://acme.atlassian.net", "--auth-method", "pat", "--secrets-from", "env",
               JIRA_PAT="pat-cli-1").returncode == 0
    follower = subprocess.Popen([sys.executable, "-m", "jira_sync", "logs", "--tenant", "acme",
                                 "--follow"], env=service_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert "admin/created" in follower.stdout.readline()
        assert cli(service_env, "integration", "disable", "--tenant", "acme").returncode == 0
        assert "admin/disabled" in follower.stdout.readline()
    finally:
        follower.kill()
        follower.communicate()
