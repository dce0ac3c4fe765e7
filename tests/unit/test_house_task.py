"""The house defaults hold on every registered task, and a misspelt option cannot pass."""

import pytest
from sqlalchemy.exc import OperationalError

from worker import queues
from worker.batching import BatchTask
from worker.celery_app import TASK_QUEUES, TASK_SOFT_TIME_LIMIT, TASK_TIME_LIMIT, app
from worker.house import task


def service_tasks():
    app.loader.import_default_modules()
    return {name: t for name, t in app.tasks.items() if not name.startswith("celery.")}


def test_the_service_registers_its_tasks():
    assert {"jira_sync.qalita_event", "jira_sync.ping", "jira_sync.send_heartbeats",
            "jira_sync.prune"} <= set(service_tasks())


@pytest.mark.parametrize("name", sorted(service_tasks()))
def test_house_defaults_hold_on_every_task(name):
    registered = service_tasks()[name]
    assert registered.acks_late is True
    assert registered.reject_on_worker_lost is True
    assert registered.ignore_result is True
    assert registered.serializer == "json"
    assert registered.time_limit == TASK_TIME_LIMIT
    assert registered.soft_time_limit == TASK_SOFT_TIME_LIMIT
    assert registered.soft_time_limit < registered.time_limit
    # An unreachable database is waited out, never acknowledged away (a batch task sends
    # its messages again itself: tests/integration/test_batch_intake.py).
    if not isinstance(registered, BatchTask):
        assert registered.autoretry_for == (OperationalError,) and registered.max_retries is None
    assert TASK_QUEUES[name] in queues.ALL
    assert app.amqp.router.route({}, name)["queue"].name == TASK_QUEUES[name]


def test_contract_names_of_the_qalita_event_task():
    route = app.amqp.router.route({}, "jira_sync.qalita_event")
    assert route["queue"].name == "jira_sync.qalita"


def test_app_level_reliability_settings():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.result_backend is None and conf.task_ignore_result
    assert conf.accept_content == ["json"]
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert conf.broker_connection_retry_on_startup is True
    assert conf.broker_connection_max_retries is None
    assert conf.broker_transport_options["visibility_timeout"] > TASK_TIME_LIMIT
    assert conf.broker_transport_options["socket_timeout"] > 0
    assert {q.name for q in conf.task_queues} == set(queues.ALL)


def test_a_misspelt_option_is_refused():
    with pytest.raises(TypeError, match="ignore_results"):
        task(name="jira_sync.test_typo", queue=queues.MAINTENANCE, ignore_results=True)


def test_callers_arguments_are_checked_against_the_signature_without_session():
    ping = service_tasks()["jira_sync.ping"]
    with pytest.raises(TypeError, match="argument"):
        ping.apply_async(("only-one-argument",))
