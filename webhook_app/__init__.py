"""The Flask application: verify, store, enqueue; admin API; health and metrics (thin)."""

from __future__ import annotations

from flask import Flask, abort, request

from config.settings import Settings
from jira_sync.store.db import Database
from webhook_app import admin, errors, health, jira_webhooks, metrics, qalita_events


def create_app(settings: Settings, database: Database | None = None) -> Flask:
    app = Flask("webhook_app")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["jira_sync"] = {
        "settings": settings,
        "database": database or Database(settings.database_url),
    }
    errors.register(app)
    admin.register(app)

    @app.before_request
    def refuse_oversized_bodies() -> None:
        # Before routing errors, so an oversized body is refused whatever its target.
        if (request.content_length or 0) > settings.max_body_bytes:
            abort(413, f"request body over {settings.max_body_bytes} bytes")

    app.register_blueprint(health.blueprint)
    app.register_blueprint(qalita_events.blueprint)
    app.register_blueprint(jira_webhooks.blueprint)
    metrics.register(app)
    return app
