"""Per-process state of a worker or beat: the settings, the database and the sync context,
built once."""

from __future__ import annotations

from functools import cache

from config import settings as settings_module
from config.settings import Settings
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
    return SyncContext.from_settings(settings(), database(),
                                     limiter_for(settings().broker_url, database()))
