"""Driving the sync in-process against a simulator over HTTP: events in, Jira issues out.

The harness runs the real intake and flush code on a real database, with the debounce at
zero and flushes run in time order (sleeping for parked ones), so a test sees exactly what a
worker would do, without a broker in between. Process-level behaviour (Celery, kills,
concurrency) is tested separately with real worker processes.
"""

from __future__ import annotations

import heapq
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.fernet import Fernet

from config.settings import JiraBootstrap, SyncTimings
from jira_sync import intake
from jira_sync.crypto import SecretBox
from jira_sync.integrations import upsert_from_env
from jira_sync.store.db import Database
from jira_sync.store.types import utcnow
from jira_sync.sync.context import SyncContext
from jira_sync.sync.outbound import flush_link
from jira_sync.sync.state import Due

FAST_TIMINGS = SyncTimings(sweep_seconds=1.0, lease_seconds=5.0, index_lag_seconds=1.5,
                           backoff_base_seconds=0.05, backoff_cap_seconds=0.5,
                           max_retry_age_seconds=3600.0, jira_rate_limit=1000.0)


def qalita_event(issue_id: int, version: int = 1, event_type: str = "issue.created", *,
                 tenant: str = "default", comment: dict[str, Any] | None = None,
                 occurred_at: str | None = None, **issue: Any) -> dict[str, Any]:
    """A CONTRACT §4 event with realistic defaults; ``issue`` keys override the snapshot."""
    snapshot = {
        "id": issue_id, "version": version, "title": f"Orders table is stale ({issue_id})",
        "description": "The orders table was not loaded.", "status": "open",
        "severity": "high", "dataset": "orders", "rule": "freshness", "domain": "billing",
        "owner": {"email": "ana@example.com", "name": "Ana"},
        "evidence": {"summary": "last load 26 h ago", "observed": 26},
        "links": [{"title": "Run #812", "url": "https://qalita.example.com/runs/812"}],
        "url": f"https://qalita.example.com/issues/{issue_id}", **issue,
    }
    return {"schema": "qalita.issue.v1", "event_id": str(uuid.uuid4()),
            "event_type": event_type, "occurred_at": occurred_at or utcnow().isoformat(),
            "tenant": tenant, "origin": "qalita-rules", "issue": snapshot, "comment": comment}


def bootstrap(base_url: str, deployment: str, *, tenant: str = "default",
              project: str = "DATA", issue_type: str = "Bug") -> JiraBootstrap:
    secrets = {"api_token": "tok-123"} if deployment == "cloud" else {"pat": "pat-123"}
    return JiraBootstrap(
        tenant=tenant, base_url=base_url, deployment=deployment,
        auth="basic" if deployment == "cloud" else "pat", project_key=project,
        issue_type=issue_type, email="svc@example.com" if deployment == "cloud" else None,
        cloud_id=None, oauth_client_id=None, qalita_api_url=None, secrets=secrets)


def bootstrap_env(service_env: dict[str, str], base_url: str,
                  **settings: str) -> dict[str, str]:
    """A service process's environment bootstrapping the Cloud integration of the Jira
    simulator at ``base_url`` (project DATA, issue type Bug), with ``settings`` on top."""
    return {**service_env, "JIRA_BASE_URL": base_url, "JIRA_EMAIL": "svc@example.com",
            "JIRA_API_TOKEN": "tok-123", "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
            **settings}


@dataclass
class Harness:
    database: Database
    sim_url: str
    deployment: str
    timings: SyncTimings = FAST_TIMINGS
    mapping: dict[str, Any] | None = None
    ctx: SyncContext = field(init=False)
    queue: list[tuple[float, int, int]] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        box = SecretBox((Fernet.generate_key().decode(),))
        self.ctx = SyncContext(database=self.database, box=box, debounce_seconds=0.0,
                               timings=self.timings)
        with self.database.unit_of_work() as session:
            integration = upsert_from_env(session, bootstrap(self.sim_url, self.deployment),
                                          box)
            if self.mapping is not None:
                integration.options = {"mapping": self.mapping}

    def send(self, *events: dict[str, Any]) -> None:
        """Take ``events`` as one batch off the queue, as the worker's intake task does."""
        self.schedule(intake.receive_batch(self.ctx, events))

    def schedule(self, dues: list[Due]) -> None:
        for due in dues:
            self._seq += 1
            heapq.heappush(self.queue, (due.at.timestamp(), self._seq, due.link_id))

    def drain(self, timeout: float = 30.0) -> int:
        """Run every scheduled flush, and the ones they schedule, in time order."""
        deadline, runs = time.monotonic() + timeout, 0
        while self.queue:
            at, _, link_id = heapq.heappop(self.queue)
            wait = at - time.time()
            if time.monotonic() + max(wait, 0) > deadline:
                raise AssertionError(f"flushes still scheduled after {timeout}s")
            if wait > 0:
                time.sleep(wait)
            self.schedule(flush_link(self.ctx, link_id))
            runs += 1
        return runs

    def sync(self, *events: dict[str, Any]) -> None:
        self.send(*events)
        self.drain()

    # -- what Jira has ----------------------------------------------------------------

    def issues(self) -> list[dict[str, Any]]:
        return [i for i in requests.get(f"{self.sim_url}/_sim/issues", timeout=10).json()
                if not i["deleted"]]

    def issue_of(self, qalita_id: int, tenant: str = "default") -> dict[str, Any]:
        marker = f"qalita-id-{tenant}-{qalita_id}"
        found = [i for i in self.issues() if marker in i["labels"]]
        assert len(found) == 1, f"{len(found)} Jira issues carry {marker}"
        return found[0]

    def calls(self, **filters: Any) -> list[dict[str, Any]]:
        return requests.get(f"{self.sim_url}/_sim/calls", params=filters, timeout=10).json()
