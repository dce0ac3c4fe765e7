"""Fixtures of the inbound tests: integrations as the bootstrap makes them, the Flask app on
this test's database and broker, both simulators, and the in-process two-way harness."""

from __future__ import annotations

import dataclasses

import pytest

from config.settings import load
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.support.sync import bootstrap
from tests.support.two_way import TwoWay
from webhook_app import create_app

SECRET = "It's a Secret to Everybody"


@pytest.fixture
def integrations(database, secret_key):
    """Make integrations as the environment bootstrap does; returns their ids."""
    box = SecretBox((secret_key,))

    def make(tenant: str = "default", *, secret: str | None = SECRET,
             base_url: str = "https://acme.atlassian.net", allowlist=None) -> int:
        described = bootstrap(base_url, "cloud", tenant=tenant)
        secrets = {**described.secrets, **({"webhook_secret": secret} if secret else {})}
        described = dataclasses.replace(described, secrets=secrets, ip_allowlist=allowlist)
        with database.unit_of_work() as session:
            return upsert_from_env(session, described, box).id

    return make


@pytest.fixture
def make_client(secret_key, broker_url, postgres_url):
    apps = []

    def make(database_url: str = postgres_url, **extra: str):
        env = {"JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
               "JIRA_SYNC_SECRET_KEY": secret_key, **extra}
        app = create_app(load(env))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["jira_sync"]["database"].dispose()




@pytest.fixture
def jira(deployment):
    """The Jira simulator of the test's ``deployment`` (modules parametrize it)."""
    with running_simulator(SimulatorConfig(deployment=deployment, index_lag_ms=0)) as running:
        yield running


@pytest.fixture
def qalita(broker_url):
    """The QALITA simulator, publishing its events on the test's broker."""
    with running_qalita_simulator(QalitaSimulatorConfig(broker_url=broker_url)) as running:
        yield running


@pytest.fixture
def make(database, jira, qalita, broker_url):
    """Start the two-way harness (tests/support/two_way.py); closed after the test."""
    made = []

    def start(**kwargs) -> TwoWay:
        sync = TwoWay(database, jira, qalita, broker_url, **kwargs)
        made.append(sync)
        return sync

    yield start
    for sync in made:
        sync.close()
