"""Can this process do its job right now? One check per dependency, each a short reason."""

from __future__ import annotations

from kombu import Connection
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.exc import SQLAlchemyError

from jira_sync.store.db import Database
from jira_sync.store.migrate import schema_problem

BROKER_TIMEOUT_SECONDS = 2


def database_problem(database: Database) -> str | None:
    """Why the database cannot be used: unreachable, not migrated, or at another revision."""
    try:
        return schema_problem(database)
    except SQLAlchemyError as exc:
        return _unreachable(exc)


def reachability_problem(database: Database) -> str | None:
    """Why the database does not answer at all (what migrating needs)."""
    try:
        database.ping()
    except SQLAlchemyError as exc:
        return _unreachable(exc)
    return None


def _unreachable(exc: SQLAlchemyError) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"database unreachable: {reason}"


def broker_problem(broker_url: str) -> str | None:
    where = maybe_sanitize_url(broker_url)
    try:
        with Connection(broker_url, connect_timeout=BROKER_TIMEOUT_SECONDS,
                        transport_options={"socket_timeout": BROKER_TIMEOUT_SECONDS,
                                           "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                                           "max_retries": 0}) as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # Any failure here means "not ready"; the reason says which.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"broker unreachable at {where}: {reason}"
    return None
