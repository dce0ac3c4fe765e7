"""Accessors for what create_app attached to the application."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app

from config.settings import Settings
from jira_sync.crypto import SecretBox
from jira_sync.store.db import Database
from jira_sync.sync.context import SyncContext


def settings() -> Settings:
    return current_app.extensions["jira_sync"]["settings"]


def database() -> Database:
    return current_app.extensions["jira_sync"]["database"]


def extensions() -> dict[str, Any]:
    """The app's own state, for what is built on first use (the sync context)."""
    return current_app.extensions["jira_sync"]


def secret_box() -> SecretBox:
    """The process's box for sealed credentials; 503 when no key is configured."""
    keys = settings().secret_keys
    if not keys:
        abort(503, "JIRA_SYNC_SECRET_KEY is not set: stored credentials cannot be read")
    return SecretBox(keys)


def sync_context() -> SyncContext:
    """The process's sync context (clients, mappings, caches), built on first use; 503 when
    no key is configured to open the stored credentials."""
    extensions_ = extensions()
    if "sync" not in extensions_:
        extensions_["sync"] = SyncContext.from_settings(settings(), database()) \
            if settings().secret_keys else None
    if extensions_["sync"] is None:
        abort(503, "JIRA_SYNC_SECRET_KEY is not set: stored credentials cannot be read")
    return extensions_["sync"]
