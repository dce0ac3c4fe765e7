"""Two-way traffic on real processes (web, two workers, beat, both simulators) under one kind
of fault at a time, checked against a model of what both sides must end as.

A seeded driver plays QALITA users (new issues, then ``dataset`` and ``severity`` changes),
people in Jira (status transitions) and a few events the schema rejects; the scenario's
faults strike at seeded moments of the run. ``FAULT_SEED`` replays a run, ``FAULT_EVENTS``
and ``FAULT_KILLS`` size it (``make test-faults`` runs the full size).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jira_sync import publish_qalita_event
from jira_sync.store.db import Database
from tests.faults.model import NEXT, Expected, Model, links, needless_writes, unsettled_links
from tests.support.proxy import CuttableProxy
from tests.support.stack import Stack
from tests.support.sync import qalita_event

pytestmark = [pytest.mark.integration, pytest.mark.faults]
SETTLE_SECONDS = 120  # every link settles this soon after the faults stop
SEVERITIES = ("info", "low", "medium", "high", "critical")
INVALID_ISSUE_BASE = 900_000
DEFAULTS = {"reply_delay_ms": 0}


@dataclass
class Run:
    """One scenario's run: the stack, the seeded choices and what the model expects."""

    stack: Stack
    rng: random.Random
    model: Model
    database_url: str
    kills: int
    request: pytest.FixtureRequest
    proxy: CuttableProxy | None = None
    background: list[threading.Thread] = field(default_factory=list)

    def later(self, action: Callable[[], None]) -> None:
        """Run ``action`` beside the traffic (a fault that lasts, a worker coming back)."""
        thread = threading.Thread(target=action, daemon=True)
        thread.start()
        self.background.append(thread)


@dataclass(frozen=True)
class Scenario:
    name: str
    strike: Callable[[Run], None]  # at each seeded moment of the run
    stop: Callable[[Run], None] = lambda run: None  # the faults end
    moments: Callable[[Run], int] = lambda run: 1
    # Whether the service can lose an answer without the simulator recording a fault (its
    # process killed, its database or broker gone, a reply past its timeout): then any
    # identical earlier write may be repeated.
    answers_lost: bool = False
    own_broker: bool = False
    through_proxy: bool = False
    service_env: dict[str, str] = field(default_factory=dict)


# -- the faults ----------------------------------------------------------------------------

def kill_a_worker(run: Run) -> None:
    """SIGKILL one worker's whole process group (main process and pool children) and start
    it again."""
    workers = [p for p in run.stack.processes if p.args[0] == "worker" and p.proc.poll() is None]
    victim = run.rng.choice(workers)
    victim.kill()
    name = victim.args[victim.args.index("--hostname") + 1].split("@")[0]
    run.later(lambda: run.stack.start("worker", name))


def jira_config(**settings: Any) -> Callable[[Run], None]:
    return lambda run: run.stack.configure_jira(**settings)


def for_a_while(seconds: float, **settings: Any) -> Callable[[Run], None]:
    """Jira behaves so for ``seconds``, then as before (the settings' defaults)."""
    def strike(run: Run) -> None:
        run.stack.configure_jira(**settings)

        def end() -> None:
            time.sleep(seconds)
            run.stack.configure_jira(**{name: DEFAULTS[name] for name in settings})

        run.later(end)
    return strike


def restart_broker(run: Run) -> None:
    """Down for 2 s while QALITA waits (it publishes nothing it cannot hand over)."""
    run.request.node.aof_redis.restart(2)


def terminate_backends(run: Run) -> None:
    url = make_url(run.database_url)
    admin = Database(url.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.engine.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": url.database})
            connection.commit()
    finally:
        admin.dispose()


def cut_postgres(run: Run) -> None:
    assert run.proxy is not None
    run.proxy.cut()

    def restore() -> None:
        time.sleep(20)
        run.proxy.restore()

    run.later(restore)


def qalita_failing(run: Run) -> None:
    for status, retry_after in ((503, None), (429, 1), (502, None)):
        requests.post(f"{run.stack.qalita.base_url}/_sim/faults", json={
            "status": status, "count": 15, "retry_after": retry_after}, timeout=10
        ).raise_for_status()


SCENARIOS = [
    Scenario("worker-kills", kill_a_worker, moments=lambda run: run.kills, answers_lost=True),
    Scenario("jira-fail-rate", jira_config(fail_rate=0.3), jira_config(fail_rate=0.0)),
    Scenario("webhooks-disordered",
             jira_config(webhook_order="duplicate", webhook_drop_rate=0.2),
             jira_config(webhook_order="inorder", webhook_drop_rate=0.0),
             # What no webhook told, the reconciliation sweep reads from Jira.
             service_env={"JIRA_SYNC_RECONCILE_SECONDS": "5"}),
    Scenario("webhooks-shuffled", jira_config(webhook_order="shuffle"),
             jira_config(webhook_order="inorder")),
    Scenario("broker-restart", restart_broker, answers_lost=True, own_broker=True),
    Scenario("postgres-terminate", terminate_backends, moments=lambda run: 3,
             answers_lost=True),
    Scenario("postgres-unreachable", cut_postgres, answers_lost=True, through_proxy=True),
    Scenario("jira-429-storm", jira_config(rate_limit=5, advertise_rate_limit=False),
             jira_config(rate_limit=None, advertise_rate_limit=True)),
    # Past the client's 30 s read timeout, for the writes that start within 4 s.
    Scenario("jira-slow-replies", for_a_while(4, reply_delay_ms=31_000), answers_lost=True),
    Scenario("qalita-failing", qalita_failing,
             lambda run: requests.delete(f"{run.stack.qalita.base_url}/_sim/faults",
                                         timeout=10).raise_for_status()),
]


# -- the driver ----------------------------------------------------------------------------

def invalid_events(count: int) -> list[dict[str, Any]]:
    """Events the schema rejects, as QALITA would publish them."""
    made = []
    for n in range(count):
        event = qalita_event(INVALID_ISSUE_BASE + n)
        match n % 3:
            case 0:
                del event["issue"]["title"]
            case 1:
                event["issue"]["version"] = "three"
            case 2:
                event["event_type"] = "issue.teleported"
        made.append(event)
    return made


class Driver:
    """The seeded traffic of a run: ``events`` user actions on both sides."""

    def __init__(self, run: Run, scenario: Scenario, events: int) -> None:
        self.run, self.scenario, self.events = run, scenario, events
        self.s = run.stack
        self.keys: dict[int, str] = {}

    def play(self) -> None:
        rng, model = self.run.rng, self.run.model
        issues = max(10, self.events // 10)
        invalid = invalid_events(max(3, self.events // 100))
        model.invalid_event_ids = {e["event_id"] for e in invalid}
        strikes = sorted(rng.sample(range(issues, self.events),
                                    self.scenario.moments(self.run)))
        invalid_at = dict(zip(rng.sample(range(self.events), len(invalid)), invalid,
                              strict=True))
        for n in range(self.events):
            while strikes and strikes[0] == n:
                strikes.pop(0)
                self.scenario.strike(self.run)
            if n in invalid_at:
                publish_qalita_event(invalid_at[n], broker_url=self.s.env["JIRA_SYNC_BROKER_URL"])
            if n < issues:
                created = self.s.qalita_new(title=f"fault {n}", dataset="orders",
                                            severity="high")
                model.issues[created["id"]] = Expected()
                continue
            qalita_id = rng.choice(sorted(model.issues))
            roll = rng.random()
            if roll < 0.35:
                model.issues[qalita_id].dataset = dataset = f"table_{rng.randrange(50)}"
                self.s.qalita_change(qalita_id, dataset=dataset)
            elif roll < 0.6:
                model.issues[qalita_id].severity = severity = rng.choice(SEVERITIES)
                self.s.qalita_change(qalita_id, severity=severity)
            elif (key := self.key_of(qalita_id)) is not None:
                want = model.issues[qalita_id]
                want.jira_status = self.move(key, want.jira_status)

    def key_of(self, qalita_id: int) -> str | None:
        """The issue's Jira key once the sync made it (a person can only move what exists)."""
        if qalita_id not in self.keys:
            found = self.s.jira_issue_of(qalita_id)
            if found is None:
                return None
            self.keys[qalita_id] = found["key"]
        return self.keys[qalita_id]

    def move(self, key: str, status: str) -> str:
        """A person moves the issue one step on, retrying through Jira's faults until the
        issue is there (a fault after the change applied it anyway)."""
        name, target = NEXT[status]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            current = requests.get(f"{self.s.jira.base_url}/_sim/issues/{key}",
                                   timeout=10).json()["status"]["name"]
            if current == target:
                return target
            try:
                self.s.transition(key, name)
            except (AssertionError, StopIteration, requests.RequestException):
                time.sleep(0.2)
        raise AssertionError(f"{key} never reached {target}")


# -- the checks ----------------------------------------------------------------------------

def check(run: Run, scenario: Scenario, faults_stopped: float) -> None:
    s, model = run.stack, run.model
    database = Database(run.database_url)
    try:
        def state() -> list[str]:
            qalita = {i: s.qalita_issue(i) for i in model.issues}
            return (model.differences(s.jira_issues(), qalita)
                    + [f"link not at rest: {row}" for row in unsettled_links(database)]
                    + model.dead_letter_problems(database))

        last: list[str] = ["not looked"]
        while last and time.monotonic() - faults_stopped < SETTLE_SECONDS:
            time.sleep(1)
            last = state()
        assert not last, f"not settled {SETTLE_SECONDS}s after the faults stopped:\n" + \
            "\n".join(last[:30]) + f"\nlinks: {links(database)}"
    finally:
        database.dispose()

    def jira_lost(call: dict[str, Any]) -> bool:
        return scenario.answers_lost or call["fault"] == "after" or call["status"] is None

    needless = needless_writes(
        s.jira_calls(), lost=jira_lost,
        is_service=lambda c: c["actor"] == "svc" and "/search" not in c["path"])
    needless += needless_writes(
        s.qalita_calls(), lost=lambda c: scenario.answers_lost or c["fault"],
        is_service=lambda c: c["origin"] == "jira-sync")
    assert not needless, f"writes restating the target's value: {needless[:10]}"


# Real bugs the suite found, skipped until the service is fixed (say the invariant broken).
KNOWN_BUGS = {
    "worker-kills": "a QALITA event held by a SIGKILLed worker (acks_late) comes back only "
                    "after Redis's visibility timeout (3600 s, jira_sync/broker.py): at 200 "
                    "events an invalid event had no dead letter 120 s after the kill",
    "broker-restart": "a QALITA event taken before the broker restarted waits for Redis's "
                      "visibility timeout (3600 s): at 200 events an invalid event had no "
                      "dead letter 120 s after the restart",
    "jira-slow-replies": "outbound restates priority after adopting an issue whose create "
                         "answer was lost: _plan_edit compares priority and components with "
                         "what it wrote, not with the issue it just read (needless PUT, "
                         "changed false)",
    "postgres-terminate": "the same needless priority PUT once a create's outcome was lost "
                          "with its database connection",
    "jira-fail-rate": "a stale priority overwrites a newer one under Jira faults: PUT "
                      "priority Low (changed) then PUT priority Highest from an older "
                      "snapshot, and the link settles at the old value",
}


@pytest.mark.parametrize("scenario", [
    pytest.param(s, id=s.name, marks=[pytest.mark.skip(reason=KNOWN_BUGS[s.name])]
                 if s.name in KNOWN_BUGS else []) for s in SCENARIOS])
@pytest.mark.timeout(1200)
def test_two_way_traffic_under_faults_ends_as_the_model(
        scenario, seed, size, service_env, postgres_url, jira, qalita, tmp_path, request):
    env = dict(scenario.service_env)
    proxy = None
    if scenario.through_proxy:
        url = make_url(postgres_url)
        proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
        proxy.restore()
        env["JIRA_SYNC_DATABASE_URL"] = url.set(host="127.0.0.1", port=proxy.port) \
            .render_as_string(hide_password=False)
    stack = Stack(service_env, jira, qalita, tmp_path, **env)
    events, kills = size
    run = Run(stack, random.Random(seed), Model(), postgres_url, kills, request, proxy)
    try:
        stack.up(workers=2)
        stack.configure_jira(webhook_retry_delay_ms=500)
        try:
            Driver(run, scenario, events).play()
        finally:
            for thread in run.background:
                thread.join(timeout=120)
            scenario.stop(run)
        faults_stopped = time.monotonic()
        check(run, scenario, faults_stopped)
    except BaseException:
        (tmp_path / "jira-calls.json").write_text(json.dumps(stack.jira_calls(), indent=1))
        print(f"fault scenario {scenario.name}: replay with FAULT_SEED={seed} "
              f"FAULT_EVENTS={events} FAULT_KILLS={kills}")
        raise
    finally:
        stack.close()
        if proxy is not None:
            proxy.cut()
