"""The outbound sync end to end: QALITA events in, Jira issues out, against bare Celery.

Subject: 2,000 ``issue.created`` events for distinct issues, then 5 rounds of one update to
every issue (12,000 events), published on ``jira_sync.qalita`` and drained by
``jira-sync worker`` against the Jira simulator (a separate process, no added latency) until
every link holds the last version. Printed: events/s end to end, Jira create calls per
created issue, and all Jira calls per issue. Baseline: the same worker concurrency draining
12,000 Celery no-op tasks (bench/baseline_app.py). Times run from the first event processed
to the last state written, so process start-up is not part of either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

import redis
import requests
from celery import Celery
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bench.resources import free_port, postgres_database, redis_database, timed
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent, IssueLink

ISSUES = int(os.environ.get("BENCH_OUTBOUND_ISSUES", "2000"))
ROUNDS = 5
CONCURRENCY = os.environ.get("BENCH_OUTBOUND_CONCURRENCY", "2")
DEBOUNCE_SECONDS = os.environ.get("BENCH_OUTBOUND_DEBOUNCE", "2")
TARGETS = {"creates_per_issue": 0.2, "calls_per_issue": 2.0, "time_ratio": 3.0}


def _event(issue_id: int, version: int) -> dict[str, Any]:
    return {"schema": "qalita.issue.v1", "event_id": str(uuid.uuid4()),
            "event_type": "issue.created" if version == 1 else "issue.updated",
            "occurred_at": "2026-11-28T10:15:30Z", "tenant": "default",
            "issue": {"id": issue_id, "version": version, "title": f"Issue {issue_id}",
                      "status": "open", "severity": "high", "dataset": "orders",
                      "rule": "freshness", "domain": "billing",
                      "evidence": {"summary": f"check {version}", "observed": version}}}


def run() -> dict[str, float]:
    events = [_event(n, 1) for n in range(1, ISSUES + 1)]
    events += [_event(n, v) for v in range(2, ROUNDS + 2) for n in range(1, ISSUES + 1)]
    port = free_port()
    jira = subprocess.Popen([sys.executable, "-m", "jira_sync", "simulate", "jira",
                             "--port", str(port), "--index-lag-ms", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sim = f"http://127.0.0.1:{port}"
    try:
        with postgres_database() as database_url, redis_database() as broker_url:
            for _ in range(100):
                try:
                    requests.get(f"{sim}/_sim/issues", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            env = {**os.environ, "BENCH_BROKER_URL": broker_url,
                   "JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
                   "JIRA_SYNC_SECRET_KEY": Fernet.generate_key().decode(),
                   "JIRA_SYNC_LOG_LEVEL": "WARNING", "JIRA_BASE_URL": sim,
                   "JIRA_EMAIL": "svc@example.com", "JIRA_API_TOKEN": "tok-123",
                   "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
                   "JIRA_SYNC_DEBOUNCE_SECONDS": DEBOUNCE_SECONDS,
                   "JIRA_SYNC_JIRA_RATE_LIMIT": "10000"}
            producer = Celery(broker=broker_url, set_as_current=False)
            counter = redis.Redis.from_url(broker_url)

            def publish(name: str, queue: str) -> None:
                with producer.producer_or_acquire() as pool_producer:
                    for event in events:
                        producer.send_task(name, args=(event,), queue=queue,
                                           producer=pool_producer)

            publish("bench.count", "bench")
            baseline = timed(
                [sys.executable, "-m", "celery", "-A", "bench.baseline_app", "worker",
                 "-c", CONCURRENCY, "-Q", "bench", "--events", "--loglevel", "WARNING"],
                env, lambda: int(counter.get("bench:count") or 0) >= len(events),
                lambda: int(counter.get("bench:count") or 0) > 0)

            database = Database(database_url)

            def received() -> bool:
                with database.unit_of_work() as session:
                    return bool(session.scalar(select(func.count()).select_from(InboxEvent)))

            def in_step() -> bool:
                with database.unit_of_work() as session:
                    behind = session.scalar(select(func.count()).select_from(IssueLink).where(
                        (IssueLink.applied_version < ROUNDS + 1) | IssueLink.due_at.is_not(None)
                        | IssueLink.jira_issue_id.is_(None)))
                    total = session.scalar(select(func.count()).select_from(IssueLink))
                return total == ISSUES and behind == 0

            publish("jira_sync.qalita_event", "jira_sync.qalita")
            subject = timed([sys.executable, "-m", "jira_sync", "worker", "--concurrency",
                              CONCURRENCY], env, in_step, received)
            database.dispose()
            producer.close()
            calls = requests.get(f"{sim}/_sim/calls", timeout=60).json()
    finally:
        jira.terminate()
        jira.wait(30)
    creates = sum(1 for c in calls if c["method"] == "POST"
                  and c["path"] in ("/rest/api/3/issue", "/rest/api/3/issue/bulk"))
    return {"events_per_s": len(events) / subject, "baseline_per_s": len(events) / baseline,
            "time_ratio": subject / baseline, "creates_per_issue": creates / ISSUES,
            "calls_per_issue": len(calls) / ISSUES, "subject_s": subject,
            "baseline_s": baseline}


def report(result: dict[str, float]) -> bool:
    ok = (result["creates_per_issue"] <= TARGETS["creates_per_issue"]
          and result["calls_per_issue"] <= TARGETS["calls_per_issue"]
          and result["time_ratio"] <= TARGETS["time_ratio"])
    print(f"outbound sync, {ISSUES} issues x {ROUNDS + 1} versions: "
          f"{result['events_per_s']:.0f} events/s end to end in {result['subject_s']:.1f}s; "
          f"baseline no-op drain {result['baseline_per_s']:.0f}/s in "
          f"{result['baseline_s']:.1f}s; time = {result['time_ratio']:.2f}x baseline "
          f"(target <= {TARGETS['time_ratio']:.0f}x); Jira creates per issue "
          f"{result['creates_per_issue']:.3f} (target <= {TARGETS['creates_per_issue']}); "
          f"Jira calls per issue {result['calls_per_issue']:.2f} "
          f"(target <= {TARGETS['calls_per_issue']:.0f}) {'ok' if ok else 'BELOW TARGET'}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if report(run()) else 1)
