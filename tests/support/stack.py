"""The whole service as real processes (web, workers, beat) between the two simulators.

The simulators run in threads of the test (their ``/_sim/`` APIs drive people's changes);
Jira delivers signed webhooks to the real ``jira-sync web`` (gunicorn), QALITA publishes its
events to the real broker, and real ``jira-sync worker`` and ``beat`` processes do the rest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from tests.support.people import People
from tests.support.processes import ServiceProcess, free_port
from tests.support.two_way import QALITA_TOKEN, SECRET

FAST = {"JIRA_SYNC_DEBOUNCE_SECONDS": "0.3", "JIRA_SYNC_SWEEP_SECONDS": "1",
        "JIRA_SYNC_LEASE_SECONDS": "4", "JIRA_SYNC_INDEX_LAG_SECONDS": "1",
        "JIRA_SYNC_BACKOFF_BASE_SECONDS": "0.2", "JIRA_SYNC_BACKOFF_CAP_SECONDS": "2",
        "JIRA_SYNC_JIRA_RATE_LIMIT": "500", "JIRA_SYNC_HEARTBEAT_SECONDS": "3600",
        "JIRA_SYNC_RECONCILE_SECONDS": "3600"}


class Stack(People):
    def __init__(self, service_env: dict[str, str], jira: Any, qalita: Any, tmp_path: Path,
                 **env: str) -> None:
        self.jira, self.qalita, self.tmp_path = jira, qalita, tmp_path
        self.web_port = free_port()
        self.env = {**service_env, **FAST,
                    "JIRA_BASE_URL": jira.base_url, "JIRA_DEPLOYMENT": jira.config.deployment,
                    "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
                    "JIRA_WEBHOOK_SECRET": SECRET, "QALITA_API_URL": qalita.base_url,
                    "QALITA_API_TOKEN": QALITA_TOKEN, "JIRA_SYNC_WEB_PORT": str(self.web_port),
                    **({"JIRA_EMAIL": "svc@example.com", "JIRA_API_TOKEN": "tok-123"}
                       if jira.config.deployment == "cloud" else {"JIRA_PAT": "pat-123"}),
                    **env}
        self.processes: list[ServiceProcess] = []
        self.webhook_url = f"http://127.0.0.1:{self.web_port}/api/v2/integrations/jira/webhook"

    def start(self, kind: str, name: str = "1", *, ready: str | None = None,
              **env: str) -> ServiceProcess:
        """Start a process and wait until it is ready: a web answers on its port, a worker
        logs ``ready.``, a beat the ``ready`` pattern (by default, that it holds the lock)."""
        args = [kind] + (["--hostname", f"{name}@%h"] if kind == "worker" else [])
        process = ServiceProcess(args, {**self.env, **env},
                                 self.tmp_path / f"{kind}-{name}-{len(self.processes)}.log")
        self.processes.append(process)
        if kind == "web":
            port = env.get("JIRA_SYNC_WEB_PORT", self.web_port)
            process.wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        else:
            process.wait_for(ready or (r"ready\." if kind == "worker"
                                       else r"beat: lock acquired"), 60)
        return process

    def up(self, *, beat: bool = True, workers: int = 1) -> None:
        self.start("web")
        for n in range(workers):
            self.start("worker", str(n))
        if beat:
            self.start("beat")
        self.configure_jira(webhook_url=self.webhook_url, webhook_secret=SECRET)

    def close(self) -> None:
        for process in self.processes:
            process.kill()

    # -- the two sides ---------------------------------------------------------------------

    def qalita_calls(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.qalita.base_url}/_sim/calls", timeout=10).json()

    def jira_issues(self) -> list[dict[str, Any]]:
        return [i for i in requests.get(f"{self.jira.base_url}/_sim/issues", timeout=10).json()
                if not i["deleted"]]

    def jira_issue_of(self, qalita_id: int) -> dict[str, Any] | None:
        marker = f"qalita-id-default-{qalita_id}"
        found = [i for i in self.jira_issues() if marker in i["labels"]]
        return found[0] if len(found) == 1 else None

    def jira_calls(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.jira.base_url}/_sim/calls", timeout=10).json()


def eventually(check: Any, timeout: float = 60, interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns a true value; fail with its last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not reached in {timeout}s; last: {last!r}")
