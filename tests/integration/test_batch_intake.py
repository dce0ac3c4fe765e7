"""Intake in batches and flushes that wait for a backlog, with real worker processes on the
real Redis and Postgres: batches form, every message is acknowledged only once stored, a
database that goes away loses nothing, and a flush waits for queued events but not forever."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import redis
import requests
from celery import Celery
from sqlalchemy import func, select

from jira_sync import intake, publish_qalita_event
from jira_sync.broker import send_flushes
from jira_sync.crypto import SecretBox
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.store.db import Database
from jira_sync.store.models import DeadLetter, InboxEvent, IssueLink
from jira_sync.sync.context import SyncContext
from tests.support.processes import ServiceProcess, wait_until
from tests.support.proxy import CuttableProxy
from tests.support.sync import qalita_event
from worker import queues
from worker.batching import MAX_LOSSES

pytestmark = pytest.mark.integration


@pytest.fixture
def db(postgres_url):
    database = Database(postgres_url)
    yield database
    database.dispose()


def inbox_count(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def broker_settled(broker_url: str) -> bool:
    """Nothing waits on the intake queue and nothing is delivered but unacknowledged."""
    client = redis.Redis.from_url(broker_url)
    return client.llen("jira_sync.qalita") == 0 and client.hlen("unacked") == 0


def publish(broker_url: str, events: list[dict]) -> None:
    for event in events:
        publish_qalita_event(event, broker_url=broker_url)


def test_a_burst_is_stored_in_batches_and_every_message_is_acknowledged(
        service_env, db, tmp_path):
    # No integration serves the tenant: the events are stored and wait, no flush runs.
    events = [qalita_event(issue_id, version, "issue.updated" if version > 1 else
                           "issue.created") for version in (1, 2) for issue_id in range(1, 301)]
    publish(service_env["JIRA_SYNC_BROKER_URL"], events)
    worker = ServiceProcess(["worker"], service_env, tmp_path / "worker.log")
    try:
        wait_until(lambda: inbox_count(db) == len(events), 60)
        wait_until(lambda: broker_settled(service_env["JIRA_SYNC_BROKER_URL"]), 30)
        with db.unit_of_work() as session:
            # One transaction per batch, so one receipt time per batch.
            batches = session.scalar(select(func.count(func.distinct(InboxEvent.received_at))))
            assert set(session.scalars(select(InboxEvent.state))) == {"waiting"}
        assert batches <= len(events) // 10
    finally:
        worker.kill()


def test_an_unreachable_database_sends_the_batch_again_and_loses_nothing(
        service_env, db, tmp_path):
    url = urlsplit(service_env["JIRA_SYNC_DATABASE_URL"])
    proxy = CuttableProxy((url.hostname or "127.0.0.1", url.port or 5432))
    proxy.restore()
    proxied = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    env = {**service_env, "JIRA_SYNC_DATABASE_URL": proxied}
    worker = ServiceProcess(["worker"], env, tmp_path / "worker.log")
    try:
        worker.wait_for(r"ready\.", 60)
        proxy.cut()
        events = [qalita_event(issue_id) for issue_id in range(1, 41)]
        publish(env["JIRA_SYNC_BROKER_URL"], events)
        worker.wait_for(r"database unreachable \(OperationalError\); \d+ message\(s\) sent "
                        r"again", 30)
        assert inbox_count(db) == 0
        proxy.restore()
        wait_until(lambda: inbox_count(db) == len(events), 90)
        wait_until(lambda: broker_settled(env["JIRA_SYNC_BROKER_URL"]), 30)
        with db.unit_of_work() as session:
            assert session.scalars(select(DeadLetter)).all() == []
    finally:
        worker.kill()
        proxy.cut()


def test_a_batch_whose_pool_process_dies_is_sent_again_message_by_message(
        service_env, postgres_url, db, tmp_path):
    broker_url = service_env["JIRA_SYNC_BROKER_URL"]
    # Not consuming intake yet: the five events wait on the queue, so they form one batch
    # whenever they were published.
    others = ",".join(name for name in queues.ALL if name != queues.QALITA)
    worker = ServiceProcess(["worker", "--queues", others],
                            {**service_env, "JIRA_SYNC_SWEEP_SECONDS": "3600"},
                            tmp_path / "worker.log")
    blocker = psycopg2.connect(postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    control = Celery(broker=broker_url, set_as_current=False)
    try:
        # The sweeps a worker runs at start read the inbox too: done first, they cannot hold
        # the pool's processes waiting on the lock while the batch waits for a process.
        for sweep in ("sweep", "sweep_deliveries"):
            worker.wait_for(rf"jira_sync\.{sweep}\[[^]]+\] succeeded", 60)
        with blocker.cursor() as cursor:  # the batch's insert waits on this lock
            cursor.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
        events = [qalita_event(issue_id) for issue_id in range(1, 6)]
        publish(broker_url, events)
        assert redis.Redis.from_url(broker_url).llen(queues.QALITA) == len(events)
        [answer] = control.control.add_consumer(queues.QALITA, reply=True, limit=1, timeout=10)
        assert "ok" in next(iter(answer.values())), answer
        wait_until(lambda: inserts_waiting(postgres_url) == 1, 30)
        children = subprocess.run(["pgrep", "-P", str(worker.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        blocker.rollback()
        worker.wait_for(r"a batch of 5 jira_sync.qalita_event message\(s\) did not complete",
                        30)
        wait_until(lambda: inbox_count(db) == len(events), 60)
        wait_until(lambda: broker_settled(broker_url), 30)
        with db.unit_of_work() as session:
            assert session.scalars(select(DeadLetter)).all() == []
            # Sent back with a loss each, every message then ran alone: a transaction each.
            receipts = session.scalar(select(func.count(func.distinct(InboxEvent.received_at))))
        assert receipts == len(events)
    finally:
        control.close()
        blocker.close()
        worker.kill()


def inserts_waiting(postgres_url: str) -> int:
    """Inserts into the inbox waiting for a lock (a batch's, blocked by the test)."""
    with contextlib.closing(psycopg2.connect(
            postgres_url.replace("postgresql+psycopg2://", "postgresql://"))) as watcher, \
            watcher.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND query ILIKE 'INSERT INTO inbox%' AND datname = current_database()")
        return cursor.fetchone()[0]


def test_a_message_that_keeps_losing_its_batch_is_given_up_as_a_dead_letter(
        service_env, postgres_url, db, tmp_path):
    # One pool process: killing it kills the run that is stuck, and nothing else.
    worker = ServiceProcess(["worker"], {**service_env, "JIRA_SYNC_SWEEP_SECONDS": "3600",
                                         "JIRA_SYNC_WORKER_CONCURRENCY": "1"},
                            tmp_path / "worker.log")
    hopeless, after = qalita_event(1), qalita_event(2)
    broker_url = service_env["JIRA_SYNC_BROKER_URL"]
    blocker = psycopg2.connect(postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        for sweep in ("sweep", "sweep_deliveries"):
            worker.wait_for(rf"jira_sync\.{sweep}\[[^]]+\] succeeded", 60)
        with blocker.cursor() as cursor:  # every insert of this event waits on the row
            cursor.execute("INSERT INTO inbox (source, dedupe_key, payload, state, attempts, "
                           "received_at) VALUES ('qalita', %s, '{}', 'received', 0, now())",
                           (hopeless["event_id"],))
        # Alone: a killed run's insert stays waiting in Postgres with the rows it inserted
        # before this one, and would hold up any event that shared its batch.
        publish(broker_url, [hopeless])
        for lost in range(1, MAX_LOSSES + 1):
            # The runs killed before stay waiting too: this one is the next.
            wait_until(lambda n=lost: inserts_waiting(postgres_url) == n, 30)
            assert dead_letters(db) == []
            [child] = subprocess.run(["pgrep", "-P", str(worker.proc.pid)],
                                     capture_output=True, text=True).stdout.split()
            os.kill(int(child), signal.SIGKILL)
            wait_until(lambda n=lost: worker.output.count("did not complete") == n, 30)
        [letter] = wait_until(lambda: dead_letters(db), 30)
        assert letter.kind == "intake_failed" and letter.payload == hopeless
        assert f"lost its worker {MAX_LOSSES} times" in letter.reason
        blocker.rollback()
        publish(broker_url, [after])  # the worker goes on
        wait_until(lambda: inserts_waiting(postgres_url) == 0, 30)
        wait_until(lambda: inbox_count(db) == 1 and broker_settled(broker_url), 30)
        with db.unit_of_work() as session:
            assert session.scalars(select(InboxEvent.dedupe_key)).all() == [after["event_id"]]
        assert len(dead_letters(db)) == 1
    finally:
        blocker.close()
        worker.kill()


def dead_letters(db: Database) -> list[DeadLetter]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(DeadLetter)))


def test_a_message_given_up_after_its_losses_needs_no_dead_letter_if_stored_after_all(
        service_env, db, monkeypatch):
    """The run that was lost may have stored the event before it died: giving it up then
    keeps no dead letter. (The losses are set by hand here: what a real worker's repeated
    losses do is the test above.)"""
    from celery_batches import SimpleRequest

    from worker import runtime
    from worker.batching import DONE, LOSSES_HEADER
    from worker.tasks.qalita import qalita_event as intake_task

    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    per_process = (runtime.settings, runtime.database, runtime.sync_context)
    for cached in per_process:
        cached.cache_clear()

    def request(event: dict, losses: int) -> SimpleRequest:
        return SimpleRequest(id=event["event_id"], name="jira_sync.qalita_event",
                             args=(event,), kwargs={}, delivery_info={}, hostname="test",
                             ignore_result=True, reply_to=None, correlation_id=None,
                             request_dict={LOSSES_HEADER: losses})

    stored = qalita_event(1)
    try:
        assert intake_task.run([request(stored, 1)]) == DONE  # a suspect still runs
        assert intake_task.run([request(stored, MAX_LOSSES)]) == DONE
        with db.unit_of_work() as session:
            inbox = set(session.scalars(select(InboxEvent.dedupe_key)))
    finally:
        runtime.database().dispose()
        for cached in per_process:
            cached.cache_clear()
    assert inbox == {stored["event_id"]}
    assert dead_letters(db) == []


def test_a_flush_waits_while_intake_is_backlogged_but_not_past_the_limit(
        service_env, secret_key, db, tmp_path):
    from worker.tasks.outbound import DEFER_STEP_SECONDS

    broker_url = service_env["JIRA_SYNC_BROKER_URL"]
    limit = 6.0
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0)) as sim:
        env = {**service_env, "JIRA_BASE_URL": sim.base_url, "JIRA_EMAIL": "svc@example.com",
               "JIRA_API_TOKEN": "tok-123", "JIRA_PROJECT_KEY": "DATA",
               "JIRA_ISSUE_TYPE": "Bug", "JIRA_SYNC_BACKLOG_WAIT_SECONDS": str(limit)}
        # A worker that does not take intake, so more than a batch of events stays queued.
        worker = ServiceProcess(["worker", "--queues", "jira_sync.outbound"], env,
                                tmp_path / "worker.log")
        producer = Celery(broker=broker_url, set_as_current=False)
        try:
            worker.wait_for(r"ready\.", 60)
            publish(broker_url, [qalita_event(n) for n in range(1000, 1250)])
            ctx = SyncContext(database=db, box=SecretBox((secret_key,)), debounce_seconds=0.0)
            [due] = intake.receive_batch(ctx, [qalita_event(1)])
            sent = datetime.now(UTC)
            send_flushes(producer, [due])

            def postponed() -> bool:  # the flush saw the backlog and waits, in steps
                with db.unit_of_work() as session:
                    link = session.get(IssueLink, due.link_id)
                    return link.jira_issue_id is None and link.due_at > due.at

            wait_until(postponed, 30)
            [create] = wait_until(lambda: [
                c for c in requests.get(f"{sim.base_url}/_sim/calls", timeout=10).json()
                if c["method"] == "POST"], 30)
            waited = (datetime.fromisoformat(create["time"]) - sent).total_seconds()
            assert limit - DEFER_STEP_SECONDS <= waited <= limit
            assert redis.Redis.from_url(broker_url).llen("jira_sync.qalita") == 250
        finally:
            producer.close()
            worker.kill()


def test_a_delivery_message_that_keeps_losing_its_batch_is_split_then_given_up(
        service_env, db, monkeypatch):
    """The web puts the deliveries it stored together in one message: given up, such a
    message is sent again one delivery per message, so only the one that kills its worker
    ends as a dead letter."""
    from celery_batches import SimpleRequest

    from worker import runtime
    from worker.batching import DONE, LOSSES_HEADER
    from worker.tasks import inbound as inbound_tasks

    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    per_process = (runtime.settings, runtime.database, runtime.sync_context)
    for cached in per_process:
        cached.cache_clear()
    sent: list[list[int]] = []
    monkeypatch.setattr(inbound_tasks, "send_deliveries", lambda app, ids: sent.append(ids))

    def request(ids: list[int]) -> SimpleRequest:
        return SimpleRequest(id=str(ids), name="jira_sync.jira_delivery", args=(ids,),
                             kwargs={}, delivery_info={}, hostname="test", ignore_result=True,
                             reply_to=None, correlation_id=None,
                             request_dict={LOSSES_HEADER: 3})

    with db.unit_of_work() as session:
        rows = [InboxEvent(source="jira", dedupe_key=f"1:{n}", payload={}, state="received",
                           attempts=0) for n in range(2)]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    try:
        assert inbound_tasks.jira_delivery.run([request(ids)]) == DONE
        assert sent == [[ids[0]], [ids[1]]]
        assert inbound_tasks.jira_delivery.run([request([ids[0]])]) == DONE
        with db.unit_of_work() as session:
            [letter] = session.scalars(select(DeadLetter)).all()
            states = dict(session.execute(select(InboxEvent.id, InboxEvent.state)).all())
    finally:
        runtime.database().dispose()
        for cached in per_process:
            cached.cache_clear()
    assert letter.kind == "intake_failed" and letter.inbox_id == ids[0]
    assert states == {ids[0]: "failed", ids[1]: "received"}


def test_batches_still_flush_after_the_broker_connection_was_lost(service_env, db, own_redis,
                                                                   tmp_path):
    """Celery clears the worker's timers when the broker connection drops: the batches'
    flush timer must start again, or messages would wait for 200 companions for ever."""
    port, running, start = own_redis
    broker = f"redis://127.0.0.1:{port}/0"
    env = {**service_env, "JIRA_SYNC_BROKER_URL": broker}
    worker = ServiceProcess(["worker"], env, tmp_path / "worker.log")
    stop = threading.Event()

    def stream() -> None:  # a batch's flush timer is running when the connection drops
        issue_id = 1000
        while not stop.is_set():
            with contextlib.suppress(Exception):
                publish(broker, [qalita_event(issue_id)])
                issue_id += 1
            time.sleep(0.02)

    try:
        worker.wait_for(r"ready\.", 60)
        streaming = threading.Thread(target=stream)
        streaming.start()
        wait_until(lambda: inbox_count(db) > 10, 30)
        running["process"].kill()
        running["process"].wait()
        stop.set()
        streaming.join()
        running["process"] = start()
        events = [qalita_event(issue_id) for issue_id in range(1, 6)]
        publish(broker, events)
        wanted = {event["event_id"] for event in events}

        def stored() -> bool:
            with db.unit_of_work() as session:
                return wanted <= set(session.scalars(select(InboxEvent.dedupe_key)))

        wait_until(stored, 60)
    finally:
        stop.set()
        worker.kill()
