"""The admin API (CONTRACT §3): thin views over ``jira_sync.admin``, behind the admin token."""

from __future__ import annotations

from flask import Flask
from marshmallow import ValidationError

from jira_sync.admin.errors import AdminError
from webhook_app.admin import (  # noqa: F401 - each registers its operations
    activity,
    dead_letters,
    integrations,
    links,
)
from webhook_app.admin.api import admin_error, api, openapi, validation_error


def register(app: Flask) -> None:
    app.register_blueprint(api.blueprint)
    app.add_url_rule("/api/v2/openapi.json", "openapi", openapi, methods=["GET"])
    app.register_error_handler(ValidationError, validation_error)
    app.register_error_handler(AdminError, admin_error)
