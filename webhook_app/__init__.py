"""The Flask application: verify, store, enqueue; admin API; health and metrics (thin)."""

from __future__ import annotations

from flask import Flask

from config.settings import Settings
from jira_sync.store.db import Database
from webhook_app import errors, health, metrics


def create_app(settings: Settings, database: Database | None = None) -> Flask:
    app = Flask("webhook_app")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["jira_sync"] = {
        "settings": settings,
        "database": database or Database(settings.database_url),
    }
    errors.register(app)
    app.register_blueprint(health.blueprint)
    metrics.register(app)
    return app
