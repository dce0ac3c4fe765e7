"""The house task decorator: every task gets the same safe defaults, set once here.

It also refuses option names Celery does not know: Celery silently accepts a typo such as
``ignore_results=True``, and the task then runs without the intended option.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from celery import Task

from worker import runtime
from worker.celery_app import TASK_QUEUES, TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app

HOUSE_DEFAULTS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "serializer": "json",
    "time_limit": TASK_TIME_LIMIT,
    "soft_time_limit": TASK_SOFT_TIME_LIMIT,
    "typing": True,
}


def task(name: str, queue: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Register ``fn(session, *args)`` as task ``name`` on ``queue``, inside one unit of work.

    The wrapped function receives a session whose transaction commits when it returns and
    rolls back when it raises; tasks take ids and plain dicts, never ORM objects.
    """
    unknown = sorted(k for k in options if not hasattr(Task, k))
    if unknown:
        raise TypeError(f"task {name}: unknown Celery task option(s) {', '.join(unknown)}")

    def decorator(fn: Callable[..., Any]) -> Task:
        def run(*args: Any, **kwargs: Any) -> Any:
            with runtime.database().unit_of_work() as session:
                return fn(session, *args, **kwargs)

        run.__name__, run.__doc__, run.__module__ = fn.__name__, fn.__doc__, fn.__module__
        # Callers see the signature without the session, so Celery checks their arguments.
        signature = inspect.signature(fn)
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:])
        TASK_QUEUES[name] = queue
        return app.task(name=name, **{**HOUSE_DEFAULTS, **options})(run)

    return decorator

