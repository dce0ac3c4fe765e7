"""The house task decorator: every task gets the same safe defaults, set once here.

It also refuses option names Celery does not know: Celery silently accepts a typo such as
``ignore_results=True``, and the task then runs without the intended option.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from jira_sync.broker import send_flushes
from worker import runtime
from worker.batching import DONE, MAX_LOSSES, BatchTask, losses, send_again
from worker.celery_app import TASK_QUEUES, TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app

logger = logging.getLogger("jira_sync.worker")

HOUSE_DEFAULTS: dict[str, Any] = {
    # The database unreachable is worth waiting out: retried with backoff, for as long as it
    # takes (a retry is a new message, published before this one is acknowledged).
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": None,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "serializer": "json",
    "time_limit": TASK_TIME_LIMIT,
    "soft_time_limit": TASK_SOFT_TIME_LIMIT,
    "typing": True,
}


def task(name: str, queue: str, *, transactional: bool = True,
         **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register ``fn(session, *args)`` as task ``name`` on ``queue``, inside one unit of work.

    The wrapped function receives a session whose transaction commits when it returns and
    rolls back when it raises; tasks take ids and plain dicts, never ORM objects. A task
    that calls Jira is registered with ``transactional=False`` and receives no session: it
    opens its own short units of work, since no transaction may stay open across a remote
    call. Flushes a task returns (``jira_sync.sync.state.Due``) are scheduled only after
    its work has committed, so a flush never runs ahead of the state it is meant to write.
    """
    unknown = sorted(k for k in options if not hasattr(Task, k))
    if unknown:
        raise TypeError(f"task {name}: unknown Celery task option(s) {', '.join(unknown)}")

    def decorator(fn: Callable[..., Any]) -> Task:
        def run(*args: Any, **kwargs: Any) -> None:
            if transactional:
                with runtime.database().unit_of_work() as session:
                    follow_ups = fn(session, *args, **kwargs)
            else:
                follow_ups = fn(*args, **kwargs)
            if follow_ups:
                send_flushes(app, follow_ups)

        run.__name__, run.__doc__, run.__module__ = fn.__name__, fn.__doc__, fn.__module__
        # Callers see the signature without the session, so Celery checks their arguments.
        signature = inspect.signature(fn)
        parameters = list(signature.parameters.values())[1 if transactional else 0:]
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters)
        TASK_QUEUES[name] = queue
        return app.task(name=name, **{**HOUSE_DEFAULTS, **options})(run)

    return decorator



def batch_task(name: str, queue: str, *, give_up: Callable[[Any, str], None]
               ) -> Callable[[Callable[..., Any]], Task]:
    """Register ``fn(items)`` as task ``name`` on ``queue``, taking its messages in batches.

    Callers send one message per item with the item as the only argument, as to any task;
    ``fn`` receives the items of the messages that arrived together (``worker.batching``). The
    house's guarantees hold per message: each is acknowledged only after ``fn`` returned; an
    unreachable database sends each message again with backoff (a new message, published
    before this one is acknowledged); the flushes ``fn`` returns are scheduled after that. A
    message whose batch lost its run (the pool process died, or the time limit struck) runs
    alone (``worker.batching``), and after ``MAX_LOSSES`` is handed to ``give_up(item,
    reason)`` instead, so one message that kills its worker cannot loop forever.
    """

    def decorator(fn: Callable[[Sequence[Any]], Any]) -> Task:
        def run(requests: Sequence[Any]) -> str:
            try:
                if len(requests) == 1 and losses(requests[0]) >= MAX_LOSSES:
                    _give_up(give_up, requests[0])
                    return DONE
                follow_ups = fn([_item(request) for request in requests])
            except OperationalError as exc:
                logger.warning("database unreachable (%s); %d message(s) sent again",
                               type(exc).__name__, len(requests))
                for request in requests:
                    _send_again(name, queue, request)
                return DONE
            try:
                send_flushes(app, follow_ups)
            except Exception as exc:  # Stored is what counts: the sweep schedules them.
                logger.warning("could not schedule %d flush(es) (%s); the sweep will",
                               len(follow_ups), type(exc).__name__)
            return DONE

        run.__name__, run.__doc__, run.__module__ = fn.__name__, fn.__doc__, fn.__module__
        TASK_QUEUES[name] = queue
        batch_options = {key: HOUSE_DEFAULTS[key] for key in (
            "acks_late", "reject_on_worker_lost", "ignore_result", "serializer", "time_limit",
            "soft_time_limit")}
        return app.task(name=name, base=BatchTask, **batch_options)(run)

    return decorator


def _give_up(give_up: Callable[[Any, str], None], request: Any) -> None:
    reason = (f"its batch lost its worker {losses(request)} times (killed, or over the time "
              "limit); not tried again")
    try:
        give_up(_item(request), reason)
    except OperationalError:
        raise
    except Exception:  # The last resort: nothing more can be done with it here.
        logger.exception("a message %s could not be kept as a dead letter and is dropped",
                         reason)


def _item(request: Any) -> Any:
    """The message's one argument; a message that is not a call with one argument is passed
    on whole, so the task refuses it with a reason like any other bad item."""
    if len(request.args) == 1 and not request.kwargs:
        return request.args[0]
    return {"message_args": list(request.args), "message_kwargs": dict(request.kwargs)}


def _send_again(name: str, queue: str, request: Any) -> None:
    retries = int((request.request_dict or {}).get("retries") or 0)
    backoff = min(HOUSE_DEFAULTS["retry_backoff_max"],
                  HOUSE_DEFAULTS["retry_backoff"] * 2 ** min(retries, 10))
    send_again(app, name, request, losses(request), queue=queue,
               countdown=random.uniform(0, backoff), retries=retries + 1)
