"""``POST /api/v2/integrations/qalita/events``: QALITA events over HTTP (CONTRACT §3).

The HTTP twin of the queue: the same validation and intake, but an HTTP sender gets its
answer at once, so a rejected event is a 400 with the validation errors rather than a dead
letter. 202 once the event is stored; 503 when it cannot be stored, so the sender retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from jira_sync import intake
from jira_sync.events.qalita_event import MAX_EVENT_BYTES, InvalidEvent, parse_event
from webhook_app import context
from webhook_app.producer import schedule

logger = logging.getLogger("webhook_app.qalita_events")
blueprint = Blueprint("qalita_events", __name__)
SIGNATURE_HEADER = "X-Qalita-Signature"


@blueprint.post("/api/v2/integrations/qalita/events")
def receive() -> ResponseReturnValue:
    settings = context.settings()
    secret = settings.qalita_events_secret
    if not secret:
        abort(401, "QALITA_EVENTS_SECRET is not set: this endpoint refuses every request "
                   "until it is")
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        abort(413, "an event may be at most 1 MiB")
    body = request.get_data(cache=False)
    if len(body) > MAX_EVENT_BYTES:
        abort(413, "an event may be at most 1 MiB")
    if not _signature_matches(secret, body, request.headers.get(SIGNATURE_HEADER, "")):
        abort(401, f"{SIGNATURE_HEADER} is missing or does not match the body "
                   "(expected sha256=<hex HMAC-SHA256 of the raw body>)")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any event
        abort(400, "the body is not JSON")
    try:
        event = parse_event(payload)
    except InvalidEvent as exc:
        return jsonify(error="Bad Request", reason=exc.reason, errors=exc.errors), 400
    sync = context.sync_context()
    try:
        with context.database().unit_of_work() as session:
            dues = intake.accept(session, sync, [(event, payload)])
    except SQLAlchemyError as exc:
        logger.warning("cannot store QALITA event %s: %s", event.event_id, type(exc).__name__)
        abort(503, "the event could not be stored; send it again")
    schedule(dues)
    return jsonify(status="accepted", event_id=event.event_id), 202


def _signature_matches(secret: str, body: bytes, header: str) -> bool:
    scheme, _, given = header.strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, so a header with non-ASCII characters is a mismatch rather than a TypeError.
    return scheme.lower() == "sha256" and hmac.compare_digest(
        given.strip().lower().encode("utf-8", "replace"), expected.encode())

