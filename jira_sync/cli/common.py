"""Helpers shared by the commands: settings that fail in one line, and the start-up checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

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
    service_logging.configure(settings.log_level, secret_values(settings),
                              log_format=settings.log_format)
    return settings


def preflight(settings: Settings, *, service: bool = True) -> None:
    """Refuse to start on a database that cannot be used; bootstrap the integration.

    A service process (worker, beat) applies the environment whole: it also hands back to
    the admin API an integration the environment no longer describes. A command only
    upserts the integration its environment describes, if any: run from an operator's
    shell, it must not take the service's integration away from the service's environment.
    The broker is not checked here: Celery keeps retrying it with a log line, which is what
    an operator wants while Redis restarts.
    """
    from jira_sync.crypto import SecretBox
    from jira_sync.integrations import TenantLabelCollision, apply_environment, upsert_from_env
    from jira_sync.readiness import database_problem
    from jira_sync.store.db import Database

    database = Database(settings.database_url)
    try:
        problem = database_problem(database)
        if problem:
            fail(problem)
        box = SecretBox(settings.secret_keys)
        try:
            with database.unit_of_work() as session:
                if service:
                    apply_environment(session, settings.jira, box)
                elif settings.jira is not None:
                    upsert_from_env(session, settings.jira, box)
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
    preflight(settings, service=False)
    database = Database(settings.database_url)
    try:
        yield settings, database, tenant or settings.tenant
    finally:
        database.dispose()


def no_integration(tenant: str) -> NoReturn:
    fail(f"no integration for tenant {tenant!r} (set JIRA_BASE_URL and its credentials)")


@contextmanager
def admin_refusals() -> Iterator[None]:
    """An admin core's refusal as one line: exit 1 when refused, 2 for a value that does not
    validate (a usage error, as click's own)."""
    from marshmallow import ValidationError

    from jira_sync.admin.errors import AdminError, Invalid

    try:
        yield
    except Invalid as exc:
        fail(exc.reason, code=2)
    except AdminError as exc:
        fail(exc.reason)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"value": exc.messages}
        fail("; ".join(f"{name}: {' '.join(map(str, text)) if isinstance(text, list) else text}"
                       for name, text in messages.items()), code=2)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


tenant_option = click.option("--tenant", default=None,
                             help="The integration's tenant (default: JIRA_SYNC_TENANT, else "
                             "'default').")


def hand_over(settings: Settings, send: Callable[[Any], None], what: str) -> bool:
    """Publish stored work with ``send`` through a send-only Celery app (a command has no
    worker of its own: it hands the work to the running ones); False, said on stderr, when
    the broker did not take it."""
    from celery import Celery

    from jira_sync.broker import transport_options

    app = Celery("jira-sync-cli", broker=settings.broker_url, set_as_current=False)
    app.conf.broker_transport_options = transport_options(settings.broker_url)
    app.conf.task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2,
                                          "interval_step": 0.5, "interval_max": 1.0}
    try:
        send(app)
    except Exception as exc:  # kombu's connection errors have no common base class
        click.echo(f"jira-sync: the broker did not take {what} ({type(exc).__name__})",
                   err=True)
        return False
    finally:
        app.close()
    return True


def schedule(settings: Settings, dues: list[Any]) -> None:
    """Send the flushes a command made due. The links are stored due, so a broker that is
    down only delays them to beat's next sweep."""
    from jira_sync.broker import send_flushes

    if dues and not hand_over(settings, lambda app: send_flushes(app, dues),
                              f"{len(dues)} flush(es)"):
        click.echo("jira-sync: the sweep will flush the links within a minute", err=True)


def iso_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as operators type it; without an offset, UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"expected an ISO 8601 time such as 2026-12-01T08:00:00Z, "
                                 f"got {value!r}") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
