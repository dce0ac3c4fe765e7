"""Long admin work run by a worker: a bulk replay of dead letters, its progress in a row.

The request that starts a job only records it (``start_bulk_replay``) and enqueues it
(``jira_sync.broker.send_job``); a worker then replays each matching letter in its own
transaction, counting ``done`` and ``failed`` as it goes, so the API and the CLI can show
progress and a job cut short (a worker lost, the time limit) carries on where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jira_sync.admin import dead_letters
from jira_sync.admin.errors import AdminError, Invalid, NotFound
from jira_sync.store.models import DeadLetter, Integration, Job
from jira_sync.store.types import utcnow
from jira_sync.sync.context import SyncContext
from jira_sync.sync.journal import log

REPLAY = "replay"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# The filters a bulk replay takes (the list's, without its state: only open letters replay).
REPLAY_FILTERS = ("integration_id", "kind", "since")
# A run stops after this long and enqueues the rest, well inside the task time limit.
RUN_BUDGET_SECONDS = 120.0


def start_bulk_replay(session: Session, filters: dict[str, Any]) -> Job:
    """Record a bulk replay of the open letters ``filters`` match now (``integration_id``,
    ``kind``, ``since`` as an ISO 8601 string); the caller commits, then enqueues it with
    ``broker.send_job``. Letters that fail after the job starts are not part of it.
    ``Invalid`` for an unknown filter or a bad ``since``; ``NotFound`` for an unknown
    integration."""
    unknown = sorted(set(filters) - set(REPLAY_FILTERS))
    if unknown:
        raise Invalid(f"unknown filter(s) {', '.join(unknown)}: use "
                      f"{', '.join(REPLAY_FILTERS)}", {name: ["unknown filter"]
                                                        for name in unknown})
    params = {name: value for name, value in filters.items() if value is not None}
    matched = _filters(params)
    integration_id = matched["integration_id"]
    if integration_id is not None and (isinstance(integration_id, bool) or not isinstance(
            integration_id, int)):
        raise Invalid("integration_id: an integration's id", {"integration_id": ["not an id"]})
    if integration_id is not None and session.get(Integration, integration_id) is None:
        raise NotFound(f"no integration {integration_id}")
    if matched["since"] is not None:
        params["since"] = matched["since"].isoformat()
    total = dead_letters.count(session, **matched, state=dead_letters.OPEN)
    job = Job(kind=REPLAY, state=QUEUED, params=params, total=total)
    session.add(job)
    session.flush()
    log(session, params.get("integration_id"), "admin", "replay",
        f"bulk replay job {job.id} of {total} dead letter(s) started", job_id=job.id,
        filters=params)
    return job


def job_view(session: Session, job_id: int) -> dict[str, Any]:
    """The job's progress; ``NotFound`` for an unknown id."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return {"id": job.id, "kind": job.kind, "state": job.state, "total": job.total,
            "done": job.done, "failed": job.failed, "error": job.error,
            "params": job.params, "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def run_replay(ctx: SyncContext, job_id: int, *, after_id: int = 0,
               send: Callable[[dead_letters.Replayed], None],
               budget_seconds: float = RUN_BUDGET_SECONDS) -> int | None:
    """Replay the job's letters with ids above ``after_id``, oldest first, each in its own
    transaction and handed on (``send``) once committed. Returns the id to carry on after
    when the budget ran out (the caller enqueues the rest), else None: the job is done.

    A letter refused (``AdminError``: its integration disabled meanwhile, its link severed)
    or failing again at once counts as ``failed``; anything else ends the job ``failed``
    with the error, and is raised.
    """
    started = time.monotonic()
    with ctx.database.unit_of_work() as session:
        job = session.get(Job, job_id)
        if job is None or job.state in (DONE, FAILED):
            return None
        job.state = RUNNING
        # Only letters that existed when the job was asked for: a replay failing again
        # updates its letter, so this also keeps the job from going round in circles.
        ids = list(session.scalars(
            dead_letters.matching(select(DeadLetter.id), **_filters(job.params),
                                  state=dead_letters.OPEN)
            .where(DeadLetter.id > after_id, DeadLetter.created_at <= job.created_at)
            .order_by(DeadLetter.id)))
    for letter_id in ids:
        if time.monotonic() - started > budget_seconds:
            return after_id
        try:
            _replay_one(ctx, job_id, letter_id, send)
        except Exception as exc:
            _end(ctx, job_id, FAILED, f"{type(exc).__name__}: {str(exc)[:500]}")
            raise
        after_id = letter_id
    _end(ctx, job_id, DONE, None)
    return None


def _replay_one(ctx: SyncContext, job_id: int, letter_id: int,
                send: Callable[[dead_letters.Replayed], None]) -> None:
    replayed = None
    try:
        with ctx.database.unit_of_work() as session:
            replayed = dead_letters.replay(session, ctx, letter_id)
            _count(session, job_id, failed=replayed.failed)
    except AdminError:
        with ctx.database.unit_of_work() as session:
            _count(session, job_id, failed=True)
    if replayed is not None:
        send(replayed)


def _count(session: Session, job_id: int, *, failed: bool) -> None:
    column = Job.failed if failed else Job.done
    session.execute(update(Job).where(Job.id == job_id).values({column: column + 1}))


def _end(ctx: SyncContext, job_id: int, state: str, error: str | None) -> None:
    with ctx.database.unit_of_work() as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            state=state, error=error, finished_at=utcnow()))


def _filters(params: dict[str, Any]) -> dict[str, Any]:
    """The stored filter as ``dead_letters.matching`` takes it."""
    since = params.get("since")
    try:
        moment = datetime.fromisoformat(since) if isinstance(since, str) else since
        if not (moment is None or isinstance(moment, datetime)):
            raise ValueError(since)
    except ValueError:
        raise Invalid("since: an ISO 8601 time, e.g. 2026-11-28T10:00:00Z",
                      {"since": ["not an ISO 8601 time"]}) from None
    return {"integration_id": params.get("integration_id"), "kind": params.get("kind"),
            "since": moment}


def never_sent(session: Session, job_id: int, reason: str) -> None:
    """The job could not be handed to the workers: it ends failed at once rather than wait
    as ``queued`` for ever (nothing else would ever start it)."""
    session.execute(update(Job).where(Job.id == job_id, Job.state == QUEUED).values(
        state=FAILED, error=reason, finished_at=utcnow()))
