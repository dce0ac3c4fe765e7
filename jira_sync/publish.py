"""The producer side of CONTRACT §4, for Python producers such as QALITA.

Celery is imported only when an event is published, so importing ``jira_sync`` stays free
of the framework.
"""

from __future__ import annotations

import os
from typing import Any

from config.settings import DEFAULT_BROKER_URL
from jira_sync.broker import transport_options

QALITA_EVENT_TASK = "jira_sync.qalita_event"
QALITA_QUEUE = "jira_sync.qalita"


def publish_qalita_event(event: dict[str, Any], broker_url: str | None = None) -> str:
    """Send one QALITA issue event to jira-sync; returns the Celery task id.

    ``broker_url`` defaults to ``JIRA_SYNC_BROKER_URL``, then to the service's default. Any
    Celery client can do the same with ``send_task(QALITA_EVENT_TASK, args=(event,),
    queue=QALITA_QUEUE)``; a producer that sends many keeps an ``EventPublisher``.
    """
    publisher = EventPublisher(broker_url)
    try:
        return publisher.publish(event)
    finally:
        publisher.close()


class EventPublisher:
    """One broker connection pool for many events: a Celery app per event costs its
    connection set-up each time, which a busy producer should not pay."""

    def __init__(self, broker_url: str | None = None) -> None:
        from celery import Celery

        url = broker_url or os.environ.get("JIRA_SYNC_BROKER_URL") or DEFAULT_BROKER_URL
        self._app = Celery("qalita-producer", broker=url, set_as_current=False)
        # The same transport options as the worker, or a filesystem broker (the demo's) would
        # spool into the current directory instead of the folders the worker reads.
        self._app.conf.broker_transport_options = transport_options(url)
        # A producer keeps no results: its (disabled) result backend can be shared by every
        # thread, where Celery would otherwise build one per thread, scanning the installed
        # packages' entry points each time (a threaded server's every request).
        self._app.conf.result_backend_thread_safe = True

    def publish(self, event: dict[str, Any]) -> str:
        """Send one event; returns the Celery task id."""
        return self._app.send_task(QALITA_EVENT_TASK, args=(event,), queue=QALITA_QUEUE).id

    def close(self) -> None:
        self._app.close()
