"""Work the limiter holds back is parked as waiting, not failing, while a 429 from Jira is an
attempt: the outbound sync against the simulator over HTTP, on Postgres, with the shared
limiter on the database."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from jira_sync.jira.limiter import Call, DatabaseStore, RateLimiter
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.store.models import IssueLink, LogEntry
from jira_sync.store.types import utcnow
from jira_sync.sync.outbound import flush_link
from tests.support.sync import Harness, qalita_event

pytestmark = pytest.mark.integration


@pytest.fixture
def sim():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0)) as running:
        yield running


def link(database) -> IssueLink:
    with database.unit_of_work() as session:
        return session.scalars(select(IssueLink)).one()


def parked_rows(database) -> list[LogEntry]:
    with database.unit_of_work() as session:
        return list(session.scalars(select(LogEntry).where(
            LogEntry.decision == "rate_limited").order_by(LogEntry.id)))


def test_work_waiting_for_a_quota_counts_no_attempt_and_calls_nothing(database, sim):
    h = Harness(database, sim.base_url, "cloud")
    h.ctx.limiter = RateLimiter(DatabaseStore(database))
    h.sync(qalita_event(1))
    # Jira said the hourly quota is spent (API-token calls name no app: the site is the pool).
    h.ctx.limiter.answered(Call(sim.base_url, "GET", "/myself"), 1000, 429,
                           {"RateLimit-Reason": "jira-quota-global-based"}, 1200, busy=False)
    writes_before = len(h.calls(method="PUT"))
    h.send(qalita_event(1, 2, "issue.updated", severity="low"))
    dues = []
    while h.queue:
        dues = flush_link(h.ctx, h.queue.pop()[2])
    parked = link(database)
    assert parked.attempts == 0 and parked.first_failure_at is None
    assert (parked.next_attempt_at - utcnow()).total_seconds() > 1000
    assert [d.link_id for d in dues] == [parked.id]
    assert len(h.calls(method="PUT")) == writes_before
    [row] = parked_rows(database)
    assert row.level == "info" and "hourly quota" in row.message


def test_a_429_from_jira_counts_as_an_attempt(database, sim):
    h = Harness(database, sim.base_url, "cloud")
    h.ctx.limiter = RateLimiter(DatabaseStore(database))
    h.sync(qalita_event(1))
    # Buckets that give one token every 50 s: the edit is refused for longer than any call
    # waits inline.
    requests.post(f"{sim.base_url}/_sim/config", timeout=10,
                  json={"rate_limit": 0.02, "advertise_rate_limit": False}).raise_for_status()
    key = h.issue_of(1)["key"]
    for method in ("GET", "PUT"):  # somebody else takes the buckets' one token
        requests.request(method, f"{sim.base_url}/rest/api/3/issue/{key}", timeout=10,
                         auth=("svc@example.com", "tok-123"), json={"fields": {}})
    h.send(qalita_event(1, 2, "issue.updated", severity="low"))
    while h.queue:
        flush_link(h.ctx, h.queue.pop()[2])
    parked = link(database)
    assert parked.attempts == 1 and parked.first_failure_at is not None
    assert [r.level for r in parked_rows(database)] == ["warning"]
    assert h.calls(status=429)
