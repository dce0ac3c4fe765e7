"""QALITA event intake through a real worker into Postgres, against bare Celery.

Subject: N events published on ``jira_sync.qalita`` and drained by ``jira-sync worker``
into the inbox (one committed row each). Baseline: the same N messages drained by a bare
Celery worker with the same reliability settings and task events on (as Flower needs, and
as ``jira-sync worker`` runs) whose task only increments a Redis counter.
The ratio says how much of the messaging ceiling durable intake keeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import redis
from celery import Celery
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bench.resources import postgres_database, redis_database
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent

EVENTS = int(os.environ.get("BENCH_INTAKE_EVENTS", "2000"))
CONCURRENCY = "2"
TARGET_RATIO = 0.25


def _event(n: int) -> dict:
    return {"schema": "qalita.issue.v1", "event_id": str(uuid.uuid4()),
            "event_type": "issue.updated", "occurred_at": "2026-11-28T10:15:30Z",
            "tenant": "default", "issue": {"id": n, "version": 1, "title": f"Issue {n}",
                                           "status": "open"}}


def _drain(command: list[str], env: dict[str, str], publish: Callable[[], None],
           done: Callable[[], int]) -> float:
    """Publish everything first, then time the worker from its first completion to its last
    (so process start-up, which differs between the two, is not part of the rate)."""
    publish()
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        started = first = None
        while (count := done()) < EVENTS:
            if worker.poll() is not None:
                raise RuntimeError(f"{command} exited with {worker.returncode}")
            if started is None and count:
                started, first = time.perf_counter(), count
            time.sleep(0.02)
        assert started is not None and first is not None
        return (EVENTS - first) / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)


def run() -> dict[str, float]:
    events = [_event(n) for n in range(1, EVENTS + 1)]
    with postgres_database() as database_url, redis_database() as broker_url:
        env = {**os.environ, "BENCH_BROKER_URL": broker_url,
               "JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
               "JIRA_SYNC_SECRET_KEY": Fernet.generate_key().decode(),
               "JIRA_SYNC_LOG_LEVEL": "WARNING"}
        producer = Celery(broker=broker_url, set_as_current=False)
        counter = redis.Redis.from_url(broker_url)

        def publish(name: str, queue: str) -> Callable[[], None]:
            def send() -> None:
                with producer.producer_or_acquire() as pool_producer:
                    for event in events:
                        producer.send_task(name, args=(event,), queue=queue,
                                           producer=pool_producer)
            return send

        baseline = _drain(
            [sys.executable, "-m", "celery", "-A", "bench.baseline_app", "worker",
             "-c", CONCURRENCY, "-Q", "bench", "--events", "--loglevel", "WARNING"],
            env, publish("bench.count", "bench"), lambda: int(counter.get("bench:count") or 0))

        database = Database(database_url)

        def stored() -> int:
            with database.unit_of_work() as session:
                return session.scalar(select(func.count()).select_from(InboxEvent)) or 0

        subject = _drain(
            [sys.executable, "-m", "jira_sync", "worker", "--concurrency", CONCURRENCY],
            env, publish("jira_sync.qalita_event", "jira_sync.qalita"), stored)
        database.dispose()
        producer.close()
    return {"baseline_per_s": baseline, "subject_per_s": subject,
            "ratio": subject / baseline, "target": TARGET_RATIO}
