"""RabbitMQ as the broker, on the local node, each test in a virtual host of its own: the
queues the worker declares, persistent and confirmed messages, the countdown cap against the
node's consumer_timeout, what inspects queues, and a cut of every connection under traffic.

The process tests (worker, beat, outbound, inbound) run on RabbitMQ as well through the
``both_brokers`` marker (tests/conftest.py); these are what only RabbitMQ has.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from celery import Celery

from jira_sync import publish_qalita_event
from jira_sync.broker import MAX_COUNTDOWN_SECONDS, queue_depth, send_flushes
from jira_sync.readiness import broker_problem
from jira_sync.store.types import utcnow
from jira_sync.sync.state import Due
from tests.support import rabbitmq
from tests.support.processes import ServiceProcess
from tests.support.stack import Stack, eventually
from tests.support.sync import qalita_event
from worker import queues
from worker.celery_app import TASK_TIME_LIMIT

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


@pytest.fixture
def broker() -> str:
    return "rabbitmq"



def take(app: Celery, queue: str):
    with app.connection_for_read() as connection:
        message = connection.default_channel.basic_get(queue=queue, no_ack=True)
        return None if message is None else (message.properties, message.headers)


def test_the_worker_declares_classic_durable_queues_and_messages_persist(
        service_env, rabbitmq_vhost, broker_url, producer, tmp_path):
    worker = ServiceProcess(["worker"], service_env, tmp_path / "worker.log")
    try:
        worker.wait_for(r"ready\.", 60)
        assert worker.stop() == 0
    finally:
        worker.kill()
    declared = rabbitmq.queues(rabbitmq_vhost)
    for name in queues.ALL:
        # Classic by name, not by the virtual host's default (which may be quorum).
        assert declared[name]["durable"] is True and declared[name]["type"] == "classic" \
            and ["x-queue-type", "longstr", "classic"] in declared[name]["arguments"], declared
    # Emptied of the sweeps the worker sent itself at start, then written as the service does.
    for name in queues.ALL:
        while take(producer, name) is not None:
            pass
    publish_qalita_event(qalita_event(1), broker_url=broker_url)
    send_flushes(producer, [Due(7, utcnow())])
    send_flushes(producer, [Due(8, utcnow() + timedelta(seconds=60))])
    properties, headers = take(producer, queues.QALITA)
    assert properties["delivery_mode"] == 2 and headers["task"] == "jira_sync.qalita_event"
    flushes = [take(producer, queues.OUTBOUND) for _ in range(2)]
    assert [p["delivery_mode"] for p, _ in flushes] == [2, 2]
    assert [h["eta"] is not None for _, h in flushes] == [False, True]


def test_a_message_the_broker_refuses_fails_the_sender_instead_of_vanishing(
        rabbitmq_vhost, broker_url, producer):
    # The intake queue takes nothing: RabbitMQ refuses each publish to it (a nack).
    rabbitmq.rabbitmqctl("set_policy", "-p", rabbitmq_vhost, "refuse",
                         f"^{re.escape(queues.QALITA)}$",
                         '{"max-length": 0, "overflow": "reject-publish"}',
                         "--apply-to", "queues")
    with pytest.raises(Exception):  # noqa: B017 - kombu wraps the nack in OperationalError
        publish_qalita_event(qalita_event(1), broker_url=broker_url)
    # Without publisher confirms the same publish "succeeds", and the event is gone.
    plain = Celery(broker=broker_url, set_as_current=False)
    try:
        plain.send_task("jira_sync.qalita_event", args=(qalita_event(2),),
                        queue=queues.QALITA)
        assert queue_depth(plain, queues.QALITA) == 0
    finally:
        plain.close()


def test_a_countdown_and_its_run_end_before_the_node_gives_up_on_the_message():
    """A worker holds a countdown's message unacknowledged; RabbitMQ closes the channel of a
    delivery held past consumer_timeout, so the cap and the time limit must fit under it."""
    answer = rabbitmq.rabbitmqctl("eval", "application:get_env(rabbit, consumer_timeout).")
    found = re.search(r"\{ok,(\d+)\}", answer)
    if found is None:
        pytest.skip(f"the node sets no consumer_timeout ({answer.strip()})")
    assert int(found.group(1)) / 1000 > MAX_COUNTDOWN_SECONDS + TASK_TIME_LIMIT


def test_queue_depth_and_readiness_on_rabbitmq(rabbitmq_vhost, broker_url, producer):
    with pytest.raises(Exception, match="NOT_FOUND"):
        queue_depth(producer, queues.QALITA)  # not declared yet: the backlog guess says 0
    for n in range(3):
        publish_qalita_event(qalita_event(n), broker_url=broker_url)
    assert queue_depth(producer, queues.QALITA) == 3
    assert broker_problem(broker_url) is None
    missing = f"{rabbitmq.RABBITMQ_URL}/{quote(rabbitmq_vhost)}-missing"
    problem = broker_problem(missing)
    assert problem is not None and problem.startswith("broker unreachable at amqp://guest:**@")
    assert "NOT_ALLOWED" in problem


def test_every_connection_closed_loses_no_event_and_no_delivery(
        service_env, jira, qalita, rabbitmq_vhost, tmp_path):
    stack = Stack(service_env, jira, qalita, tmp_path)
    try:
        stack.up()
        issues = [stack.qalita_new(title=f"issue {n}") for n in range(3)]
        keys = eventually(lambda: [found["id"] for issue in issues
                                   if (found := stack.jira_issue_of(issue["id"]))]
                          if all(stack.jira_issue_of(i["id"]) for i in issues) else None)
        before = set(rabbitmq.connections(rabbitmq_vhost))
        assert before, "nothing was connected to cut"
        assert rabbitmq.close_connections(rabbitmq_vhost) == len(before)
        # Right after the cut, from both sides: QALITA publishes on its (closed) connection,
        # and Jira's webhooks reach web, which publishes on its own.
        for issue, key in zip(issues, keys, strict=True):
            response = requests.patch(f"{qalita.base_url}/_sim/issues/{issue['id']}",
                                      json={"severity": "low"}, timeout=30)
            assert response.status_code == 200, response.text
            stack.transition(key, "Start Progress")

        def synced() -> bool:
            return all("severity:low" in (stack.jira_issue_of(i["id"]) or {}).get("labels", [])
                       and stack.qalita_issue(i["id"])["status"] == "active" for i in issues)

        eventually(synced, timeout=90)
        worker = next(p for p in stack.processes if p.args[0] == "worker")
        assert "Connection to broker lost" in worker.output
    finally:
        stack.close()
