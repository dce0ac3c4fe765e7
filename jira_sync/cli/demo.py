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
from typing import IO

import click
import requests
from cryptography.fernet import Fernet

from config.settings import Settings, var_dir

READY_TIMEOUT_SECONDS = 90
SIMULATOR_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
PROCESSES = ("web", "worker", "beat")
# Tried first, so the simulators keep their address from run to run when these are free.
SIMULATOR_PORTS = {"jira": 8081, "qalita": 8082}
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
    # SQLite has one writer: a small pool keeps lock waits short.
    env.setdefault("JIRA_SYNC_WORKER_CONCURRENCY", "2")
    env.setdefault("JIRA_SYNC_WEB_WORKERS", "1")
    return env


def integration_environment(env: dict[str, str], jira_url: str,
                            qalita_url: str) -> dict[str, str]:
    """The integration with the simulators, wherever the environment does not say otherwise."""
    env = dict(env)
    env.setdefault("JIRA_BASE_URL", jira_url)
    env.setdefault("QALITA_API_URL", qalita_url)
    for name, value in DEMO_INTEGRATION.items():
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


def pick_port(preferred: int, taken: set[int]) -> int:
    """``preferred`` when it is free, else any free port."""
    for candidate in (preferred, 0):
        if candidate in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise click.ClickException("no free port for the simulators")


def producer_workdir(settings: Settings) -> Path | None:
    """Where the QALITA simulator runs, so its events reach a filesystem broker.

    ``publish_qalita_event`` opens the broker without transport options, and kombu's
    filesystem transport then uses the folders data_in, data_out, control and processed of
    the current directory: these links point them at the spool the worker reads.
    """
    from jira_sync.broker import transport_options

    options = transport_options(settings)
    if "data_folder_in" not in options:
        return None
    workdir = var_dir() / "qalita-simulator"
    workdir.mkdir(parents=True, exist_ok=True)
    for name, option in (("data_in", "data_folder_in"), ("data_out", "data_folder_out"),
                         ("control", "control_folder"), ("processed", "processed_folder")):
        link = workdir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(options[option], target_is_directory=True)
    return workdir


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

    def start(self, name: str, *command: str, cwd: Path | None = None) -> None:
        """Start ``jira-sync <command>`` (``jira-sync <name>`` by default), logging to
        ``<name>.log``."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "jira_sync", *(command or (name,))], env=self.env,
            cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def exited(self) -> list[str]:
        return [name for name, proc in self.running.items() if proc.poll() is not None]

    def stop(self) -> None:
        # The main process only: Celery and gunicorn shut their own children down in order;
        # signalling the whole group at once can leave a worker waiting on dead children.
        for proc in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, proc in self.running.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"  {name} did not stop in {STOP_TIMEOUT_SECONDS}s; killing it")
            # Whatever is left of the process group (pool children included) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for log in self._logs:
            log.close()


def _wait_ready(url: str, processes: Processes, what: str = "web",
                timeout: float = READY_TIMEOUT_SECONDS) -> object:
    deadline = time.monotonic() + timeout
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
    raise click.ClickException(f"{what} not ready after {timeout:.0f}s: {last}")


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
    env = demo_environment(base)
    jira_port = pick_port(SIMULATOR_PORTS["jira"], {_web_port(env)})
    qalita_port = pick_port(SIMULATOR_PORTS["qalita"], {_web_port(env), jira_port})
    jira_url, qalita_url = f"http://127.0.0.1:{jira_port}", f"http://127.0.0.1:{qalita_port}"
    env = integration_environment(env, jira_url, qalita_url)
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
    try:
        processes.start("jira-simulator", "simulate", "jira", "--port", str(jira_port))
        processes.start("qalita-simulator", "simulate", "qalita", "--port", str(qalita_port),
                        "--broker-url", settings.broker_url, "--tenant", settings.tenant,
                        cwd=producer_workdir(settings))
        for what, url in (("Jira simulator", jira_url), ("QALITA simulator", qalita_url)):
            _wait_ready(f"{url}/_sim/issues", processes, what, SIMULATOR_TIMEOUT_SECONDS)
        for name in PROCESSES:
            processes.start(name)
        base_url = f"http://{settings.web_host}:{settings.web_port}"
        _wait_ready(f"{base_url}/readyz", processes)
        click.echo(f"jira-sync demo is up ({datetime.now():%H:%M:%S})")
        for queue, seconds in _probe_queues(settings.database_url, processes).items():
            click.echo(f"  probe task through {queue:24} processed after {seconds * 1000:.0f} ms")
        if not stop:
            _play(settings, jira_url, qalita_url,
                  interrupted=lambda: bool(stop or processes.exited()))
        click.echo(f"""
  web       {base_url}  (/healthz, /readyz, /metrics)
  worker    consuming every queue; log {log_dir / 'worker.log'}
  beat      periodic sweeps; log {log_dir / 'beat.log'}
  jira      {jira_url}  Jira simulator (Cloud, project DATA); issues as stored: /_sim/issues
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
        click.echo("stopping the simulators, web, worker and beat ...")
        processes.stop()
        click.echo("stopped.")


def _web_port(env: dict[str, str]) -> int:
    raw = env.get("JIRA_SYNC_WEB_PORT", "").strip()
    return int(raw) if raw.isdigit() else 8080


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
            click.echo(f"\nQALITA: a rule run raises {len(issues)} issues (each change is "
                       "published on the broker as a QALITA event)")
            scenario.raise_issues(qalita, issues)
            click.echo("jira-sync: creating them in Jira (QALITA id → Jira key, version)")
            if scenario.wait_in_step(database, qalita, progress, deadline, interrupted):
                click.echo("\nQALITA: the data owners work on them")
                scenario.work_on_issues(qalita, issues)
                click.echo("jira-sync: bringing Jira in step")
                scenario.wait_in_step(database, qalita, progress, deadline, interrupted)
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


def _install_stop_handlers() -> list[int]:
    stop: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stop.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
