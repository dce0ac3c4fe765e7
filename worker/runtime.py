"""Per-process state of a worker or beat: the settings and the database, built once."""

from __future__ import annotations

from functools import cache

from config import settings as settings_module
from config.settings import Settings
from jira_sync.store.db import Database


@cache
def settings() -> Settings:
    return settings_module.load()


@cache
def database() -> Database:
    return Database(settings().database_url)
