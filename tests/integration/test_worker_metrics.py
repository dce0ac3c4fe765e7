"""The worker's metrics port, scraped over HTTP from a real `jira-sync worker` after real work
against the Jira simulator: counters added up across the prefork pool, the database's gauges,
a killed pool process's counts kept, and JSON log lines carrying the task's context."""

from __future__ import annotations

import json
import os
import re
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from jira_sync import publish_qalita_event
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from tests.support.processes import ServiceProcess, free_port, wait_until
from tests.support.sync import bootstrap_env, qalita_event

pytestmark = pytest.mark.integration
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


@pytest.fixture
def sim():
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0)) as running:
        yield running


@pytest.fixture
def env(service_env, sim):
    return bootstrap_env(service_env, sim.base_url, **{
        "JIRA_SYNC_DEBOUNCE_SECONDS": "0.2", "JIRA_SYNC_SWEEP_SECONDS": "1",
        "JIRA_SYNC_INDEX_LAG_SECONDS": "0", "JIRA_SYNC_JIRA_RATE_LIMIT": "500",
        "JIRA_SYNC_HEARTBEAT_SECONDS": "3600",
        "JIRA_SYNC_WORKER_METRICS_PORT": str(free_port()),
        "JIRA_SYNC_LOG_FORMAT": "json"})


@pytest.fixture
def worker(env, tmp_path):
    process = ServiceProcess(["worker"], env, tmp_path / "worker.log")
    try:
        process.wait_for(r"ready\.", 60)
        yield process
    finally:
        process.stop()


def scrape(env: dict[str, str]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(f"http://127.0.0.1:{env['JIRA_SYNC_WORKER_METRICS_PORT']}/metrics",
                        timeout=10).text
    samples = {}
    for match in SAMPLE.finditer(text):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name: str, **labels: str) -> float:
    """Summed over the label values not given."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def created(sim) -> int:
    issues = requests.get(f"{sim.base_url}/_sim/issues", timeout=10).json()
    return sum(1 for issue in issues if "qalita" in issue["labels"])


def pool_pids(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def now_event(issue_id: int) -> dict:
    event = qalita_event(issue_id)
    return {**event, "occurred_at": datetime.now(UTC).isoformat()}


def test_the_pool_counts_add_up_on_the_metrics_port(env, sim, worker):
    for issue_id in (1, 2, 3):
        publish_qalita_event(now_event(issue_id), broker_url=env["JIRA_SYNC_BROKER_URL"])
    wait_until(lambda: created(sim) == 3, timeout=60)
    samples = wait_until(lambda: (s := scrape(env)) and total(
        s, "jira_sync_sync_latency_seconds_count", direction="qalita_to_jira") >= 3 and s)

    assert value(samples, "jira_sync_events_in_total", source="qalita",
                 type="issue.created") == 3
    creates = total(samples, "jira_sync_jira_calls_total", operation="POST /issue",
                    status="201") + total(samples, "jira_sync_jira_calls_total",
                                          operation="POST /issue/bulk", status="201")
    answered = [c for c in requests.get(f"{sim.base_url}/_sim/calls", params={
        "method": "POST", "path": "/rest/api/3/issue*"}, timeout=10).json()
        if c["path"] in ("/rest/api/3/issue", "/rest/api/3/issue/bulk") and c["status"] == 201]
    assert creates == len(answered) > 0  # every create Jira answered, counted once
    assert total(samples, "jira_sync_sync_decisions_total", decision="accepted") == 3
    # Published just now, synced within the test's minute.
    assert total(samples, "jira_sync_sync_latency_seconds_sum",
                 direction="qalita_to_jira") < 3 * 60
    assert value(samples, "jira_sync_database_up") == 1
    assert value(samples, "jira_sync_dead_letters_open") == 0
    assert value(samples, "jira_sync_integration_paused", tenant="default", side="jira") == 0
    assert value(samples, "jira_sync_integration_paused", tenant="default", side="qalita") == 0
    assert any(name == "jira_sync_tasks_running" for name, _ in samples)

    # A pool process killed outright: its counts stay, its files are folded away.
    directory = Path(worker.wait_for(r"worker metrics on \S+ \(values in (\S+)\)")[1])
    victim = pool_pids(worker.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in pool_pids(worker.proc.pid))
    after = scrape(env)
    for name in ("jira_sync_events_in_total", "jira_sync_jira_calls_total",
                 "jira_sync_sync_decisions_total", "jira_sync_sync_latency_seconds_count"):
        assert total(after, name) == total(samples, name), name
    assert not list(directory.glob(f"*_{victim}.db"))
    assert worker.stop() == 0
    assert not directory.exists()


def test_json_log_lines_carry_the_task_and_issue(env, sim, worker):
    publish_qalita_event(now_event(7), broker_url=env["JIRA_SYNC_BROKER_URL"])
    wait_until(lambda: created(sim) == 1, timeout=60)
    assert worker.stop() == 0
    lines = [json.loads(line) for line in worker.output.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("task_id") for line in lines)
    assert "tok-123" not in worker.output


def test_a_taken_port_leaves_the_worker_syncing(env, sim, worker, tmp_path):
    second = ServiceProcess(["worker", "--hostname", "second@%h"], env, tmp_path / "second.log")
    try:
        second.wait_for(r"ready\.", 60)
        assert "worker metrics are off: cannot listen on" in second.output
        assert second.stop() == 0
    finally:
        second.kill()


def test_a_killed_workers_directory_goes_at_the_next_start(env, tmp_path):
    first = ServiceProcess(["worker"], env, tmp_path / "first.log")
    try:
        directory = Path(first.wait_for(r"worker metrics on \S+ \(values in (\S+)\)", 60)[1])
    finally:
        first.kill()  # SIGKILL: nothing is cleaned up
    assert directory.exists()
    second = ServiceProcess(["worker"], env, tmp_path / "second.log")
    try:
        second.wait_for(r"ready\.", 60)
        assert not directory.exists()
        assert second.stop() == 0
    finally:
        second.kill()
