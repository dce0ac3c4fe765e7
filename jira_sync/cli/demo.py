"""``jira-sync demo``: the whole system on embedded defaults, no external service needed.

Unset settings take demo defaults (SQLite file and a filesystem broker under ./var, a
generated key kept in ./var so restarts can read what they sealed); set ones are honoured.
Each process runs in its own session so one Ctrl-C is turned into an orderly shutdown of all.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
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
from cryptography.fernet import Fernet

from config.settings import var_dir

READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 20
PROCESSES = ("web", "worker", "beat")


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

    def start(self, name: str, *args: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "jira_sync", name, *args], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
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


def _wait_ready(url: str, processes: Processes) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last: object = "no answer yet"
    while time.monotonic() < deadline:
        if processes.exited():
            raise click.ClickException(f"{', '.join(processes.exited())} exited during start")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            last = json.load(exc).get("reason")
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise click.ClickException(f"web not ready after {READY_TIMEOUT_SECONDS}s: {last}")


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
    """Run web, worker and beat on embedded defaults until Ctrl-C."""
    env = demo_environment(dict(os.environ))
    os.environ.update(env)  # This process publishes the probe with the same settings.
    from jira_sync.cli.common import load_settings
    from jira_sync.store import migrate

    settings = load_settings(needs_secret_key=True)
    log_dir = var_dir() / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)

    processes = Processes(env, log_dir)
    stop = _install_stop_handlers()
    try:
        for name in PROCESSES:
            processes.start(name)
        base = f"http://{settings.web_host}:{settings.web_port}"
        _wait_ready(f"{base}/readyz", processes)
        click.echo(f"jira-sync demo is up ({datetime.now():%H:%M:%S})")
        for queue, seconds in _probe_queues(settings.database_url, processes).items():
            click.echo(f"  probe task through {queue:24} processed after {seconds * 1000:.0f} ms")
        click.echo(f"""
  web       {base}  (/healthz, /readyz, /metrics)
  worker    consuming every queue; log {log_dir / 'worker.log'}
  beat      periodic sweeps; log {log_dir / 'beat.log'}
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
        click.echo("stopping web, worker and beat ...")
        processes.stop()
        click.echo("stopped.")


def _install_stop_handlers() -> list[int]:
    stop: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stop.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
