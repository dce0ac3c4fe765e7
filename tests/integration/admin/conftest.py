"""A real ``jira-sync web`` (gunicorn) with the admin API, on this test's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.jira.config import FieldDef, default_projects
from tests.support.processes import ServiceProcess, free_port
from tests.support.stack import Stack

ADMIN_TOKEN = "adm-7f3c9e1b-token"


class AdminApi:
    """The admin API over HTTP, with the token unless told otherwise."""

    def __init__(self, base_url: str, token: str | None = ADMIN_TOKEN) -> None:
        self.base_url, self.token = base_url, token
        self.http = requests.Session()

    def call(self, method: str, path: str, *, token: str | None = ADMIN_TOKEN,
             **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.base_url}/api/v2{path}", headers=headers,
                                 timeout=30, **kwargs)

    def create(self, **fields: Any) -> dict[str, Any]:
        body = {"tenant": "acme", "base_url": "https://acme.atlassian.net",
                "email": "svc@example.com", "api_token": "tok-123", **fields}
        response = self.call("POST", "/integrations/jira", json=body)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def web(service_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    port = free_port()
    process = ServiceProcess(["web"], {**service_env, "JIRA_SYNC_WEB_PORT": str(port),
                                       "JIRA_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
                                       "JIRA_SYNC_LOG_LEVEL": "DEBUG"},
                             tmp_path / "web.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/healthz", 60)
        yield process, url
    finally:
        process.kill()


@pytest.fixture
def admin(web: tuple[ServiceProcess, str]) -> AdminApi:
    return AdminApi(web[1])


# What the bootstrap variables would set; removed, so the API's integration is the only one.
ENVIRONMENT_INTEGRATION = ("JIRA_BASE_URL", "JIRA_DEPLOYMENT", "JIRA_PROJECT_KEY",
                           "JIRA_ISSUE_TYPE", "JIRA_WEBHOOK_SECRET", "QALITA_API_URL",
                           "QALITA_API_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PAT")


class Service:
    """web, worker and beat between the two simulators, with one integration made through
    the admin API (none from the environment)."""

    def __init__(self, stack: Stack, api: AdminApi, integration: dict[str, Any]) -> None:
        self.stack, self.api, self.integration = stack, api, integration
        self.path = f"/integrations/jira/{integration['id']}"


def start_service(service_env: dict[str, str], jira: Any, qalita: Any, tmp_path: Path, *,
                  webhook_secret: str, **fields: Any) -> Service:
    stack = Stack({**service_env, "JIRA_SYNC_ADMIN_TOKEN": ADMIN_TOKEN}, jira, qalita, tmp_path)
    for name in ENVIRONMENT_INTEGRATION:
        stack.env.pop(name, None)
    try:
        stack.up()
        stack.configure_jira(webhook_url=stack.webhook_url, webhook_secret=webhook_secret)
        api = AdminApi(f"http://127.0.0.1:{stack.web_port}")
        created = api.call("POST", "/integrations/jira", json={
            "tenant": "default", "base_url": jira.base_url, "email": "svc@example.com",
            "webhook_secret": webhook_secret, "qalita_api_url": qalita.base_url,
            "project_key": "DATA", "issue_type": "Bug", **fields})
        assert created.status_code == 201, created.text
    except BaseException:
        stack.close()
        raise
    return Service(stack, api, created.json())


# A required option field on DATA's create screen: a create whose default for it names no
# option is refused by Jira (400), a dead letter; the right default fixes it.
TEAM = "customfield_10050"
BROKEN = {"field_defaults": {TEAM: {"value": "Nobody"}}}
FIXED = {"field_defaults": {TEAM: {"value": "Data platform"}}}


@pytest.fixture
def team_sim() -> Iterator[Any]:
    """The Jira simulator whose project DATA requires the ``TEAM`` option field."""
    data, ops = default_projects()
    team = FieldDef(TEAM, "Team", "option", required=True, options=("Data platform",))
    config = SimulatorConfig(index_lag_ms=0, projects=(
        type(data)(**{**data.__dict__, "fields": (team,)}), ops))
    with running_simulator(config) as running:
        yield running
