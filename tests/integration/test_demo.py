"""`jira-sync demo` on embedded defaults: up, a task through the broker, Ctrl-C stops it all."""

import os
import signal
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess, clean_env, free_port

pytestmark = pytest.mark.integration


def processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_runs_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path):
    env = clean_env()
    env["JIRA_SYNC_WEB_PORT"] = str(free_port())
    demo = ServiceProcess(["demo"], env, tmp_path / "demo.log", cwd=tmp_path)
    try:
        demo.wait_for(r"Press Ctrl-C to stop everything", timeout=120)
        for queue in ("qalita", "jira_inbound", "outbound", "maintenance"):
            assert f"probe task through jira_sync.{queue}" in demo.output
        assert f"sqlite:///{tmp_path}/var/jira-sync.db" in demo.output
        assert f"filesystem://localhost{tmp_path}/var/broker" in demo.output
        demo.signal(signal.SIGINT)
        assert demo.proc.wait(60) == 0, demo.output
        assert "stopped." in demo.output
        assert processes_in(tmp_path) == []
    finally:
        demo.kill()
