"""The inbound half across real processes: jira-sync web, workers and beat, Redis, Postgres,
and both simulators over HTTP; with Postgres cut under a burst of deliveries, and the broker
down while Jira delivers."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, or_, select

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent, IssueLink
from tests.support.proxy import CuttableProxy
from tests.support.stack import Stack, eventually

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]


@pytest.fixture
def jira():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0, seed=3)) as sim:
        yield sim


@pytest.fixture
def stack(service_env, jira, qalita, tmp_path):
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        built = Stack(service_env, jira, qalita, tmp_path, **env)
        made.append(built)
        return built

    yield make
    for built in made:
        built.close()


def writes_to_qalita(stack: Stack) -> list[dict]:
    return [c for c in stack.qalita_calls() if c["origin"] == "jira-sync"]


def echoes_settled(database: Database, count: int) -> bool:
    """QALITA's ``count`` events about jira-sync's own writes are taken in, every delivery
    and event is processed, and no flush is left to run: a loop would have written by now."""
    with database.unit_of_work() as session:
        inbox = session.execute(select(InboxEvent.state, InboxEvent.payload)).all()
        busy = session.scalar(select(func.count()).select_from(IssueLink).where(or_(
            IssueLink.due_at.is_not(None), IssueLink.inbound_due_at.is_not(None),
            IssueLink.lease_owner.is_not(None))))
    echoes = [payload for _, payload in inbox if payload.get("origin") == "jira-sync"]
    return len(echoes) == count and busy == 0 and all(state == "processed" for state, _ in inbox)


def test_people_in_jira_reach_qalita_through_web_and_workers(stack, database):
    s = stack()
    s.up()
    issue = s.qalita_new()
    key = eventually(lambda: (s.jira_issue_of(issue["id"]) or {}).get("id"))
    s.transition(key, "Start Progress")
    s.transition(key, "Done")
    s.as_person("POST", f"/issue/{key}/comment", {"body": {
        "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "fixed the loader"}]}]}})
    eventually(lambda: s.qalita_issue(issue["id"])["status"] == "resolved"
               and len(s.qalita_issue(issue["id"])["comments"]) == 1)
    eventually(lambda: echoes_settled(database, 2))  # the status's and the comment's
    assert [c["method"] for c in writes_to_qalita(s)] == ["PUT", "POST"]
    jira_issue = s.jira_issue_of(issue["id"])
    assert len(jira_issue["comments"]) == 1 and jira_issue["status"]["name"] == "Done"


def test_postgres_cut_during_a_burst_loses_no_delivery(stack, postgres_url):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.restore()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    s = stack()
    s.start("web", JIRA_SYNC_DATABASE_URL=through)
    s.start("worker")
    s.configure_jira(webhook_url=s.webhook_url, webhook_secret="hook-secret",
                     webhook_retry_delay_ms=1500)
    issues = [s.qalita_new(title=f"issue {n}") for n in range(4)]
    keys = eventually(lambda: [j["id"] for i in issues if (j := s.jira_issue_of(i["id"]))]
                      if all(s.jira_issue_of(i["id"]) for i in issues) else None)
    proxy.cut()
    for key in keys:
        s.transition(key, "Start Progress")
    time.sleep(1)
    proxy.restore()
    eventually(lambda: all(s.qalita_issue(i["id"])["status"] == "active" for i in issues),
               timeout=90)
    deliveries = __import__("requests").get(f"{s.jira.base_url}/_sim/webhooks",
                                            timeout=10).json()["deliveries"]
    statuses = [a["status"] for d in deliveries for a in d["attempts"]]
    assert 503 in statuses  # refused while Postgres was away, then delivered again
    assert all(d["state"] == "delivered" for d in deliveries)


def test_with_the_broker_down_deliveries_are_stored_and_processed_after(
        service_env, jira, own_redis, tmp_path):
    import requests

    port, running, start = own_redis
    broker = f"redis://127.0.0.1:{port}/0"
    with running_qalita_simulator(QalitaSimulatorConfig(broker_url=broker)) as qalita:
        s = Stack(service_env, jira, qalita, tmp_path, JIRA_SYNC_BROKER_URL=broker)
        try:
            s.up()
            issue = s.qalita_new()
            key = eventually(lambda: (s.jira_issue_of(issue["id"]) or {}).get("id"))
            running["process"].kill()
            running["process"].wait()
            s.transition(key, "Start Progress")

            def answered() -> list[int]:
                deliveries = requests.get(f"{jira.base_url}/_sim/webhooks",
                                          timeout=10).json()["deliveries"]
                return [a["status"] for a in deliveries[-1]["attempts"]]

            # Stored and answered 2xx, though no worker could be told.
            assert eventually(answered, timeout=30) == [202]
            running["process"] = start()
            eventually(lambda: s.qalita_issue(issue["id"])["status"] == "active",
                       timeout=90)
        finally:
            s.close()
