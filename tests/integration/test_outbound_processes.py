"""The outbound sync across real worker processes, Redis, Postgres and the Jira simulator over
HTTP: exactly-once creates under concurrency and under a SIGKILL of a whole worker, coalescing,
429 storms and injected faults, and invalid events queued ahead of valid ones."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
import requests
from sqlalchemy import func, select

from jira_sync import publish_qalita_event
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.store.db import Database
from jira_sync.store.models import CommentLink, DeadLetter, IssueLink
from tests.support import brokers
from tests.support.processes import ServiceProcess, wait_until
from tests.support.sync import bootstrap_env, qalita_event

pytestmark = [pytest.mark.integration, pytest.mark.both_brokers]
FLUSH_SUCCEEDED = re.compile(r"^(\S+ \S+) INFO \S+ celery\.app\.trace: Task jira_sync\.flush_links"
                             r"\[[^]]+\] succeeded in ([\d.]+)s", re.MULTILINE)


@pytest.fixture
def sim():
    with running_simulator(SimulatorConfig(deployment="cloud", seed=7)) as running:
        yield running


@pytest.fixture
def env(service_env, sim):
    return bootstrap_env(service_env, sim.base_url, **{
        "JIRA_SYNC_DEBOUNCE_SECONDS": "0.5", "JIRA_SYNC_SWEEP_SECONDS": "1",
        "JIRA_SYNC_LEASE_SECONDS": "4", "JIRA_SYNC_INDEX_LAG_SECONDS": "2",
        "JIRA_SYNC_BACKOFF_BASE_SECONDS": "0.2", "JIRA_SYNC_BACKOFF_CAP_SECONDS": "2",
        "JIRA_SYNC_JIRA_RATE_LIMIT": "500", "JIRA_SYNC_HEARTBEAT_SECONDS": "3600"})


@pytest.fixture
def db(postgres_url):
    database = Database(postgres_url)
    yield database
    database.dispose()


@pytest.fixture
def processes(tmp_path):
    started: list[ServiceProcess] = []

    def start(kind: str, env: dict[str, str], name: str = "w1",
              *extra: str) -> ServiceProcess:
        args = [kind, *(("--hostname", f"{name}@%h", *extra) if kind == "worker" else extra)]
        process = ServiceProcess(args, env, tmp_path / f"{kind}-{name}.log")
        started.append(process)
        process.wait_for(r"ready\." if kind == "worker" else r"beat: lock acquired", 60)
        return process

    yield start
    for process in started:
        process.kill()


def publish(env: dict[str, str], *events: dict) -> None:
    for event in events:
        publish_qalita_event(event, broker_url=env["JIRA_SYNC_BROKER_URL"])


def jira_issues(sim, qalita_id: int | None = None) -> list[dict]:
    issues = [i for i in requests.get(f"{sim.base_url}/_sim/issues", timeout=10).json()
              if not i["deleted"]]
    if qalita_id is None:
        return issues
    return [i for i in issues if f"qalita-id-default-{qalita_id}" in i["labels"]]


def calls(sim, **filters) -> list[dict]:
    return requests.get(f"{sim.base_url}/_sim/calls", params=filters, timeout=10).json()


def links(db: Database) -> list[IssueLink]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(IssueLink).order_by(IssueLink.qalita_issue_id)))


def describe(db: Database) -> list[tuple]:
    return [(r.qalita_issue_id, r.state, r.state_reason, r.applied_version, r.desired_version,
             r.due_at, r.next_attempt_at, r.lease_owner, r.jira_issue_key) for r in links(db)]


def settled(db: Database, count: int, version: int | None = None) -> bool:
    rows = links(db)
    return len(rows) == count and all(
        r.state in ("linked", "closed") and r.due_at is None and r.lease_owner is None
        and (version is None or r.applied_version == version) for r in rows)


def flush_runs(process: ServiceProcess) -> list[tuple[float, float]]:
    """When each flush task of a worker started and ended, from its log (one clock for all
    the workers of a test)."""
    runs = []
    for stamp, runtime in FLUSH_SUCCEEDED.findall(process.output):
        end = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        runs.append((end - float(runtime), end))
    return runs


def test_fifty_duplicate_concurrent_creates_across_workers_make_one_issue(
        env, sim, db, processes):
    # One pool process each: while one worker waits for Jira's answer to the create, every
    # flush that runs meanwhile runs in the other worker.
    env = {**env, "JIRA_SYNC_DEBOUNCE_SECONDS": "0", "JIRA_SYNC_WORKER_CONCURRENCY": "1"}
    workers = [processes("worker", env, "w1"), processes("worker", env, "w2")]
    hold = 2.0  # Jira applies the create at once and answers this much later
    requests.post(f"{sim.base_url}/_sim/config", json={"reply_delay_ms": int(hold * 1000)},
                  timeout=10).raise_for_status()
    event = qalita_event(1)
    publish(env, *[event] * 10, *[{**event, "event_id": f"dup-{n}"} for n in range(20)])
    wait_until(lambda: [c for c in calls(sim, method="POST", path="/rest/api/3/issue*")
                        if c["status"] is None], 60, 0.05)
    # QALITA sends its create again while Jira holds the answer: each newer snapshot makes
    # the link due again, so the other worker flushes it while the create is in flight.
    publish(env, *[qalita_event(1, version) for version in range(2, 22)])
    wait_until(lambda: settled(db, 1, 21), 60)
    # Nothing queued or held any more (a look-again countdown included): nothing can still
    # create.
    wait_until(lambda: brokers.idle(env["JIRA_SYNC_BROKER_URL"]), 60)
    assert len(jira_issues(sim, 1)) == 1
    assert len(calls(sim, method="POST", path="/rest/api/3/issue*")) == 1
    assert links(db)[0].jira_issue_id == jira_issues(sim, 1)[0]["id"]
    # The workers competed: one flushed the link while the other's create waited for Jira
    # (the first flush held for the answer is the create's).
    runs = [flush_runs(worker) for worker in workers]
    creator, (asked, answered) = min(
        ((n, run) for n, worker_runs in enumerate(runs) for run in worker_runs
         if run[1] - run[0] >= hold), key=lambda found: found[1])
    assert any(asked < start and end < answered for start, end in runs[1 - creator]), runs


def test_a_worker_killed_between_the_jira_create_and_the_commit_recovers_to_one_issue(
        env, sim, db, processes):
    processes("beat", env, "b")
    victim = processes("worker", env, "victim")
    requests.post(f"{sim.base_url}/_sim/config", json={"reply_delay_ms": 30000},
                  timeout=10).raise_for_status()
    publish(env, qalita_event(1))
    wait_until(lambda: jira_issues(sim, 1), 30, 0.05)
    victim.kill()  # main process and pool children, mid-call: Jira applied, we never heard
    assert links(db)[0].jira_issue_id is None
    requests.post(f"{sim.base_url}/_sim/config", json={"reply_delay_ms": 0},
                  timeout=10).raise_for_status()
    processes("worker", env, "rescuer")
    rescuing = time.monotonic()
    wait_until(lambda: settled(db, 1), 120)
    # The sweep takes the link once the dead worker's lease ran out and adopts the issue once
    # Jira's index shows it: nothing waits for the broker to deliver the lost flush again.
    bound = sum(float(env[name]) for name in (
        "JIRA_SYNC_LEASE_SECONDS", "JIRA_SYNC_INDEX_LAG_SECONDS", "JIRA_SYNC_SWEEP_SECONDS"))
    assert time.monotonic() - rescuing <= bound
    assert [i["id"] for i in jira_issues(sim, 1)] == [links(db)[0].jira_issue_id]


def test_ten_updates_in_one_window_make_one_create_and_at_most_one_edit(
        env, sim, db, processes):
    env = {**env, "JIRA_SYNC_DEBOUNCE_SECONDS": "3"}
    processes("worker", env)
    statuses = ["open"] * 9 + ["active"]
    publish(env, qalita_event(1), *[
        qalita_event(1, version, "issue.updated", title=f"v{version}", dataset=None,
                     status=statuses[version - 2]) for version in range(2, 12)])
    wait_until(lambda: settled(db, 1, 11), 60)
    [issue] = jira_issues(sim, 1)
    assert issue["summary"] == "v11" and issue["status"]["category"] == "indeterminate"
    writes = calls(sim, method="POST", path="/rest/api/3/issue*")
    creates = [c for c in writes if c["path"] in ("/rest/api/3/issue", "/rest/api/3/issue/bulk")]
    transitions = [c for c in writes if c["path"].endswith("/transitions")]
    assert len(creates) == 1 and len(transitions) == 1
    assert len(calls(sim, method="PUT", path="/rest/api/3/issue/*")) <= 1


@pytest.mark.xfail(strict=False, reason=(
    "known bug, issue 11: under a hidden 3/s limit with 20 % faults, a link sometimes ends "
    "blocked with \"no known path from 'To Do' to a status in category 'done' (tried: no "
    "transition)\": the workflow planner takes a transient condition for a missing path"))
def test_429_storms_and_faults_end_correct_with_no_duplicate_and_no_dead_letter(
        env, sim, db, processes):
    # A limit Jira does not advertise, low enough that the limiter must find it from 429s.
    requests.post(f"{sim.base_url}/_sim/config", timeout=10, json={
        "rate_limit": 3, "advertise_rate_limit": False, "fail_rate": 0.2}).raise_for_status()
    env = {**env, "JIRA_SYNC_WORKER_CONCURRENCY": "4", "JIRA_SYNC_JIRA_RATE_LIMIT": "100"}
    processes("beat", env, "b")
    processes("worker", env)
    count = 12
    events = []
    for n in range(1, count + 1):
        events += [qalita_event(n),
                   qalita_event(n, 2, "issue.updated", status="resolved", title=f"done {n}",
                                dataset=None),
                   qalita_event(n, 2, "issue.comment_created",
                                comment={"id": 100 + n, "body": f"note {n}"})]
    publish(env, *events)

    def done() -> bool:
        with db.unit_of_work() as session:
            posted = session.scalar(select(func.count()).select_from(CommentLink).where(
                CommentLink.state == "posted"))
        return settled(db, count, 2) and posted == count

    try:
        wait_until(done, 90, 1)
    except AssertionError:
        with db.unit_of_work() as session:
            comments = [(c.link_id, c.state, c.jira_comment_id, c.attempted_at)
                        for c in session.scalars(select(CommentLink))]
        raise AssertionError(f"not settled: {describe(db)}; comments {comments}") from None
    requests.post(f"{sim.base_url}/_sim/config", json={"fail_rate": 0.0}, timeout=10)
    assert any(c["status"] == 429 for c in calls(sim))
    assert any(c.get("fault") == "after" for c in calls(sim))
    for n in range(1, count + 1):
        [issue] = jira_issues(sim, n)
        assert issue["summary"] == f"done {n}" and issue["status"]["name"] == "Done"
        assert len(issue["comments"]) == 1, issue["comments"]
    with db.unit_of_work() as session:
        assert session.scalars(select(DeadLetter.reason)).all() == []


def test_invalid_events_are_dead_letters_and_the_valid_ones_behind_them_sync(
        env, sim, db, processes):
    missing = qalita_event(2)
    del missing["issue"]["title"]
    wrong = qalita_event(3)
    wrong["issue"]["version"] = "three"
    long_title = qalita_event(4, title="t" * 1_000_000)
    huge = qalita_event(8, description="d" * 1_100_000)
    unknown = qalita_event(5, event_type="issue.teleported")
    processes("worker", env)
    publish(env, missing, wrong, long_title, huge, unknown, qalita_event(6), qalita_event(7))
    wait_until(lambda: settled(db, 2), 60)
    with db.unit_of_work() as session:
        reasons = sorted(session.scalars(select(DeadLetter.reason)))
    assert len(reasons) == 5
    joined = " | ".join(reasons)
    for expected in ("issue.title: Missing", "issue.version", "maximum length 1000", "1 MiB",
                     "event_type"):
        assert expected in joined
    assert len(jira_issues(sim, 6)) == 1 and len(jira_issues(sim, 7)) == 1


def test_without_beat_held_events_sync_once_a_worker_starts_with_the_integration(
        env, sim, db, processes):
    from jira_sync.store.models import InboxEvent

    unconfigured = {k: v for k, v in env.items()
                    if k.startswith("JIRA_SYNC_") or not k.startswith(("JIRA_", "QALITA_"))}
    first = processes("worker", unconfigured, "first")
    publish(env, qalita_event(1))

    def held() -> bool:
        with db.unit_of_work() as session:
            return session.scalars(select(InboxEvent.state)).all() == ["waiting"]

    wait_until(held, 30)
    first.stop()
    processes("worker", env, "configured")  # bootstraps the integration; no beat anywhere
    wait_until(lambda: settled(db, 1), 60)
    assert len(jira_issues(sim, 1)) == 1
