"""Fixtures of the receiver's tests: integrations as the bootstrap makes them, and the Flask
app on this test's database and broker."""

from __future__ import annotations

import dataclasses

import pytest

from config.settings import load
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from tests.support.sync import bootstrap
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


