"""The inbound half: receiving Jira's webhooks, then turning queued deliveries into QALITA writes.

Receiving. Signed 3 KB ``jira:issue_updated`` deliveries, each with a new identifier, sent by
``bench/load.py`` from its own process to ``jira-sync web`` (verify the signature, store the
delivery, enqueue its id) and to a bare Flask view that only parses the JSON
(``bench/bare_web.py``, the same gunicorn settings), both running in the same run:
requests/s over 32 keep-alive connections in alternating rounds (the median ratio counts),
and latency at a steady 200 requests/s.

Draining. 1,000 linked issues (made by the outbound sync, untimed), the worker stopped, then a
person moves each to In Progress in the Jira simulator: 1,000 signed deliveries received by
``jira-sync web`` and queued. A ``jira-sync worker`` then runs until QALITA (its simulator, in
its own process, emitting its events for those writes as QALITA does) has received 1,000
writes. Baseline: the same worker concurrency draining 1,000 Celery no-op tasks. Both are timed
from the first message done to the last.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

import redis
import requests
from celery import Celery
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

from bench.load import delivery
from bench.resources import free_port, postgres_database, redis_database, timed
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent, IssueLink

SECRET = "bench-webhook-secret"
CONCURRENCY = os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "2")
SECONDS = float(os.environ.get("BENCH_WEBHOOK_SECONDS", "10"))
DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "1000"))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "3"))
TARGETS = {"throughput_ratio": 0.5, "p99_ms": 50.0, "drain_ratio": 3.0}
WEBHOOK_PATH = "/api/v2/integrations/jira/webhook"


def _environment(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "BENCH_BROKER_URL": broker_url,
            "JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
            "JIRA_SYNC_SECRET_KEY": Fernet.generate_key().decode(),
            "JIRA_SYNC_LOG_LEVEL": "WARNING", "JIRA_BASE_URL": "https://acme.atlassian.net",
            "JIRA_EMAIL": "svc@example.com", "JIRA_API_TOKEN": "tok-123",
            "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
            "JIRA_WEBHOOK_SECRET": SECRET, **extra}


@contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(60)


def _until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark set-up: {what} not reached in {timeout:.0f}s")
        time.sleep(0.1)


def _accepts(url: str) -> bool:
    """Whether the endpoint takes a signed delivery (the web's integration is bootstrapped
    in the background after it starts)."""
    body, headers = delivery(0, SECRET)
    try:
        return requests.post(url, data=body, headers=headers, timeout=5).status_code < 300
    except requests.ConnectionError:
        return False


def _load(url: str, shape: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.load", url, "--secret", SECRET, "--shape", shape,
         "--seconds", str(SECONDS)], check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def receiving() -> dict[str, Any]:
    """Both servers up side by side; the closed-loop loads alternate between them, round by
    round, so a slow spell of the shared machine lands on both rather than on one."""
    results: dict[str, Any] = {"bare": {"closed": []}, "web": {"closed": []}}
    with postgres_database() as database_url, redis_database() as broker_url, ExitStack() as up:
        urls = {}
        for name, command in (("bare", [sys.executable, "-m", "bench.bare_web"]),
                              ("web", [sys.executable, "-m", "jira_sync", "web"])):
            port = free_port()
            up.enter_context(_process(command, _environment(database_url, broker_url,
                                                            JIRA_SYNC_WEB_PORT=str(port))))
            urls[name] = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        for name, url in urls.items():
            _until(partial(_accepts, url), f"{name} accepting deliveries", 60)
        for _ in range(ROUNDS):
            for name, url in urls.items():
                results[name]["closed"].append(_load(url, "closed"))
        for name, url in urls.items():
            results[name]["open"] = _load(url, "open")
    return results


def draining() -> dict[str, float]:
    with postgres_database() as database_url, redis_database() as broker_url:
        web_port, jira_port, qalita_port = free_port(), free_port(), free_port()
        jira_url, qalita_url = f"http://127.0.0.1:{jira_port}", f"http://127.0.0.1:{qalita_port}"
        env = _environment(database_url, broker_url, JIRA_BASE_URL=jira_url,
                           JIRA_SYNC_WEB_PORT=str(web_port), QALITA_API_URL=qalita_url,
                           QALITA_API_TOKEN="qalita-tok", JIRA_SYNC_JIRA_RATE_LIMIT="10000",
                           JIRA_SYNC_INDEX_LAG_SECONDS="0")
        web = [sys.executable, "-m", "jira_sync"]
        worker = [*web, "worker", "--concurrency", CONCURRENCY]
        database = Database(database_url)

        def count(*where: Any) -> int:
            with database.unit_of_work() as session:
                return session.scalar(select(func.count()).select_from(InboxEvent)
                                      .where(InboxEvent.source == "jira", *where)) or 0

        def linked() -> bool:
            with database.unit_of_work() as session:
                behind = session.scalar(select(func.count()).select_from(IssueLink).where(
                    IssueLink.jira_issue_id.is_(None) | IssueLink.due_at.is_not(None)
                    | IssueLink.inbound_due_at.is_not(None)))
                total = session.scalar(select(func.count()).select_from(IssueLink))
            return total == DELIVERIES and behind == 0 and count(
                InboxEvent.state == "received") == 0

        def qalita_writes() -> int:
            return requests.get(f"{qalita_url}/_sim/calls/count", timeout=30, params={
                "method": "PUT", "path": "/api/v2/issues/*"}).json()["count"]

        with _process([*web, "simulate", "jira", "--port", str(jira_port), "--index-lag-ms",
                       "0", "--webhook-url", f"http://127.0.0.1:{web_port}{WEBHOOK_PATH}",
                       "--webhook-secret", SECRET], env), \
                _process([*web, "simulate", "qalita", "--port", str(qalita_port),
                          "--broker-url", broker_url], env), \
                _process([*web, "web"], env):
            _until(lambda: _accepts(f"http://127.0.0.1:{web_port}{WEBHOOK_PATH}"),
                   "web accepting deliveries", 60)
            for n in range(DELIVERIES):
                requests.post(f"{qalita_url}/_sim/issues", timeout=30, json={
                    "title": f"Orders table is stale ({n})", "dataset": "orders",
                    "rule": "freshness", "severity": "high", "domain": "billing",
                }).raise_for_status()
            with _process(worker, env):
                _until(linked, f"{DELIVERIES} issues linked in Jira", 600)
            keys = [issue["key"] for issue in
                    requests.get(f"{jira_url}/_sim/issues", timeout=60).json()]
            before, written = count(), qalita_writes()
            session = requests.Session()
            for key in keys:
                session.post(f"{jira_url}/_sim/issues/{key}/transition", timeout=30, json={
                    "as": "ana@example.com", "transition": "Start Progress",
                }).raise_for_status()
            _until(lambda: count() == before + DELIVERIES, f"{DELIVERIES} deliveries queued")
            commits = _commits(database)
            subject = timed(worker, env,
                            lambda: qalita_writes() >= written + DELIVERIES,
                            lambda: count(InboxEvent.state == "received") < DELIVERIES)
            commits = _commits(database) - commits
            statuses = {issue["status"] for issue in
                        requests.get(f"{qalita_url}/_sim/issues", timeout=60).json()}
            if statuses != {"active"}:
                raise RuntimeError(f"QALITA's issues ended {statuses}, not all active")
        database.dispose()

        producer = Celery(broker=broker_url, set_as_current=False)
        counter = redis.Redis.from_url(broker_url)
        with producer.producer_or_acquire() as pool_producer:
            for n in range(DELIVERIES):
                producer.send_task("bench.count", args=(n,), queue="bench",
                                   producer=pool_producer)
        baseline = timed(
            [sys.executable, "-m", "celery", "-A", "bench.baseline_app", "worker", "-c",
             CONCURRENCY, "-Q", "bench", "--events", "--loglevel", "WARNING"], env,
            lambda: int(counter.get("bench:count") or 0) >= DELIVERIES,
            lambda: int(counter.get("bench:count") or 0) > 0)
        producer.close()
    return {"subject_s": subject, "baseline_s": baseline, "ratio": subject / baseline,
            "commits_per_delivery": commits / DELIVERIES}


def _commits(database: Database) -> int:
    """Transactions committed in the benchmark's database so far (Postgres' own count)."""
    with database.unit_of_work() as session:
        return session.scalar(text("SELECT xact_commit FROM pg_stat_database "
                                   "WHERE datname = current_database()")) or 0


def report(received: dict[str, Any], drained: dict[str, float]) -> bool:
    bare, web = received["bare"], received["web"]
    rounds = [(b["requests_per_s"], w["requests_per_s"])
              for b, w in zip(bare["closed"], web["closed"], strict=True)]
    ratios = sorted(w / b for b, w in rounds)
    throughput = statistics.median(ratios)
    checks = {"throughput": throughput >= TARGETS["throughput_ratio"],
              "p99": web["open"]["p99_ms"] <= TARGETS["p99_ms"],
              "drain": drained["ratio"] <= TARGETS["drain_ratio"]}
    verdict = {True: "ok", False: "BELOW TARGET"}
    answers: dict[str, int] = {}
    for load in web["closed"]:
        for status, count in load["statuses"].items():
            answers[status] = answers.get(status, 0) + count
    print(f"jira webhooks, signed 3 KB deliveries over 32 connections, median of {len(rounds)} "
          f"alternating rounds: {throughput:.2f}x bare Flask "
          f"(target >= {TARGETS['throughput_ratio']}x) {verdict[checks['throughput']]}; "
          "rounds " + ", ".join(f"{w:.0f}/s vs {b:.0f}/s" for b, w in rounds)
          + f"; answers {answers}")
    print(f"jira webhooks at a steady 200/s: p99 {web['open']['p99_ms']:.1f} ms "
          f"(p50 {web['open']['p50_ms']:.1f}, max {web['open']['max_ms']:.0f}) vs bare Flask "
          f"p99 {bare['open']['p99_ms']:.1f} ms (p50 {bare['open']['p50_ms']:.1f}) "
          f"(target <= {TARGETS['p99_ms']:.0f} ms) {verdict[checks['p99']]}")
    print(f"inbound drain, {DELIVERIES} queued deliveries to QALITA writes: "
          f"{drained['subject_s']:.1f}s vs no-op drain {drained['baseline_s']:.1f}s = "
          f"{drained['ratio']:.2f}x (target <= {TARGETS['drain_ratio']:.0f}x) "
          f"{verdict[checks['drain']]}; {drained['commits_per_delivery']:.1f} database "
          f"transactions per delivery")
    return all(checks.values())


if __name__ == "__main__":
    sys.exit(0 if report(receiving(), draining()) else 1)
