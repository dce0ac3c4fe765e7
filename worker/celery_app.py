"""The Celery application, configured once from the settings.

Reliability choices (see docs/operations.md and shared anchors R1-R19): late acks with
requeue on worker loss because every task is idempotent behind the database; prefetch 1
because tasks call slow remote APIs; no result backend because outcomes live in our tables;
a visibility timeout longer than any countdown or time limit so Redis never redelivers a
message that is merely waiting or still running. On RabbitMQ (docs/scaling.md): classic
durable queues, persistent messages, publisher confirms (jira_sync/broker.py), and
heartbeats so that the node hands a vanished worker's unacknowledged messages on.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from config import logging as service_logging
from config.settings import Settings, secret_values
from jira_sync import telemetry
from jira_sync.broker import (
    BROKER_SOCKET_TIMEOUT_SECONDS,
    transport_options,
)
from worker import metrics, queues, runtime

# Upper bounds that every countdown and time limit in the code base stays under.
TASK_SOFT_TIME_LIMIT = 240
TASK_TIME_LIMIT = 300
# The heartbeat timeout of the worker's AMQP connection (RabbitMQ; Redis has none): a worker
# host that vanished without closing its connection is noticed within about that, and the
# messages it held go back to their queue then, rather than at the node's consumer_timeout.
BROKER_HEARTBEAT_SECONDS = 60

TASK_MODULES = ("worker.tasks.admin", "worker.tasks.inbound", "worker.tasks.maintenance",
                "worker.tasks.outbound", "worker.tasks.qalita")
# Task name -> queue, filled by the house decorator (worker.house.task).
TASK_QUEUES: dict[str, str] = {}


def route(name: str, *_: Any, **__: Any) -> dict[str, str] | None:
    """Send each task to its role's queue (Celery 6 drops the per-task ``queue`` attribute)."""
    queue = TASK_QUEUES.get(name)
    return {"queue": queue} if queue else None


def make_celery(settings: Settings) -> Celery:
    app = Celery("jira_sync", set_as_current=True)
    options = transport_options(settings.broker_url)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=BROKER_SOCKET_TIMEOUT_SECONDS,
        broker_heartbeat=BROKER_HEARTBEAT_SECONDS,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=TASK_TIME_LIMIT,
        task_soft_time_limit=TASK_SOFT_TIME_LIMIT,
        task_queues=queues.declarations(),
        task_default_delivery_mode="persistent",
        task_default_queue=queues.MAINTENANCE,
        task_routes=(route,),
        task_create_missing_queues=False,
        task_send_sent_event=True,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        # Celery's own shrink-and-restore of prefetch after a reconnect would overwrite the
        # window batch intake widens (worker/batching.py) and leave it at 1 for good.
        worker_enable_prefetch_count_reduction=False,
        worker_max_tasks_per_child=1000,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        timezone="UTC",
        enable_utc=True,
        include=list(TASK_MODULES),
    )
    return app


app = make_celery(runtime.settings())


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    settings = runtime.settings()
    service_logging.configure(settings.log_level, secret_values(settings),
                              log_format=settings.log_format)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """In the main process, before the pool forks (worker/metrics.py says why)."""
    settings = runtime.settings()
    if settings.worker_metrics_port:
        metrics.serve(settings.web_host, settings.worker_metrics_port, runtime.database())


@signals.worker_shutdown.connect
def _stop_metrics(**_: Any) -> None:
    metrics.stop()


@signals.task_prerun.connect
def _task_started(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    service_logging.bind(task_id=task_id)
    telemetry.task_started(sender.name)


@signals.task_postrun.connect
def _task_ended(sender: Any = None, **_: Any) -> None:
    telemetry.task_ended(sender.name)
    service_logging.clear_context()  # what the task bound says nothing about the next one


@signals.task_retry.connect
def _task_retried(sender: Any = None, **_: Any) -> None:
    telemetry.task_retried(sender.name)


@signals.worker_process_init.connect
def _dispose_inherited_engine(**_: Any) -> None:
    runtime.database().after_fork()


@signals.worker_ready.connect
def _sweep_once_at_start(sender: Any = None, **_: Any) -> None:
    """One sweep when a worker starts: a deployment without beat still applies the events held
    for a tenant whose integration now exists, and flushes what a previous worker lost."""
    app.send_task("jira_sync.sweep", queue=queues.MAINTENANCE)
    app.send_task("jira_sync.sweep_deliveries", queue=queues.MAINTENANCE)
