"""``serve``: the blocking entry point the command line uses, stopped by signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

SERVE = ("from jira_sync.simulators.jira import SimulatorConfig, serve; "
         "serve(SimulatorConfig(deployment='server'), port={port})")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_returns_cleanly_on_a_signal(stop: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVE.format(port=port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                config = requests.get(f"http://127.0.0.1:{port}/_sim/config", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, process.stderr.read()
                time.sleep(0.05)
        assert config["deployment"] == "server"
        myself = requests.get(f"http://127.0.0.1:{port}/rest/api/2/myself", timeout=5,
                              headers={"Authorization": "Bearer pat-123"})
        assert myself.status_code == 200
        process.send_signal(stop)
        _, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
