"""The Flask app alone (test client): probes, metrics, and JSON for every error."""

import re

import pytest

from config.settings import load
from tests.support.processes import closed_port
from webhook_app import create_app


@pytest.fixture
def app_for(tmp_path):
    created = []

    def make(database_url: str, broker_url: str, **extra: str):
        env = {"JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
               "JIRA_SYNC_MAX_BODY_BYTES": "2048", **extra}
        app = create_app(load(env))
        created.append(app)
        return app.test_client()

    yield make
    for app in created:
        app.extensions["jira_sync"]["database"].dispose()


def test_healthz_needs_nothing(app_for, tmp_path):
    client = app_for(f"sqlite:///{tmp_path / 'absent' / 'db.sqlite'}",
                     f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_names_the_broker_when_it_is_down(app_for, sqlite_url):
    port = closed_port()
    response = app_for(sqlite_url, f"redis://:pw-hidden@127.0.0.1:{port}/0").get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["broker"].startswith("broker unreachable at redis://")
    assert str(port) in response.json["reason"]
    assert "pw-hidden" not in response.get_data(as_text=True)


def test_readyz_names_an_unmigrated_database(app_for, tmp_path, broker_url):
    response = app_for(f"sqlite:///{tmp_path / 'empty.db'}", broker_url).get("/readyz")
    assert response.status_code == 503
    assert "not migrated" in response.json["checks"]["database"]
    assert response.json["checks"]["broker"] == "ok"


def test_readyz_ok_when_both_answer(app_for, sqlite_url, broker_url):
    response = app_for(sqlite_url, broker_url).get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("get", "/nowhere", None, 404),
    ("post", "/healthz", None, 405),
    ("post", "/healthz", b"x" * 4096, 413),
])
def test_errors_are_json_with_a_reason(app_for, sqlite_url, method, path, body, status):
    client = app_for(sqlite_url, "redis://127.0.0.1:1/0")
    response = getattr(client, method)(path, data=body)
    assert response.status_code == status
    assert response.is_json and response.json["reason"]


def test_metrics_expose_the_store_in_prometheus_format(app_for, sqlite_url):
    response = app_for(sqlite_url, "redis://127.0.0.1:1/0").get("/metrics")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "jira_sync_database_up 1.0" in text
    assert "jira_sync_dead_letters_open 0.0" in text
    assert "jira_sync_jira_delivery_wait_seconds 0.0" in text


def test_metrics_show_the_inbound_lanes_waiting_deliveries_and_reconciliation(
        app_for, sqlite_url):
    from datetime import timedelta

    from jira_sync.store.db import Database
    from jira_sync.store.models import InboxEvent, Integration, IssueLink
    from jira_sync.store.types import utcnow

    database = Database(sqlite_url)
    now = utcnow()
    with database.unit_of_work() as session:
        integration = Integration(name="acme", tenant="acme", tenant_label="acme",
                                  base_url="https://x",
                                  deployment="cloud", auth_method="basic", secrets_sealed="x",
                                  enabled=True, reconciled_at=now - timedelta(seconds=90))
        session.add(integration)
        session.flush()
        lanes = [dict(inbound_due_at=now), dict(inbound_due_at=now, inbound_attempts=2),
                 dict(inbound_state="failed"), dict(inbound_state="gone"), dict()]
        session.add_all(IssueLink(integration_id=integration.id, tenant="acme",
                                  qalita_issue_id=n, **lane) for n, lane in enumerate(lanes))
        session.add(InboxEvent(source="jira", dedupe_key="1:a", payload={}, state="received",
                               attempts=0, received_at=now - timedelta(seconds=40)))
    database.dispose()
    text = app_for(sqlite_url, "redis://127.0.0.1:1/0").get("/metrics").get_data(as_text=True)
    for state in ("due", "parked", "failed", "gone"):
        assert f'jira_sync_inbound_links{{state="{state}"}} 1.0' in text
    wait = re.search(r"^jira_sync_jira_delivery_wait_seconds (\S+)$", text, re.M)
    assert 40 <= float(wait[1]) < 100
    age = re.search(r'^jira_sync_reconcile_age_seconds{tenant="acme"} (\S+)$', text, re.M)
    assert 90 <= float(age[1]) < 150


def test_metrics_report_a_database_that_is_down(app_for, tmp_path):
    response = app_for(f"sqlite:///{tmp_path / 'empty.db'}", "redis://127.0.0.1:1/0").get(
        "/metrics")
    assert response.status_code == 200
    assert "jira_sync_database_up 0.0" in response.get_data(as_text=True)
