"""The counters and histograms the core bumps as it works; the worker serves them
(``worker/metrics.py``).

prometheus_client decides once, when first imported, whether values live in this process's
memory or in files the whole prefork pool shares (``PROMETHEUS_MULTIPROC_DIR``). The core is
imported long before a worker knows it is one, so nothing here imports prometheus_client
until a metric is first touched: by then the worker's start-up has set that directory, and
every pool process inherits it. Gauges the database can answer (dead letters, backlog,
paused integrations) are not kept here but read at scrape time
(``jira_sync.store.gauges``), so they are the same whichever process is asked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from jira_sync.events.qalita_event import EVENT_TYPES
from jira_sync.store.types import utcnow

OUTBOUND = "qalita_to_jira"
INBOUND = "jira_to_qalita"
# An id, key or number in a request path: the operation label keeps the path's shape only,
# so an issue key never becomes a series of its own.
_VARIABLE_SEGMENT = re.compile(r"^(?![a-z][a-z0-9_-]*$).+$")
# What Jira's RateLimit-Reason looks like; anything else is counted as "other".
_REASON = re.compile(r"^[a-z0-9_-]{1,40}$")
LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)


@dataclass(frozen=True)
class _Metrics:
    events_in: Any
    decisions: Any
    jira_calls: Any
    qalita_calls: Any
    jira_rate_limited: Any
    limiter_wait: Any
    task_retries: Any
    tasks_running: Any
    sync_latency: Any


_CREATING = threading.Lock()


def _metrics() -> _Metrics:
    # Threads (the web's, a client's) may touch the first metric at once: registering the
    # same series twice raises, so one of them creates them all.
    with _CREATING:
        return _created()


@cache
def _created() -> _Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    return _Metrics(
        events_in=Counter("jira_sync_events_in", "Events taken in by a worker, by source "
                          "(qalita, jira) and type", ["source", "type"]),
        decisions=Counter("jira_sync_sync_decisions", "Integration-log rows written, by "
                          "action and decision", ["action", "decision"]),
        jira_calls=Counter("jira_sync_jira_calls", "HTTP calls to Jira, retries included, by "
                           "operation and status (error: no response)", ["operation", "status"]),
        qalita_calls=Counter("jira_sync_qalita_calls", "HTTP calls to QALITA, retries "
                             "included, by operation and status (error: no response)",
                             ["operation", "status"]),
        jira_rate_limited=Counter("jira_sync_jira_rate_limited", "Jira 429 answers, by "
                                  "RateLimit-Reason", ["reason"]),
        limiter_wait=Counter("jira_sync_limiter_wait_seconds", "Seconds slept waiting for a "
                             "slot of the shared Jira rate limiter"),
        task_retries=Counter("jira_sync_task_retries", "Celery task retries (the database "
                             "unreachable), by task", ["task"]),
        tasks_running=Gauge("jira_sync_tasks_running", "Tasks running now in the pool, by task",
                            ["task"], multiprocess_mode="livesum"),
        sync_latency=Histogram("jira_sync_sync_latency_seconds", "From a change on one side "
                               "to its write on the other, by direction", ["direction"],
                               buckets=LATENCY_BUCKETS),
    )


def event_in(source: str, event_type: Any) -> None:
    """One event taken in; a type outside the known ones counts as ``other``."""
    known = event_type in EVENT_TYPES if source == "qalita" else isinstance(event_type, str) \
        and event_type.startswith(("jira:issue_", "comment_"))
    _metrics().events_in.labels(source, event_type if known else "other").inc()


def decisions(made: Iterable[tuple[str, str]]) -> None:
    """Integration-log rows written, as (action, decision), once their transaction commits
    (``jira_sync.sync.journal.write``)."""
    counter = None
    for action, decision in made:
        counter = counter or _metrics().decisions
        counter.labels(action, decision).inc()


def operation(method: str, path: str) -> str:
    """``PUT /issue/{}``: the method and the shape of the path, ids and keys left out."""
    segments = path.split("?", 1)[0].split("/")
    return f"{method} " + "/".join(_VARIABLE_SEGMENT.sub("{}", s) for s in segments)


def jira_call(method: str, path: str, status: int | None) -> None:
    _metrics().jira_calls.labels(operation(method, path), status or "error").inc()


def qalita_call(method: str, path: str, status: int | None) -> None:
    _metrics().qalita_calls.labels(operation(method, path), status or "error").inc()


def jira_rate_limited(reason: str | None) -> None:
    label = reason if reason and _REASON.match(reason) else "other"
    _metrics().jira_rate_limited.labels(label).inc()


def limiter_waited(seconds: float) -> None:
    _metrics().limiter_wait.inc(seconds)


def task_retried(task: str) -> None:
    _metrics().task_retries.labels(task).inc()


def task_started(task: str) -> None:
    _metrics().tasks_running.labels(task).inc()


def task_ended(task: str) -> None:
    _metrics().tasks_running.labels(task).dec()


def synced(direction: str, changed_at: Iterable[datetime | str | None]) -> None:
    """A write reached the other side: how long after the newest change it carries (times
    as the link stores them, ISO 8601 strings, or datetimes).

    Nothing is observed when no change time is known (a create before any event, say).
    """
    times = (datetime.fromisoformat(at) if isinstance(at, str) else at for at in changed_at)
    newest = max((at for at in times if at is not None), default=None)
    if newest is not None:
        seconds = max((utcnow() - newest).total_seconds(), 0.0)
        _metrics().sync_latency.labels(direction).observe(seconds)
