"""Deliveries stored for many request threads at once (group commit).

One delivery at a time, receiving is mostly waiting: a pool ping, the insert, a commit that
waits for the disk, a broker publish (docs/performance.md). A web process's request threads
hand their rows to one writer thread instead, which stores everything waiting in one
insert and one commit, lets each request answer, and then hands the new ids to the workers.
Every delivery is still stored before its answer; under load the cost of a commit and a
publish is shared by all the deliveries that waited for it, and alone a delivery pays only
the hand-over between threads. Publishing has a thread of its own, so the next batch is
stored while the last one's ids are on their way, and the ids stored within a few
milliseconds share a message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from jira_sync.store.db import Database

logger = logging.getLogger("jira_sync.inbox_writer")

# Rows per transaction: enough to absorb a burst, small enough to keep a commit short.
MAX_ROWS = 200
# How long stored ids wait for others to share their message. Publishing costs the web
# process more than storing a delivery; a worker taking a delivery this much later changes
# nothing (inbound sync debounces for seconds), and the answer to Jira does not wait for it.
PUBLISH_LINGER_SECONDS = 0.05

Insert = Callable[[Any, Sequence[dict[str, Any]]], list[tuple[int, str]]]
Publish = Callable[[list[int]], None]


@dataclass(eq=False)
class _Submission:
    rows: Sequence[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    error: Exception | None = None


class InboxWriter:
    """Stores inbox rows for concurrent callers in shared transactions.

    ``database`` is the writer's own: its thread keeps one connection, so it needs no pool
    checks (``pre_ping=False``); a connection found stale by its first use
    is replaced and the batch tried once more.

    ``insert(connection, rows)`` inserts rows keyed by ``dedupe_key``, skipping those already
    stored, and returns ``(id, dedupe_key)`` for each new one; ``publish(ids)`` hands the new
    rows to the workers after the commit, from the publishing thread (a failure there is
    logged: what is stored is found by the sweep).
    """

    def __init__(self, database: Database, insert: Insert, publish: Publish) -> None:
        self._database, self._insert, self._publish = database, insert, publish
        self._waiting: list[_Submission] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None
        self._unpublished: list[int] = []
        self._publishable = threading.Condition()

    def store(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """The ids of ``rows`` that were new, once committed; raises what storing them
        raised."""
        submission = _Submission(rows)
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inbox-writer",
                                                daemon=True)
                self._thread.start()
                threading.Thread(target=self._run_publisher, name="inbox-publisher",
                                 daemon=True).start()
            self._waiting.append(submission)
            self._ready.notify()
        submission.done.wait()
        if submission.error is not None:
            raise submission.error
        return submission.ids

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                batch, rows = [], 0
                while self._waiting and (not batch or
                                         rows + len(self._waiting[0].rows) <= MAX_ROWS):
                    rows += len(self._waiting[0].rows)
                    batch.append(self._waiting.pop(0))
            self._write(batch)

    def _write(self, batch: list[_Submission]) -> None:
        try:
            stored = self._stored_rows(batch)
        except OperationalError as exc:  # the database is out of reach: for everyone
            self._finish(batch, error=exc)
            return
        except Exception as exc:
            if len(batch) > 1:  # one delivery's trouble must not refuse the others
                for submission in batch:
                    self._write([submission])
            else:
                self._finish(batch, error=exc)
            return
        new = dict((key, inbox_id) for inbox_id, key in stored)
        for submission in batch:
            # The same delivery twice in one batch: the first to ask has it stored.
            submission.ids = [new.pop(row["dedupe_key"]) for row in submission.rows
                              if row["dedupe_key"] in new]
        self._finish(batch)  # stored: the answers need not wait for the broker
        ids = [inbox_id for submission in batch for inbox_id in submission.ids]
        if ids:
            with self._publishable:
                self._unpublished.extend(ids)
                self._publishable.notify()

    def _run_publisher(self) -> None:
        while True:
            with self._publishable:
                while not self._unpublished:
                    self._publishable.wait()
            time.sleep(PUBLISH_LINGER_SECONDS)
            with self._publishable:
                ids, self._unpublished = self._unpublished, []
            try:
                self._publish(ids)
            except Exception as exc:  # Stored is what counts: the sweep hands them over.
                logger.warning("stored %d Jira deliveries but could not enqueue them (%s); "
                               "the sweep will", len(ids), type(exc).__name__)

    def _stored_rows(self, batch: list[_Submission]) -> list[tuple[int, str]]:
        rows = [row for submission in batch for row in submission.rows]
        try:
            return self._insert_in_transaction(rows)
        except DBAPIError as exc:
            # The connection went stale (the database restarted): the pool has dropped it,
            # and the batch is tried once more on a new one.
            if not exc.connection_invalidated:
                raise
        return self._insert_in_transaction(rows)

    def _insert_in_transaction(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        connection = self._connection or self._database.engine.connect()
        try:
            with connection.begin():
                stored = self._insert(connection, rows)
        except BaseException:
            connection.close()  # whatever it went through, the next batch starts afresh
            self._connection = None
            raise
        self._connection = connection
        return stored

    @staticmethod
    def _finish(batch: list[_Submission], error: Exception | None = None) -> None:
        for submission in batch:
            submission.error = error
            submission.done.set()
