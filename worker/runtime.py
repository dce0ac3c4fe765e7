"""Per-process state of a worker or beat: the settings, the database and the sync context,
built once."""

from __future__ import annotations

from functools import cache

from config import settings as settings_module
from config.settings import Settings
from jira_sync.crypto import SecretBox
from jira_sync.jira.limiter import limiter_for
from jira_sync.store.db import Database
from jira_sync.sync.context import SyncContext


@cache
def settings() -> Settings:
    return settings_module.load()


@cache
def database() -> Database:
    return Database(settings().database_url)


@cache
def sync_context() -> SyncContext:
    """Built at the first task, in the process that runs it (after the pool's fork)."""
    current = settings()
    return SyncContext(
        database=database(), box=SecretBox(current.require_secret_keys()),
        debounce_seconds=current.debounce_seconds, timings=current.sync,
        mapping_file=current.mapping_file, limiter=limiter_for(current.broker_url, database()),
    )
