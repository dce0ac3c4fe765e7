"""The web process's connection to the broker, for handing stored work to the workers.

Publishing happens after the work is stored, and a failure there must not hold the sender:
what is stored is found by the sweep anyway. So a publish is retried only briefly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from jira_sync.broker import send_flushes, transport_options
from jira_sync.sync.state import Due
from webhook_app import context

logger = logging.getLogger("webhook_app.producer")

PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2,
                        "interval_max": 0.3}


@cache
def _producer_for(broker_url: str, options_key: str) -> Any:
    from celery import Celery

    app = Celery("jira-sync-web", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = json.loads(options_key)
    app.conf.task_publish_retry_policy = PUBLISH_RETRY_POLICY
    return app


def producer() -> Any:
    """A Celery app that only sends, one per broker URL and process."""
    settings = context.settings()
    return _producer_for(settings.broker_url,
                         json.dumps(transport_options(settings.broker_url), sort_keys=True))


def schedule(dues: Iterable[Due]) -> None:
    """Send the flushes an admin action or an event made due, after its commit. A broker that
    is down fails nothing: the links are stored due, and the sweep hands them to the
    workers."""
    dues = list(dues)
    if dues:
        hand_over(lambda app: send_flushes(app, dues), f"{len(dues)} flush(es)")


def hand_over(send: Callable[[Any], None], what: str) -> bool:
    """Publish with ``send`` once the work is stored; False, logged, when the broker did not
    take it (the caller decides whether stored work is enough)."""
    try:
        send(producer())
    except Exception as exc:  # kombu's connection errors have no common base class
        logger.warning("could not publish %s: %s", what, type(exc).__name__)
        return False
    return True
