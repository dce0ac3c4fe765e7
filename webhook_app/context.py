"""Accessors for what create_app attached to the application."""

from __future__ import annotations

from typing import Any

from flask import current_app

from config.settings import Settings
from jira_sync.store.db import Database


def settings() -> Settings:
    return current_app.extensions["jira_sync"]["settings"]


def database() -> Database:
    return current_app.extensions["jira_sync"]["database"]


def extensions() -> dict[str, Any]:
    """The app's own state, for what is built on first use (the sync context)."""
    return current_app.extensions["jira_sync"]
