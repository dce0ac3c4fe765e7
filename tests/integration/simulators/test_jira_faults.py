"""Rate limiting and injected failures, including failures after the change was applied."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import Jira


def test_data_center_advertises_its_token_bucket(simulate) -> None:
    answer = simulate("server", rate_limit=2).get("/myself")
    assert answer.headers["X-RateLimit-FillRate"] == "2"
    assert answer.headers["X-RateLimit-Interval-Seconds"] == "1"


def test_rate_limit_answers_429_with_jira_headers(simulate) -> None:
    jira = simulate("cloud", rate_limit=2)
    first = jira.get("/myself")
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert "X-RateLimit-FillRate" not in first.headers  # Data Center's header, not Cloud's
    assert first.headers["X-RateLimit-Remaining"] == "1"
    statuses = [jira.get("/myself") for _ in range(3)]
    limited = next(r for r in statuses if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Reason"] == "jira-burst-based"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"].endswith("Z")
    assert jira.sim("/calls/count", params={"status": 429})["count"] >= 1
    time.sleep(0.6)
    assert jira.get("/myself").status_code == 200  # the bucket refills at 2 per second


def test_no_rate_headers_without_a_limit(cloud: Jira) -> None:
    assert "X-RateLimit-Limit" not in cloud.get("/myself").headers


def test_rate_limit_can_be_changed_at_run_time(cloud: Jira) -> None:
    cloud.sim_post("/config", {"rate_limit": 1})
    assert [cloud.get("/myself").status_code for _ in range(2)] == [200, 429]
    cloud.sim_post("/config", {"rate_limit": None})
    assert cloud.get("/myself").status_code == 200


def create_outcome(jira: Jira, n: int) -> str:
    body = {"fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                       "summary": f"attempt {n}"}}
    try:
        return str(jira.post("/issue", body).status_code)
    except requests.ConnectionError:
        return "dropped"


@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_faults_happen_before_and_after_the_change(simulate, deployment: str) -> None:
    jira = simulate(deployment, fail_rate=1.0, seed=42)
    outcomes = Counter(create_outcome(jira, n) for n in range(24))
    assert set(outcomes) <= {"500", "502", "503", "dropped"}
    assert outcomes["dropped"] > 0 and outcomes["500"] + outcomes["502"] + outcomes["503"] > 0
    calls = jira.sim("/calls", params={"method": "POST"})
    applied = {c["body"]["fields"]["summary"] for c in calls if c["fault"] == "after"}
    refused = {c["body"]["fields"]["summary"] for c in calls if c["fault"] == "before"}
    assert applied and refused  # both kinds, and each kind did what it says
    stored = {issue["summary"] for issue in jira.sim("/issues")}
    assert stored == applied
    assert any(c["dropped"] and c["status"] is None for c in calls)


def test_faults_are_reproducible_with_a_seed(simulate) -> None:
    runs = []
    for _ in range(2):
        jira = simulate("cloud", fail_rate=0.5, seed=7)
        runs.append([create_outcome(jira, n) for n in range(12)])
    assert runs[0] == runs[1]
    assert "201" in runs[0] and set(runs[0]) - {"201"}


def test_inspection_api_is_never_failed(simulate) -> None:
    jira = simulate("cloud", fail_rate=1.0, seed=1)
    for _ in range(5):
        assert jira.sim("/issues") == []


def test_latency_is_added(simulate) -> None:
    jira = simulate("cloud", latency_ms=150)
    started = time.monotonic()
    jira.get("/myself")
    assert time.monotonic() - started >= 0.15


def test_concurrent_clients(simulate) -> None:
    jira = simulate("cloud")

    def create(n: int) -> int:
        client = jira.as_user(("svc@example.com", "tok-123"))
        return client.post("/issue", {"fields": {
            "project": {"key": "DATA"}, "issuetype": {"name": "Task"},
            "summary": f"parallel {n}"}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(create, range(80))) == {201}
    issues = jira.sim("/issues")
    assert sorted(int(i["key"].split("-")[1]) for i in issues) == list(range(1, 81))
    assert len({i["id"] for i in issues}) == 80
