"""Test Connection (jira_sync.admin.connection) against the Jira and QALITA simulators over HTTP,
on this test's Postgres: each `/_sim/switches` failure is named by the right check with its fix."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from jira_sync.admin import connection
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from jira_sync.store.models import InboxEvent, Integration, LogEntry
from jira_sync.store.types import utcnow
from tests.support.sync import bootstrap

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://sync.example.com/"
WEBHOOK_SECRET = "whsec-never-shown"


@pytest.fixture(params=["cloud", "server"])
def jira(request):
    with running_simulator(SimulatorConfig(deployment=request.param)) as sim:
        yield sim


@pytest.fixture
def qalita():
    with running_qalita_simulator(QalitaSimulatorConfig()) as sim:
        yield sim


@pytest.fixture
def box():
    return SecretBox((Fernet.generate_key().decode(),))


@pytest.fixture
def make(database, box, jira, qalita):
    """The bootstrap's integration of the simulators; returns its id."""
    def make(**secrets: str) -> int:
        described = bootstrap(jira.base_url, jira.config.deployment)
        described = dataclasses.replace(described, qalita_api_url=qalita.base_url, secrets={
            **described.secrets, "qalita_api_token": "qalita-tok",
            "webhook_secret": WEBHOOK_SECRET, **secrets})
        with database.unit_of_work() as session:
            return upsert_from_env(session, described, box).id
    return make


def run(database, box, integration_id: int, **changes) -> dict:
    with database.unit_of_work() as session:
        integration = session.get(Integration, integration_id)
        for name, value in changes.items():
            setattr(integration, name, value)
        return connection.test_connection(session, integration, box,
                                          public_url=PUBLIC_URL).as_dict()


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def failing(report: dict) -> list[str]:
    return [c["name"] for c in report["checks"] if not c["ok"]]


def switch(jira, **switches) -> None:
    requests.post(f"{jira.base_url}/_sim/switches", json=switches, timeout=10).raise_for_status()


def test_a_healthy_integration_passes_every_error_check_and_warns_of_the_webhook(
        database, box, make):
    integration_id = make()
    report = run(database, box, integration_id)
    assert [c["name"] for c in report["checks"]] == list(connection.CHECKS)
    assert report["ok"] is True
    assert failing(report) == ["webhook"]
    webhook = by_name(report)["webhook"]
    assert webhook["level"] == "warning"
    assert webhook["fix"] == ("no delivery in the last 24 h: create a webhook in Jira with URL "
                              "https://sync.example.com/api/v2/integrations/jira/webhook and "
                              "the issue and comment events, or check its secret")
    assert by_name(report)["credentials"]["detail"] == "signed in as svc@example.com"
    assert all(set(c) == {"name", "ok", "level", "detail", "fix"} for c in report["checks"])
    with database.unit_of_work() as session:
        row = session.scalars(select(LogEntry).where(
            LogEntry.integration_id == integration_id, LogEntry.action == "admin")).one()
    assert (row.decision, row.level) == ("test", "info")
    assert row.details["checks"]["webhook"] == "warning"


SWITCHES = [
    ({"revoke_token": True}, "credentials", "error", connection.FIX_CREDENTIALS),
    ({"hide_projects": ["DATA"]}, "project", "error", connection.FIX_PROJECT),
    ({"remove_issue_types": ["Bug"]}, "issue_type", "error",
     "the project has no issue type Bug: pick one of Task"),
    ({"deny_create": ["DATA"]}, "create_permission", "error", connection.FIX_CREATE),
    ({"require_field": ["DATA"]}, "required_fields", "error",
     "the create screen requires Cost Centre (customfield_10900): add it to `field_defaults`"),
    ({"no_done_path": ["DATA"]}, "workflow_done", "error", connection.FIX_DONE),
]


@pytest.mark.parametrize(("switches", "name", "level", "fix"), SWITCHES,
                         ids=[s[1] for s in SWITCHES])
def test_each_failure_is_named_by_its_check_with_its_fix(database, box, make, jira, switches,
                                                         name, level, fix):
    integration_id = make()
    switch(jira, **switches)
    report = run(database, box, integration_id)
    checks = by_name(report)
    assert report["ok"] is False
    assert (checks[name]["ok"], checks[name]["level"], checks[name]["fix"]) == (False, level, fix)
    # Only this check fails at its level; what needed it is skipped, the rest still run.
    assert [c["name"] for c in report["checks"] if not c["ok"] and c["level"] == "error"] \
        == [name]
    assert checks["qalita"]["ok"] and not checks["webhook"]["ok"]
    for skipped in (c for c in report["checks"] if c["level"] == "skipped"):
        assert not skipped["ok"] and skipped["detail"].startswith("not run: `")
    text = json.dumps(report)
    assert "tok-123" not in text and "pat-123" not in text and WEBHOOK_SECRET not in text


def test_a_field_the_mapping_fills_is_no_problem(database, box, make, jira):
    integration_id = make()
    switch(jira, require_field=["DATA"])
    options = {"mapping": {"field_defaults": {"customfield_10900": "CC-1"}}}
    report = run(database, box, integration_id, options=options)
    assert by_name(report)["required_fields"]["ok"] is True
    assert report["ok"] is True


def test_a_recent_delivery_passes_the_webhook_check_and_an_old_one_does_not(database, box,
                                                                            make):
    integration_id = make()
    with database.unit_of_work() as session:
        session.add(InboxEvent(source="jira", dedupe_key=f"{integration_id}:old",
                               integration_id=integration_id, payload={},
                               received_at=utcnow() - timedelta(hours=30)))
    old = by_name(run(database, box, integration_id))["webhook"]
    assert not old["ok"] and "(the last at " in old["detail"]
    with database.unit_of_work() as session:
        session.add(InboxEvent(source="jira", dedupe_key=f"{integration_id}:new",
                               integration_id=integration_id, payload={}))
    assert by_name(run(database, box, integration_id))["webhook"]["ok"] is True


def test_without_a_webhook_secret_the_fix_points_at_the_token_url(database, box, make):
    integration_id = make(webhook_secret="")
    fix = by_name(run(database, box, integration_id))["webhook"]["fix"]
    assert "`jira-sync webhook url`" in fix and "/api/v2/integrations/jira/webhook" not in fix


def test_a_paused_integration_says_why(database, box, make, jira):
    integration_id = make()
    switch(jira, revoke_token=True)
    report = run(database, box, integration_id, jira_paused_at=utcnow(),
                 jira_paused_reason="Jira answered 401 to myself",
                 qalita_paused_at=utcnow(), qalita_paused_reason="QALITA answered 401")
    checks = by_name(report)
    assert "the whole integration is paused since " in checks["credentials"]["detail"]
    assert "(Jira answered 401 to myself)" in checks["credentials"]["detail"]
    assert "the inbound direction is paused since " in checks["qalita"]["detail"]
    with database.unit_of_work() as session:
        row = session.scalars(select(LogEntry).where(
            LogEntry.integration_id == integration_id, LogEntry.action == "admin")).one()
    assert row.level == "warning" and "credentials" in row.message


def test_a_refused_qalita_token_fails_the_qalita_check(database, box, make):
    integration_id = make(qalita_api_token="wrong-qalita-token")
    report = run(database, box, integration_id)
    qalita = by_name(report)["qalita"]
    assert (qalita["ok"], qalita["fix"]) == (False, connection.FIX_QALITA)
    assert report["ok"] is False and "wrong-qalita-token" not in json.dumps(report)


def test_unreachable_jira_and_unreadable_secrets_are_failed_checks(database, box, make):
    integration_id = make()
    report = run(database, box, integration_id, base_url="http://127.0.0.1:9")
    assert by_name(report)["credentials"]["fix"] == connection.FIX_UNREACHABLE
    other = SecretBox((Fernet.generate_key().decode(),))
    with database.unit_of_work() as session:
        integration = session.get(Integration, integration_id)
        unreadable = connection.test_connection(session, integration, other,
                                                public_url=PUBLIC_URL).as_dict()
    assert by_name(unreadable)["credentials"]["fix"] == connection.FIX_UNREADABLE
    assert failing(unreadable)[:1] == ["credentials"]
