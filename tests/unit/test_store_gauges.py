"""The gauges read from the tables at scrape time, as the web's /metrics and the worker's
metrics port both serve them."""

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from jira_sync.store.db import Database
from jira_sync.store.gauges import StoreCollector
from jira_sync.store.models import DeadLetter, Integration
from jira_sync.store.types import utcnow


def scrape(database: Database) -> str:
    registry = CollectorRegistry()
    registry.register(StoreCollector(database))
    return generate_latest(registry).decode()


def integration(tenant: str, **columns) -> Integration:
    return Integration(name=tenant, tenant=tenant, tenant_label=tenant, base_url="https://x",
                       deployment="cloud", auth_method="basic", secrets_sealed="x",
                       enabled=True, **columns)


def test_paused_sides_are_1_and_the_others_0_deleted_integrations_left_out(sqlite_url):
    database = Database(sqlite_url)
    now = utcnow()
    with database.unit_of_work() as session:
        session.add_all([
            integration("acme", jira_paused_at=now, jira_paused_reason="401"),
            integration("beta", qalita_paused_at=now, qalita_paused_reason="401"),
            integration("gone", jira_paused_at=now, deleted_at=now - timedelta(days=1)),
        ])
    text = scrape(database)
    database.dispose()
    assert 'jira_sync_integration_paused{side="jira",tenant="acme"} 1.0' in text
    assert 'jira_sync_integration_paused{side="qalita",tenant="acme"} 0.0' in text
    assert 'jira_sync_integration_paused{side="jira",tenant="beta"} 0.0' in text
    assert 'jira_sync_integration_paused{side="qalita",tenant="beta"} 1.0' in text
    assert 'tenant="gone"' not in text


def test_a_resolved_dead_letter_is_no_longer_open(sqlite_url):
    database = Database(sqlite_url)
    with database.unit_of_work() as session:
        session.add_all([DeadLetter(kind="create", reason="a"),
                         DeadLetter(kind="create", reason="b", resolved_at=utcnow())])
    text = scrape(database)
    database.dispose()
    assert "jira_sync_dead_letters_open 1.0" in text


def test_an_unreachable_database_is_database_up_0():
    database = Database("postgresql+psycopg2://postgres@127.0.0.1:1/nothing")
    text = scrape(database)
    database.dispose()
    assert "jira_sync_database_up 0.0" in text
