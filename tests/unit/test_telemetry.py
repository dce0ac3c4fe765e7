"""What the core counts and under which labels: every label has a bounded set of values, so
an issue key or a sender's made-up event type never becomes a series of its own."""

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from jira_sync import telemetry
from jira_sync.store.types import utcnow


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("PUT", "/issue/DATA-1", "PUT /issue/{}"),
    ("POST", "/issue/10001/transitions", "POST /issue/{}/transitions"),
    ("GET", "/project/DATA", "GET /project/{}"),
    ("POST", "/search/approximate-count", "POST /search/approximate-count"),
    ("DELETE", "/api/v2/issues/4211/comments/991", "DELETE /api/v2/issues/{}/comments/{}"),
    ("GET", "/api/v2/issues?offset=0&limit=100", "GET /api/v2/issues"),
])
def test_operations_keep_the_shape_of_the_path(method, path, operation):
    assert telemetry.operation(method, path) == operation


def test_event_types_outside_the_known_ones_count_as_other():
    before = sample("jira_sync_events_in_total", source="qalita", type="other")
    jira_before = sample("jira_sync_events_in_total", source="jira", type="other")
    telemetry.event_in("qalita", "issue.exploded")
    telemetry.event_in("qalita", None)
    telemetry.event_in("jira", "something:else")
    assert sample("jira_sync_events_in_total", source="qalita", type="other") == before + 2
    assert sample("jira_sync_events_in_total", source="jira", type="other") == jira_before + 1


def test_rate_limit_reasons_are_kept_only_when_they_look_like_jiras():
    before = sample("jira_sync_jira_rate_limited_total", reason="other")
    burst = sample("jira_sync_jira_rate_limited_total", reason="jira-burst-based")
    telemetry.jira_rate_limited("jira-burst-based")
    telemetry.jira_rate_limited("Something <b>odd</b>")
    assert sample("jira_sync_jira_rate_limited_total", reason="jira-burst-based") == burst + 1
    assert sample("jira_sync_jira_rate_limited_total", reason="other") == before + 1


def test_latency_is_from_the_newest_change_and_skipped_when_none_is_known():
    name = "jira_sync_sync_latency_seconds"
    count = sample(f"{name}_count", direction="test")
    total = sample(f"{name}_sum", direction="test")
    now = utcnow()
    telemetry.synced("test", [(now - timedelta(minutes=5)).isoformat(),
                              now - timedelta(seconds=30), None])
    telemetry.synced("test", [None])
    assert sample(f"{name}_count", direction="test") == count + 1
    assert 29 <= sample(f"{name}_sum", direction="test") - total < 60


def test_decisions_count_when_their_rows_commit_and_not_when_rolled_back(sqlite_url):
    from jira_sync.store import migrate
    from jira_sync.store.db import Database
    from jira_sync.sync.journal import entry, write

    migrate.upgrade(sqlite_url)
    database = Database(sqlite_url)
    name, labels = "jira_sync_sync_decisions_total", {"action": "test", "decision": "counted"}
    before = sample(name, **labels)
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        write(session, [entry(None, "test", "counted", "rolled back")])
        raise RuntimeError("the transaction fails")
    assert sample(name, **labels) == before
    with database.unit_of_work() as session:
        write(session, [entry(None, "test", "counted", "kept")] * 2)
    assert sample(name, **labels) == before + 2
    database.dispose()
