"""A task that takes its messages in batches, with the guarantees of the house's other tasks.

Intake is one small database write per event, and as one Celery task per event it ran at a
quarter of the speed of a no-op task: the per-message transaction was the cost, not the
work. celery-batches hands a task the messages that arrived together. This class adds what
it lacks for us:

- Prefetch. The house runs with prefetch 1 (tasks call slow remote APIs), which would cap a
  batch at one message per pool process. The window is widened by one for each message
  held, up to ``flush_every`` per pool process, and narrowed by exactly those messages as
  their batches end, so other queues keep prefetch 1 and the worker never pulls a whole
  backlog into memory.
- Acknowledgement. A message is acknowledged only when its batch returned normally. A batch
  that raised, timed out or whose pool process died is sent again message by message, each
  counting that loss in a header, so the batch's run can take a suspect message alone and
  give it up after ``MAX_LOSSES`` (celery-batches acknowledges late messages whatever the
  outcome, and a requeued batch would come straight back whole). A message with losses runs
  in a pool job of its own, so a loss is charged only to the message that caused it.
- Events. Each message reports task-succeeded, so Flower counts intake like other tasks
  (no task-received or task-started: two events less per message for the consumer, which is
  the bottleneck of intake).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from time import monotonic
from typing import Any

from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

logger = logging.getLogger("jira_sync.worker")
# What a batch's run returns when every message in it may be acknowledged.
DONE = "done"
# The header counting how often a message's batch lost its run; such a message is taken
# alone, and given up (kept as a dead letter) after MAX_LOSSES.
LOSSES_HEADER = "jira_sync_losses"
MAX_LOSSES = 3


def losses(request: Any) -> int:
    return int((request.request_dict or {}).get(LOSSES_HEADER) or 0)


def send_again(app: Any, name: str, request: Any, lost: int, **options: Any) -> None:
    """Publish ``request``'s call as a new message of task ``name``, ``lost`` losses so far."""
    app.send_task(name, args=request.args, kwargs=request.kwargs,
                  headers={LOSSES_HEADER: lost}, **options)


class BatchTask(Batches):
    abstract = True
    flush_every = 200
    # Seconds a message waits for companions when fewer than ``flush_every`` arrive.
    flush_interval = 0.1

    def Strategy(self, task: Batches, app: Any, consumer: Any) -> Callable[..., None]:
        handler = super().Strategy(task, app, consumer)
        self._restart()
        self._consumer = consumer  # its QoS exists only once it consumes
        self._widen_cap = self.flush_every * (getattr(consumer.pool, "limit", None) or 1)
        self._widened: set[Any] = set()  # delivery tags of the messages that widened it

        def take(message: Any, *args: Any, **kwargs: Any) -> None:
            widen = len(self._widened) < self._widen_cap
            if widen:
                self._consumer.qos.increment_eventually()
                self._widened.add(message.delivery_tag)
            try:
                handler(message, *args, **kwargs)
            except BaseException:  # Celery acknowledges or rejects it: not held any more.
                if widen:
                    self._narrow([message.delivery_tag])
                raise

        return take

    def _restart(self) -> None:
        """A strategy is made for each consumer: at start, and again after a lost broker
        connection, when Celery clears the event loop's timers. celery-batches would still
        hold its dead flush timer and never start another, so messages would wait for
        ``flush_every`` companions; and the requests it buffered belong to the closed
        channel (they cannot be acknowledged, and the broker delivers them again)."""
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None
        stale = list(consume_queue(self._buffer)) + list(consume_queue(self._pending))
        if stale:
            logger.warning("dropped %d %s message(s) buffered on the lost broker connection; "
                           "the broker delivers them again", len(stale), self.name)

    def flush(self, requests: Collection[Request]) -> Any:
        batch: list[tuple[Request, SimpleRequest]] = []
        for request in requests:
            try:
                batch.append((request, SimpleRequest.from_request(request)))
            except Exception:  # As Celery does with a message it cannot read as a task.
                logger.error("rejected a %s message that is not a task call: %r", self.name,
                             request.info(safe=True), exc_info=True)
                request.reject(requeue=False)
                self._narrow([request.message.delivery_tag])
        # A message whose batch was lost before runs in a job of its own, so if it is the one
        # that kills its pool process, the loss is charged to it alone.
        jobs = [[pair for pair in batch if not losses(pair[0])],
                *([pair] for pair in batch if losses(pair[0]))]
        return [self._submit(job) for job in jobs if job]

    def _submit(self, pairs: list[tuple[Request, SimpleRequest]]) -> Any:
        batch = [request for request, _ in pairs]
        started = monotonic()

        def returned(result: Any) -> None:
            if result == DONE:
                runtime = monotonic() - started
                for request in batch:
                    request.acknowledge()
                    request.send_event("task-succeeded", result=None, runtime=runtime)
                self._narrow([request.message.delivery_tag for request in batch])
            else:
                self._send_back(batch)

        def lost(_error: Any) -> None:
            self._send_back(batch)

        try:
            job = self._pool.apply_async(
                apply_batches_task, (self, ([simple for _, simple in pairs],), 0, None),
                callback=returned,
                error_callback=lost, soft_timeout=self.soft_time_limit,
                timeout=self.time_limit)
        except Exception:
            logger.exception("could not hand a batch of %d to the pool", len(batch))
            job = None
        if job is None:
            self._send_back(batch)
        return job

    def _send_back(self, batch: list[Request]) -> None:
        """The batch did not complete: each message goes back on its own, its loss counted.
        Once the broker refuses one, the rest are left unacknowledged for redelivery rather
        than each waiting out a connection timeout in the consumer's loop."""
        logger.warning("a batch of %d %s message(s) did not complete; each is sent again",
                       len(batch), self.name)
        broker_down = False
        for request in batch:
            if not broker_down:
                try:
                    send_again(self.app, self.name, request, losses(request) + 1)
                except Exception:
                    logger.exception("could not send %s messages again", self.name)
                    broker_down = True
            if broker_down:
                request.reject(requeue=True)
            else:
                request.acknowledge()
        self._narrow([request.message.delivery_tag for request in batch])

    def _narrow(self, delivery_tags: list[Any]) -> None:
        given = [tag for tag in delivery_tags if tag in self._widened]
        if given:
            self._widened.difference_update(given)
            self._consumer.qos.decrement_eventually(len(given))
