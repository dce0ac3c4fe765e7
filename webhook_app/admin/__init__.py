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
from webhook_app.admin.api import (
    CONVERTERS,
    admin_error,
    api,
    guard,
    openapi,
    validation_error,
)


def register(app: Flask) -> None:
    """Before the app's other request checks: the token is the first thing looked at."""
    app.before_request(guard)
    app.url_map.converters.update(CONVERTERS)
    app.register_blueprint(api.blueprint)
    app.add_url_rule("/api/v2/openapi.json", "openapi", openapi, methods=["GET"])
    app.register_error_handler(ValidationError, validation_error)
    app.register_error_handler(AdminError, admin_error)
