"""Every error leaves as JSON with a reason, including the ones Flask raises itself (413, 405)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

logger = logging.getLogger("webhook_app")


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return jsonify(error=exc.name, reason=exc.description), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        # Logged with the traceback for us; the caller learns nothing about internals.
        logger.exception("unhandled error")
        return jsonify(error="Internal Server Error", reason="internal error"), 500
