"""Start ``jira-sync`` subcommands as real processes, read their logs, stop them cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def clean_env() -> dict[str, str]:
    """This machine's environment without any jira-sync or QALITA setting of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "QALITA_"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A local port nothing listens on (bound and released, so nobody else has it yet)."""
    return free_port()


class ServiceProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.args, self.log_path = args, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jira_sync", *args], env=env, cwd=cwd,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.args[0]}: no {pattern!r} in output:\n{self.output[-4000:]}")

    def wait_http(self, url: str, timeout: float = 30) -> None:
        """Until ``url`` answers anything over HTTP; fails with the output if the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(url, timeout=1)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"{url} did not answer:\n{self.output}") from None
                time.sleep(0.1)

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the process (as an orchestrator would) and return its exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure nothing of the process group survives the test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jira_sync", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s")
