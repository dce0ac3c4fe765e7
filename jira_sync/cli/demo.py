"""``jira-sync demo``: the whole system on embedded defaults, no external service needed.

It starts the Jira and QALITA simulators, then web, worker and beat with an integration
pointing at them, plays a QALITA scenario through the QALITA simulator (demo_scenario.py),
shows the links following and the resulting Jira issues, and runs until Ctrl-C.

Unset settings take demo defaults (SQLite file and a filesystem broker under ./var, a
generated key kept in ./var so restarts can read what they sealed); set ones are honoured.
The simulators start empty, so on embedded defaults each run starts from an empty database
and broker spool too. Each process runs in its own session so one Ctrl-C is turned into an
orderly shutdown of all.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
import requests
from cryptography.fernet import Fernet

from config.settings import Settings, var_dir

READY_TIMEOUT_SECONDS = 90
SIMULATOR_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
PROCESSES = ("web", "worker", "beat")
SIMULATORS = ("jira-simulator", "qalita-simulator")
SIMULATOR_ATTEMPTS = 3
# The integration every process upserts (CONTRACT §7 simulator defaults), and timings short
# enough to watch.
DEMO_INTEGRATION = {
    "JIRA_DEPLOYMENT": "cloud",
    "JIRA_EMAIL": "svc@example.com",
    "JIRA_API_TOKEN": "tok-123",
    "JIRA_PROJECT_KEY": "DATA",
    "JIRA_ISSUE_TYPE": "Bug",
    "QALITA_API_TOKEN": "qalita-tok",
    "JIRA_SYNC_DEBOUNCE_SECONDS": "1",
    "JIRA_SYNC_SWEEP_SECONDS": "5",
    "JIRA_SYNC_INDEX_LAG_SECONDS": "3",
}


def demo_environment(base: dict[str, str]) -> dict[str, str]:
    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    env = dict(base)
    env.setdefault("JIRA_SYNC_BROKER_URL", f"filesystem://localhost{var / 'broker'}")
    env.setdefault("JIRA_SYNC_SECRET_KEY", _kept(var / "demo-secret.key",
                                                 lambda: Fernet.generate_key().decode()))
    env.setdefault("JIRA_SYNC_ADMIN_TOKEN", _kept(var / "demo-admin-token",
                                                  lambda: secrets.token_urlsafe(24)))
    # Two-way assignees, so a reassignment in Jira reaches QALITA too.
    mapping = var / "demo-mapping.yaml"
    mapping.write_text("# jira-sync demo: assignees flow back from Jira as well\n"
                       "inbound:\n  assignee: true\n")
    env.setdefault("JIRA_SYNC_MAPPING_FILE", str(mapping))
    # SQLite has one writer: a small pool keeps lock waits short.
    env.setdefault("JIRA_SYNC_WORKER_CONCURRENCY", "2")
    env.setdefault("JIRA_SYNC_WEB_WORKERS", "1")
    return env


def webhook_secret() -> str:
    """The secret the Jira simulator signs its webhooks with (kept, like the key)."""
    return _kept(var_dir() / "demo-webhook-secret", lambda: secrets.token_urlsafe(24))


def integration_environment(env: dict[str, str], jira_url: str | None = None,
                            qalita_url: str | None = None) -> dict[str, str]:
    """The integration with the simulators (their URLs once they run), wherever the
    environment does not say otherwise."""
    env = dict(env)
    secret = webhook_secret() if jira_url is not None else None
    for name, value in (("JIRA_BASE_URL", jira_url), ("QALITA_API_URL", qalita_url),
                        ("JIRA_WEBHOOK_SECRET", secret), *DEMO_INTEGRATION.items()):
        if value is not None:
            env.setdefault(name, value)
    return env


def fresh_state(base: dict[str, str]) -> list[str]:
    """Empty the embedded database and broker spool an earlier run left in ./var: its links
    lead to issues of simulators that are gone. Returns what was removed."""
    var, removed = var_dir(), []
    if not base.get("JIRA_SYNC_DATABASE_URL", "").strip():
        for suffix in ("", "-wal", "-shm"):
            path = var / f"jira-sync.db{suffix}"
            if path.exists():
                path.unlink()
                removed.append(str(path))
    if not base.get("JIRA_SYNC_BROKER_URL", "").strip() and (var / "broker").exists():
        shutil.rmtree(var / "broker")
        removed.append(str(var / "broker"))
    return removed


def free_port(taken: set[int]) -> int:
    """A local port nothing listens on now (bound and released), not among ``taken``."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def _kept(path: Path, make: Callable[[], str]) -> str:
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, *command: str) -> None:
        """Start ``jira-sync <command>`` (``jira-sync <name>`` by default), logging to
        ``<name>.log``."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "jira_sync", *(command or (name,))], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def exited(self) -> list[str]:
        return [name for name, proc in self.running.items() if proc.poll() is not None]

    def stop(self, last: tuple[str, ...] = ()) -> None:
        """Stop every process, the ones named in ``last`` once the others are gone (the
        simulators outlive the worker, so flushes in flight end quickly)."""
        first = [name for name in self.running if name not in last]
        for group in (first, [name for name in self.running if name in last]):
            self._stop({name: self.running[name] for name in group})
        for log in self._logs:
            log.close()

    @staticmethod
    def _stop(group: dict[str, subprocess.Popen[bytes]]) -> None:
        # The main process only: Celery and gunicorn shut their own children down in order;
        # signalling the whole group at once can leave a worker waiting on dead children.
        for proc in group.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, proc in group.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"  {name} did not stop in {STOP_TIMEOUT_SECONDS}s; killing it")
            # Whatever is left of the process group (pool children included) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(url: str, processes: Processes) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last: object = "no answer yet"
    while time.monotonic() < deadline:
        if processes.exited():
            raise click.ClickException(f"{', '.join(processes.exited())} exited during start;"
                                       " see var/log/")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            try:
                last = json.load(exc).get("reason") or exc
            except (ValueError, AttributeError):
                last = exc
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise click.ClickException(f"web not ready after {READY_TIMEOUT_SECONDS}s: {last}")


def _start_simulator(processes: Processes, name: str, command: Callable[[int], tuple[str, ...]],
                     taken: set[int]) -> str:
    """Start a simulator on a free port and return its URL once it answers. Another program
    may take the port between the check and the simulator's bind: then try another."""
    for _attempt in range(SIMULATOR_ATTEMPTS):
        port = free_port(taken)
        processes.start(name, *command(port))
        url = f"http://127.0.0.1:{port}"
        proc = processes.running[name]
        deadline = time.monotonic() + SIMULATOR_TIMEOUT_SECONDS
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/_sim/issues", timeout=2):
                    taken.add(port)
                    return url
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise click.ClickException(f"the {name} did not answer on {url} in "
                                               f"{SIMULATOR_TIMEOUT_SECONDS}s") from None
                time.sleep(0.1)
    raise click.ClickException(f"the {name} did not start; see var/log/{name}.log")


def _probe_queues(database_url: str, processes: Processes) -> dict[str, float]:
    """Send a probe through every queue via the broker and wait until a worker consumed it."""
    from jira_sync.heartbeats import latest
    from jira_sync.store.db import Database
    from jira_sync.store.types import utcnow
    from worker import queues
    from worker.tasks.maintenance import send_heartbeats

    sent = utcnow()
    send_heartbeats.delay()
    database = Database(database_url)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if processes.exited():
                raise click.ClickException(f"{', '.join(processes.exited())} exited")
            with database.unit_of_work() as session:
                seen = {q: (b.seen_at - sent).total_seconds()
                        for q, b in latest(session).items() if b.sent_at >= sent}
            if set(seen) >= set(queues.ALL):
                return {q: seen[q] for q in queues.ALL}
            time.sleep(0.3)
    finally:
        database.dispose()
    raise click.ClickException("the probe tasks were not processed in time; see var/log/")


@click.command()
def demo() -> None:
    """Run the Jira and QALITA simulators, web, worker and beat, play a QALITA scenario through
    them, then keep everything running until Ctrl-C."""
    base = dict(os.environ)
    removed = fresh_state(base)
    env = integration_environment(demo_environment(base))
    os.environ.update(env)  # This process publishes the probe with the same settings.
    from jira_sync.cli.common import load_settings
    from jira_sync.store import migrate

    settings = load_settings(needs_secret_key=True)
    log_dir = var_dir() / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    if removed:
        click.echo("jira-sync demo: the simulators start empty, so the database and broker "
                   "spool of the last run were emptied")
    migrate.upgrade(settings.database_url)

    processes = Processes(env, log_dir)
    stop = _install_stop_handlers()
    click.echo("jira-sync demo: starting the Jira and QALITA simulators, web, worker and beat")
    try:
        taken = {settings.web_port}
        webhook_url = (f"http://{settings.web_host}:{settings.web_port}"
                       "/api/v2/integrations/jira/webhook")
        jira_url = _start_simulator(
            processes, SIMULATORS[0],
            lambda port: ("simulate", "jira", "--port", str(port), "--webhook-url",
                          webhook_url, "--webhook-secret", webhook_secret()),
            taken)
        qalita_url = _start_simulator(
            processes, SIMULATORS[1],
            lambda port: ("simulate", "qalita", "--port", str(port), "--broker-url",
                          settings.broker_url, "--tenant", settings.tenant),
            taken)
        # Web, worker and beat each upsert the integration with the simulators.
        processes.env = integration_environment(env, jira_url, qalita_url)
        os.environ.update(processes.env)
        settings = load_settings(needs_secret_key=True)
        for name in PROCESSES:
            processes.start(name)
        base_url = f"http://{settings.web_host}:{settings.web_port}"
        _wait_ready(f"{base_url}/readyz", processes)
        click.echo(f"jira-sync demo is up ({datetime.now():%H:%M:%S})")
        for queue, seconds in _probe_queues(settings.database_url, processes).items():
            click.echo(f"  probe task through {queue:24} processed after {seconds * 1000:.0f} ms")
        if processes.env["JIRA_BASE_URL"] != jira_url:
            click.echo(f"\nJIRA_BASE_URL is set to {processes.env['JIRA_BASE_URL']}: the "
                       "scenario only ever runs against the Jira simulator, so it is skipped")
        elif not stop:
            _play(settings, jira_url, qalita_url,
                  interrupted=lambda: bool(stop or processes.exited()))
        if stop:
            return
        click.echo(f"""
  web       {base_url}  (/healthz, /readyz, /metrics)
  worker    consuming every queue; log {log_dir / 'worker.log'}
  beat      periodic sweeps; log {log_dir / 'beat.log'}
  jira      {jira_url}  Jira simulator (Cloud); issues as stored: /_sim/issues
  qalita    {qalita_url}  QALITA simulator; /_sim/issues plays a QALITA user
  database  {settings.database_url}
  broker    {settings.broker_url}
  admin     Authorization: Bearer <token in {var_dir() / 'demo-admin-token'}>
  logs      {log_dir}/

Press Ctrl-C to stop everything.""")
        while not stop and not processes.exited():
            time.sleep(0.3)
        if processes.exited():
            raise click.ClickException(f"{', '.join(processes.exited())} stopped unexpectedly;"
                                       f" see {log_dir}")
    finally:
        click.echo("stopping web, worker, beat and the simulators ...")
        processes.stop(last=SIMULATORS)
        click.echo("stopped.")


def _play(settings: Settings, jira_url: str, qalita_url: str,
          interrupted: Callable[[], bool]) -> None:
    """The scenario, the links following it, and what Jira holds in the end."""
    from jira_sync.cli import demo_scenario as scenario
    from jira_sync.store.db import Database

    database = Database(settings.database_url)
    try:
        qalita = scenario.Qalita(qalita_url)
        progress = scenario.Progress(settings.tenant)
        issues = scenario.scenario_issues(scenario.first_issue_id(database, settings.tenant))
        deadline = time.monotonic() + scenario.SYNC_TIMEOUT_SECONDS
        try:
            click.echo(f"\nQALITA: {len(issues)} data-quality issues are raised (each change "
                       "is published on the broker as a QALITA event)")
            scenario.raise_issues(qalita, issues)
            click.echo("jira-sync: creating them in Jira (QALITA id → Jira key, version)")
            if scenario.wait_in_step(database, qalita, progress, deadline, interrupted):
                click.echo("\nQALITA: the data owners work on them")
                scenario.work_on_issues(qalita, issues)
                click.echo("jira-sync: bringing Jira in step")
                if scenario.wait_in_step(database, qalita, progress, deadline,
                                         interrupted):
                    _people_in_jira(database, settings.tenant, jira_url, qalita_url, issues,
                                    interrupted)
        except scenario.ScenarioError as exc:
            click.echo(f"  the scenario stopped: {exc.message}")
        if interrupted():
            return
        click.echo(f"\nJira now holds (read from {jira_url}/_sim/issues):")
        try:
            for line in scenario.jira_table(jira_url, settings.tenant):
                click.echo(line)
        except requests.RequestException as exc:
            click.echo(f"  could not read the Jira simulator: {exc}")
    finally:
        database.dispose()


def _people_in_jira(database: Any, tenant: str, jira_url: str, qalita_url: str,
                    issues: list[dict[str, Any]], interrupted: Callable[[], bool]) -> None:
    """The other way: people triage in Jira, and QALITA follows (no change bounces back)."""
    from jira_sync.cli import demo_scenario as scenario
    from jira_sync.store.types import utcnow

    since = utcnow()
    click.echo("\nJira: people triage there (each action sends a signed webhook to web)")
    expected = scenario.work_in_jira(jira_url, database, tenant, issues)
    click.echo("jira-sync: writing what they did to QALITA")
    deadline = time.monotonic() + scenario.SYNC_TIMEOUT_SECONDS
    if not scenario.wait_in_qalita(qalita_url, expected, deadline, interrupted):
        return
    # QALITA's events for those writes come back through the broker: wait for them a while.
    deadline = time.monotonic() + scenario.ECHO_WAIT_SECONDS
    seen = scenario.echoes(database, since)
    while not seen and time.monotonic() < deadline and not interrupted():
        time.sleep(scenario.POLL_SECONDS)
        seen = scenario.echoes(database, since)
    time.sleep(scenario.POLL_SECONDS)  # the rest of that batch
    seen = scenario.echoes(database, since)
    if seen:
        click.echo(f"  QALITA's events for those writes came back: {len(seen)} recognised as "
                   f"echoes, nothing went back to Jira; e.g. \"{seen[0]}\"")


def _install_stop_handlers() -> list[int]:
    stop: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stop.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
