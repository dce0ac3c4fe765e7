"""Helpers shared by the commands: settings that fail in one line, and the start-up checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from config import logging as service_logging
from config import settings as settings_module
from config.settings import Settings, SettingsError, secret_values

if TYPE_CHECKING:
    from jira_sync.store.db import Database


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"jira-sync: {message}", err=True)
    raise SystemExit(code)


def load_settings(*, needs_secret_key: bool) -> Settings:
    try:
        settings = settings_module.load()
        if needs_secret_key:
            settings.require_secret_keys()
    except SettingsError as exc:
        fail(str(exc), code=2)
    service_logging.configure(settings.log_level, secret_values(settings))
    return settings


def preflight(settings: Settings) -> None:
    """Refuse to start a worker or beat on a database it cannot use; bootstrap the integration.

    The broker is not checked here: Celery keeps retrying it with a log line, which is what
    an operator wants while Redis restarts.
    """
    from jira_sync.crypto import SecretBox
    from jira_sync.integrations import TenantLabelCollision, upsert_from_env
    from jira_sync.readiness import database_problem
    from jira_sync.store.db import Database

    database = Database(settings.database_url)
    try:
        problem = database_problem(database)
        if problem:
            fail(problem)
        if settings.jira is not None:
            try:
                with database.unit_of_work() as session:
                    upsert_from_env(session, settings.jira, SecretBox(settings.secret_keys))
            except TenantLabelCollision as exc:
                fail(str(exc), code=2)
    finally:
        database.dispose()


@contextmanager
def tenant_database(tenant: str | None) -> Iterator[tuple[Settings, Database, str]]:
    """What a command about one tenant's integration starts from: the settings, the database
    checked and bootstrapped as a worker's is (``preflight``), and the tenant (``--tenant``,
    else ``JIRA_SYNC_TENANT``). The engine is disposed after."""
    from jira_sync.store.db import Database

    settings = load_settings(needs_secret_key=True)
    preflight(settings)
    database = Database(settings.database_url)
    try:
        yield settings, database, tenant or settings.tenant
    finally:
        database.dispose()


def no_integration(tenant: str) -> NoReturn:
    fail(f"no integration for tenant {tenant!r} (set JIRA_BASE_URL and its credentials)")
