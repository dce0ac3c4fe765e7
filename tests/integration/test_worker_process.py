"""`jira-sync worker` as a real process on the real Redis and Postgres."""

import pytest
from celery import Celery
from sqlalchemy import select

from jira_sync import publish_qalita_event
from jira_sync.store.db import Database
from jira_sync.store.models import DeadLetter, InboxEvent, QueueHeartbeat
from jira_sync.store.types import utcnow
from tests.support.processes import ServiceProcess, closed_port, run_cli, wait_until
from tests.support.sync import qalita_event

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]
QUEUES = ("jira_sync.qalita", "jira_sync.jira_inbound", "jira_sync.outbound",
          "jira_sync.maintenance")


@pytest.fixture
def producer(broker_url):
    """A plain Celery client, as QALITA or any other producer would use."""
    client = Celery(broker=broker_url, set_as_current=False)
    yield client
    client.close()


def test_a_worker_consumes_from_every_queue_and_stops_cleanly(service_env, tmp_path,
                                                              producer, postgres_url):
    worker = ServiceProcess(["worker"], service_env, tmp_path / "worker.log")
    try:
        worker.wait_for(r"ready\.")
        sent_at = utcnow().isoformat()
        for queue in QUEUES:
            producer.send_task("jira_sync.ping", args=(queue, sent_at), queue=queue)
        publish_qalita_event({**qalita_event(1), "event_id": "ev-1"},
                             broker_url=service_env["JIRA_SYNC_BROKER_URL"])
        producer.send_task("jira_sync.qalita_event", args=("garbage",),
                           queue="jira_sync.qalita")
        database = Database(postgres_url)

        def consumed():
            with database.unit_of_work() as session:
                beats = set(session.scalars(select(QueueHeartbeat.queue)))
                inbox = session.scalars(select(InboxEvent.dedupe_key)).all()
                dead = session.scalars(select(DeadLetter.reason)).all()
            return beats == set(QUEUES) and inbox == ["ev-1"] and len(dead) == 1

        wait_until(consumed)
        database.dispose()
        assert worker.stop() == 0
        assert "Warm shutdown" in worker.output
    finally:
        worker.kill()


def test_worker_refuses_an_unreachable_database_in_one_line(service_env):
    env = {**service_env, "JIRA_SYNC_DATABASE_URL":
           f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nothing"}
    result = run_cli(["worker"], env)
    assert result.returncode == 1
    assert result.stderr.startswith("jira-sync: database unreachable: ")
    assert result.stderr.count("\n") == 1


def test_worker_refuses_an_unmigrated_database(service_env, empty_postgres_url):
    result = run_cli(["worker"], {**service_env, "JIRA_SYNC_DATABASE_URL": empty_postgres_url})
    assert result.returncode == 1
    assert result.stderr == ("jira-sync: database is not migrated "
                             "(run `jira-sync db upgrade`)\n")


def test_worker_without_a_secret_key_names_the_variable(service_env):
    env = {k: v for k, v in service_env.items() if k != "JIRA_SYNC_SECRET_KEY"}
    result = run_cli(["worker"], env)
    assert result.returncode == 2
    assert result.stderr.startswith("jira-sync: JIRA_SYNC_SECRET_KEY: required")


def test_worker_keeps_retrying_an_unreachable_broker(service_env, tmp_path):
    env = {**service_env, "JIRA_SYNC_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    worker = ServiceProcess(["worker"], env, tmp_path / "worker.log")
    try:
        # Tried again, and then again: it keeps trying, it does not give up after one.
        worker.wait_for(r"(?s)Cannot connect to redis://.*Trying again .*\(2/None\)",
                        timeout=30)
        assert worker.proc.poll() is None, "the worker gave up on the broker"
        assert worker.stop() == 0
    finally:
        worker.kill()
