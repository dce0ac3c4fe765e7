"""The baseline: a bare Celery app with the service's reliability settings and a task that
only counts itself in Redis. It measures what Celery and the broker alone cost."""

from __future__ import annotations

import os

import redis
from celery import Celery

app = Celery("bench_baseline", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True,
                worker_prefetch_multiplier=1, task_ignore_result=True,
                worker_hijack_root_logger=False)
_counter = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])


@app.task(name="bench.count", ignore_result=True)
def count(_event: dict) -> None:
    _counter.incr("bench:count")
