"""A task that takes its messages in batches, with the guarantees of the house's other tasks.

Intake is one small database write per event, and as one Celery task per event it ran at a
quarter of the speed of a no-op task: the per-message transaction was the cost, not the
work. celery-batches hands a task the messages that arrived together. This class adds what
it lacks for us:

- Prefetch. The house runs with prefetch 1 (tasks call slow remote APIs), which would cap a
  batch at one message per pool process. The window is widened by one for each message
  held, up to ``flush_every`` per pool process, and narrowed again as batches end, so other
  queues keep prefetch 1 and the worker never pulls a whole backlog into memory.
- Acknowledgement. A message is acknowledged only when its batch returned normally; a batch
  that raised or whose pool process died is rejected back to the queue, so nothing is lost
  (celery-batches acknowledges late messages whatever the outcome).
- Events. Each message reports task-succeeded or task-rejected, so Flower counts intake
  like any other task (not task-started: one event less per message for the consumer, which
  is the bottleneck of intake).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from time import monotonic
from typing import Any

from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

# What a batch's run returns when every message in it may be acknowledged.
DONE = "done"


class BatchTask(Batches):
    abstract = True
    flush_every = 200
    # Seconds a message waits for companions when fewer than ``flush_every`` arrive.
    flush_interval = 0.1

    def Strategy(self, task: Batches, app: Any, consumer: Any) -> Callable[..., None]:
        handler = super().Strategy(task, app, consumer)
        self._consumer = consumer  # its QoS exists only once it consumes
        self._widen_cap = self.flush_every * (getattr(consumer.pool, "limit", None) or 1)
        self._widened = 0

        def take(*args: Any, **kwargs: Any) -> None:
            if self._widened < self._widen_cap:
                self._consumer.qos.increment_eventually()
                self._widened += 1
            handler(*args, **kwargs)

        return take

    def flush(self, requests: Collection[Request]) -> Any:
        requests = list(requests)
        started = monotonic()

        def returned(result: Any) -> None:
            if result == DONE:
                runtime = monotonic() - started
                for request in requests:
                    request.acknowledge()
                    request.send_event("task-succeeded", result=None, runtime=runtime)
            else:
                self._give_back(requests)
            self._narrow(len(requests))

        def lost(_error: Any) -> None:
            self._give_back(requests)
            self._narrow(len(requests))

        return self._pool.apply_async(
            apply_batches_task,
            (self, ([SimpleRequest.from_request(r) for r in requests],), 0, None),
            callback=returned, error_callback=lost,
            soft_timeout=self.soft_time_limit, timeout=self.time_limit)

    @staticmethod
    def _give_back(requests: list[Request]) -> None:
        for request in requests:
            request.reject(requeue=True)  # reports task-rejected

    def _narrow(self, count: int) -> None:
        given = min(count, self._widened)
        if given:
            self._consumer.qos.decrement_eventually(given)
            self._widened -= given
