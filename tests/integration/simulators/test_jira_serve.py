"""``serve``: the blocking entry point the command line uses, stopped by signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.support.processes import ServiceProcess, clean_env, run_cli

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


def test_the_command_line_sets_the_webhook_drop_rate(tmp_path) -> None:
    port = free_port()
    process = ServiceProcess(["simulate", "jira", "--port", str(port), "--webhook-drop-rate",
                              "0.25", "--seed", "4"], clean_env(), tmp_path / "sim.log")
    try:
        process.wait_http(f"http://127.0.0.1:{port}/_sim/config")
        config = requests.get(f"http://127.0.0.1:{port}/_sim/config", timeout=5).json()
        assert (config["webhook_drop_rate"], config["seed"]) == (0.25, 4)
        assert process.stop() == 0
    finally:
        process.kill()
    refused = run_cli(["simulate", "jira", "--port", "1", "--webhook-drop-rate", "1.5"],
                      clean_env())
    assert refused.returncode == 2 and "--webhook-drop-rate" in refused.stderr
