"""`make flower`'s command against a real worker: Flower starts with the installed versions
and lists the worker's tasks by their readable names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from celery import Celery

from jira_sync.store.types import utcnow
from tests.support.processes import ServiceProcess, free_port, wait_until

pytestmark = pytest.mark.integration
CELERY = Path(sys.executable).with_name("celery")


@pytest.fixture
def flower(service_env, tmp_path):
    port = free_port()
    log = (tmp_path / "flower.log").open("wb")
    # The Makefile's `flower` target, on a free port.
    process = subprocess.Popen(
        [str(CELERY), "-A", "worker.celery_app:app", "flower", "--address=127.0.0.1",
         f"--port={port}"], env={**service_env, "FLOWER_UNAUTHENTICATED_API": "1"},
        cwd=Path(__file__).resolve().parents[2], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_flower_lists_the_workers_tasks_by_name(service_env, tmp_path, flower):
    url, process = flower

    def answering():
        assert process.poll() is None, "flower exited"
        try:
            return requests.get(f"{url}/api/workers", timeout=2).ok
        except requests.ConnectionError:
            return False

    wait_until(answering, timeout=30)  # listening to task events before the worker starts
    worker = ServiceProcess(["worker"], service_env,
                            tmp_path / "worker.log")
    producer = Celery(broker=service_env["JIRA_SYNC_BROKER_URL"], set_as_current=False)
    try:
        worker.wait_for(r"ready\.", 60)
        producer.send_task("jira_sync.ping", args=("jira_sync.maintenance",
                                                   utcnow().isoformat()),
                           queue="jira_sync.maintenance")

        def seen() -> set[str]:
            tasks = requests.get(f"{url}/api/tasks", timeout=5).json()
            return {task["name"] for task in tasks.values() if task.get("state") == "SUCCESS"}

        # Besides the ping: the sweeps every worker sends itself at start.
        assert wait_until(lambda: {"jira_sync.ping", "jira_sync.sweep"} <= seen(), timeout=30)
        assert worker.stop() == 0
    finally:
        producer.close()
        worker.kill()
