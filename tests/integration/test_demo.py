"""`jira-sync demo` on embedded defaults: up, a task through the broker, a QALITA scenario
synced into the Jira simulator, people triaging in Jira synced back to QALITA through signed
webhooks, Ctrl-C stops it all."""

import os
import re
import signal
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess, clean_env, free_port

pytestmark = pytest.mark.integration


def processes_in(directory: Path) -> list[int]:
    """Processes running in ``directory`` or below it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def jira_table(output: str) -> dict[str, str]:
    """The printed Jira issues: each row by its QALITA id."""
    table = output.split("Jira now holds", 1)[1].split("every issue also carries", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:  # the heading line, then the column names
        match = re.match(r"\s+(\d+)\s+(\S+)\s", line)
        assert match, line
        rows[match[1]] = line
    return rows


def test_demo_runs_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path):
    env = clean_env()
    env["JIRA_SYNC_WEB_PORT"] = str(free_port())
    demo = ServiceProcess(["demo"], env, tmp_path / "demo.log", cwd=tmp_path)
    try:
        demo.wait_for(r"Press Ctrl-C to stop everything", timeout=180)
        for queue in ("qalita", "jira_inbound", "outbound", "maintenance"):
            assert f"probe task through jira_sync.{queue}" in demo.output
        assert f"sqlite:///{tmp_path}/var/jira-sync.db" in demo.output
        assert f"filesystem://localhost{tmp_path}/var/broker" in demo.output

        # The scenario went simulator -> broker -> worker -> Jira simulator, and all synced.
        assert "published: issue 101 created" in demo.output
        assert "not in step" not in demo.output, demo.output
        assert "the scenario stopped" not in demo.output, demo.output
        rows = jira_table(demo.output)
        assert sorted(rows) == [str(n) for n in range(101, 109)], demo.output
        assert all(re.search(r"\sDATA-\d+\s", row) for row in rows.values()), demo.output
        assert any(re.search(r"\sDone\s", row) for row in rows.values()), demo.output
        assert any(re.search(r"\signored\b", row) for row in rows.values()), demo.output

        # Then Jira -> webhook -> web -> broker -> worker -> QALITA, each change once.
        demo.wait_for(r"recognised as\s+echoes|has not reached QALITA", timeout=120)
        assert "has not reached QALITA" not in demo.output, demo.output
        for arrived in (r"Done → QALITA \d+: status resolved",
                        r"reassigned → QALITA \d+: owner ana@",
                        r"comment → QALITA \d+: comment ",
                        r"ignored label → QALITA \d+: status ignored"):
            assert re.search(arrived, demo.output), (arrived, demo.output)
        demo.signal(signal.SIGINT)
        assert demo.proc.wait(60) == 0, demo.output
        assert "stopped." in demo.output
        assert processes_in(tmp_path) == []
    finally:
        demo.kill()
