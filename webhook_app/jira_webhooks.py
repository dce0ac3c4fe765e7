"""``POST /api/v2/integrations/jira/webhook`` (signed) and ``.../webhook/<token>`` (CONTRACT §3).

Checks in this order: size (413), who sent it (401, 403), then that the body is a JSON object
(400). A delivery is stored before the answer and only its inbox id is sent to the broker.
Jira retries 408, 409, 425, 429, 5xx and timeouts, so a duplicate is a 200, a database that
cannot store it a 503 (Jira sends it again), and a broker that is down still a 2xx: the
sweep hands stored deliveries nobody took to the workers.
"""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from jira_sync import deliveries
from jira_sync.broker import send_deliveries
from jira_sync.crypto import SecretBox
from jira_sync.inbox_writer import InboxWriter
from jira_sync.store.db import Database
from webhook_app import context
from webhook_app.producer import producer

logger = logging.getLogger("webhook_app.jira_webhooks")
blueprint = Blueprint("jira_webhooks", __name__)
_building = threading.Lock()


@blueprint.post("/api/v2/integrations/jira/webhook")
@blueprint.post("/api/v2/integrations/jira/webhook/<token>")
def receive(token: str | None = None) -> ResponseReturnValue:
    settings = context.settings()
    body = _body(settings.webhook_max_bytes)
    targets = _targets()
    address = deliveries.client_address(request.remote_addr,
                                         request.headers.get("X-Forwarded-For"),
                                         settings.trusted_proxies)
    try:
        accepted = deliveries.accept(targets, _writer(), body, request.headers,
                                     address=address, token=token)
    except deliveries.Refused as exc:
        abort(exc.status, exc.reason)
    except SQLAlchemyError as exc:
        logger.warning("cannot store a Jira delivery: %s", type(exc).__name__)
        abort(503, "the delivery could not be stored; Jira sends it again")
    if not accepted.inbox_ids:
        return jsonify(status="duplicate"), 200
    return jsonify(status="accepted", deliveries=len(accepted.inbox_ids)), 202


def _body(limit: int) -> bytes:
    """The raw body (the signature covers the exact bytes), refused past ``limit``."""
    reason = f"a Jira delivery may be at most {limit} bytes (JIRA_SYNC_WEBHOOK_MAX_BYTES)"
    if (request.content_length or 0) > limit:
        abort(413, reason)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        abort(413, reason)
    return body


def _writer() -> InboxWriter:
    """The process's one inbox writer (its thread starts with the first delivery, after
    gunicorn's fork)."""
    extensions = context.extensions()
    with _building:
        if "inbox_writer" not in extensions:
            app = producer()
            database = Database(context.settings().database_url, pre_ping=False)
            extensions["inbox_writer"] = InboxWriter(
                database, deliveries.insert_new,
                lambda inbox_ids: send_deliveries(app, inbox_ids))
    return extensions["inbox_writer"]


def _targets() -> deliveries.Targets:
    extensions = context.extensions()
    if "webhook_targets" not in extensions:
        settings = context.settings()
        if not settings.secret_keys:
            abort(503, "JIRA_SYNC_SECRET_KEY is not set: webhook secrets cannot be read")
        extensions["webhook_targets"] = deliveries.Targets(
            context.database(), SecretBox(settings.secret_keys))
    return extensions["webhook_targets"]
