"""`jira-sync dead-letters` and the bulk replay job across a real worker, Redis, Postgres and
the Jira simulator over HTTP: refused creates become letters, a fixed setting and `replay
--all` sync each issue once, with the job's progress; show, replay, discard, exit codes."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select, update

from jira_sync import publish_qalita_event
from jira_sync.store.db import Database
from jira_sync.store.models import DeadLetter, Integration, Job
from tests.integration.admin.conftest import TEAM
from tests.support.processes import ServiceProcess, run_cli, wait_until
from tests.support.sync import bootstrap_env, qalita_event

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(team_sim):
    return team_sim


@pytest.fixture
def env(service_env, sim):
    return bootstrap_env(service_env, sim.base_url, **{
        "JIRA_SYNC_DEBOUNCE_SECONDS": "0.2", "JIRA_SYNC_SWEEP_SECONDS": "1",
        "JIRA_SYNC_LEASE_SECONDS": "4", "JIRA_SYNC_INDEX_LAG_SECONDS": "0",
        "JIRA_SYNC_HEARTBEAT_SECONDS": "3600"})


@pytest.fixture
def db(postgres_url):
    database = Database(postgres_url)
    yield database
    database.dispose()


@pytest.fixture
def worker(env, tmp_path):
    process = ServiceProcess(["worker", "--hostname", "w1@%h"], env, tmp_path / "worker.log")
    try:
        process.wait_for(r"ready\.", 60)
        yield process
    finally:
        process.kill()


def set_team(db: Database, value: str) -> None:
    with db.unit_of_work() as session:
        session.execute(update(Integration).values(
            options={"mapping": {"field_defaults": {TEAM: {"value": value}}}}))


def letters(db: Database) -> list[DeadLetter]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def jira_issues(sim) -> list[dict]:
    return [i for i in requests.get(f"{sim.base_url}/_sim/issues", timeout=10).json()
            if not i["deleted"]]


def test_refused_creates_replay_in_bulk_once_fixed_and_the_cli_reports_each_step(
        env, db, sim, worker):
    set_team(db, "Nobody")
    for issue_id in (1, 2, 3):
        publish_qalita_event(qalita_event(issue_id), broker_url=env["JIRA_SYNC_BROKER_URL"])
    wait_until(lambda: len(letters(db)) == 3, 60)

    listed = run_cli(["dead-letters", "list", "--json", "--kind", "jira_rejected"], env)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert [i["state"] for i in items] == ["open"] * 3 and jira_issues(sim) == []
    assert {i["link"]["qalita_issue_id"] for i in items} == {1, 2, 3}

    set_team(db, "Data platform")
    replayed = run_cli(["dead-letters", "replay", "--all", "--tenant", "default"], env,
                       timeout=120)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "3 replayed, 0 failed" in replayed.stdout and "job" in replayed.stderr
    with db.unit_of_work() as session:
        job = session.scalars(select(Job)).one()
        assert (job.kind, job.state, job.total, job.done, job.failed) == (
            "replay", "done", 3, 3, 0)
    wait_until(lambda: len(jira_issues(sim)) == 3, 60)
    wait_until(lambda: all(letter.resolved_at for letter in letters(db)), 30)
    assert len(jira_issues(sim)) == 3  # each issue once

    shown = run_cli(["dead-letters", "show", str(items[0]["id"])], env)
    assert json.loads(shown.stdout)["state"] == "resolved"
    again = run_cli(["dead-letters", "replay", str(items[0]["id"])], env)
    assert again.returncode == 1 and "resolved" in again.stderr


def test_an_invalid_event_replays_discards_and_bad_usage_exits_2(env, db, sim, worker):
    bad = qalita_event(9)
    del bad["issue"]["title"]
    publish_qalita_event(bad, broker_url=env["JIRA_SYNC_BROKER_URL"])
    [letter] = wait_until(lambda: letters(db), 60)

    still = run_cli(["dead-letters", "replay", str(letter.id)], env)
    assert still.returncode == 1 and "failed again" in still.stderr and "title" in still.stderr
    assert letters(db)[0].replay_count == 1 and len(letters(db)) == 1

    discarded = run_cli(["dead-letters", "discard", str(letter.id)], env)
    assert discarded.returncode == 0, discarded.stderr
    listed = run_cli(["dead-letters", "list", "--state", "discarded"], env)
    assert f"{letter.id:>6}  discarded" in listed.stdout

    assert run_cli(["dead-letters", "show", "424242"], env).returncode == 1
    assert run_cli(["dead-letters", "replay"], env).returncode == 2
    assert run_cli(["dead-letters", "list", "--since", "yesterday"], env).returncode == 2
    missing = run_cli(["dead-letters", "list", "--tenant", "nobody"], env)
    assert missing.returncode == 1 and "nobody" in missing.stderr
