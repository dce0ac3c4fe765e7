"""Jira's rate limits used to the last point and never abused, measured two ways.

- ``sync``: the whole sync path. The Jira simulator limits each endpoint and method to 20
  requests/s (advertising it, then again hiding it); QALITA events for ``EDITS`` distinct,
  already linked issues arrive signed over HTTP at ``jira-sync web``, and ``jira-sync worker``
  edits each issue. Printed: the edit endpoint's throughput as a ratio to its limit (the
  baseline is the limit itself, enforced by the simulator in the same run) once the pace is
  found, and over the whole run; and the share of all calls answered 429.
- ``clients``: four processes driving ``JiraClient`` and the shared limiter directly, a
  thread each per endpoint (read an issue, edit it, read the account), against a site that
  allows 100 requests/s over all of them (Data Center's token bucket per user, advertised).
  Printed: the throughput as a ratio to 100, beside the same four processes against the same
  simulator without a limit (the ceiling of this machine in this run, which must be well
  above the limit for the ratio to mean anything).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bench.resources import free_port, postgres_database, redis_database
from jira_sync.store.db import Database
from jira_sync.store.models import IssueLink

EDITS = int(os.environ.get("BENCH_RATE_EDITS", "1500"))
# The pace a hidden limit needs to be found (from 10/s, +20 % a second, to 20/s): the
# throughput the target applies to is measured after it; the whole run's is printed beside.
WARM_UP_SECONDS = 10.0
SYNC_LIMIT = 20.0
CLIENT_LIMIT = 100.0
CLIENT_SECONDS = float(os.environ.get("BENCH_RATE_CLIENT_SECONDS", "20"))
TARGETS = {"ratio": 0.95, "share_429": 0.01}
EVENTS_SECRET = "bench-events-secret"
AUTH = ("svc@example.com", "tok-123")


def _simulator(*flags: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "jira_sync", "simulate", "jira",
                                "--port", str(port), "--index-lag-ms", "0", *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    _wait_http(f"{base}/_sim/issues")
    return process, base


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _event(issue_id: int, version: int) -> dict[str, Any]:
    return {"schema": "qalita.issue.v1", "event_id": str(uuid.uuid4()),
            "event_type": "issue.created" if version == 1 else "issue.updated",
            "occurred_at": "2026-12-07T10:15:30Z", "tenant": "default",
            "issue": {"id": issue_id, "version": version, "title": f"Issue {issue_id} v{version}",
                      "status": "open", "severity": "high", "dataset": "orders",
                      "rule": "freshness", "domain": "billing",
                      "evidence": {"summary": f"check {version}"}}}


def _send_events(web: str, events: list[dict[str, Any]]) -> None:
    with requests.Session() as session:
        for event in events:
            body = json.dumps(event).encode()
            signature = hmac.new(EVENTS_SECRET.encode(), body, hashlib.sha256).hexdigest()
            answer = session.post(f"{web}/api/v2/integrations/qalita/events", data=body,
                                  headers={"Content-Type": "application/json",
                                           "X-Qalita-Signature": f"sha256={signature}"},
                                  timeout=30)
            answer.raise_for_status()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f}s")
        time.sleep(0.5)


def _call_count(base: str) -> int:
    return requests.get(f"{base}/_sim/calls/count", timeout=10).json()["count"]


def _seconds(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["time"]).timestamp()


def sync(hidden: bool) -> dict[str, float]:
    """Edits of distinct issues through web, worker and simulator under 20 requests/s."""
    jira, base = _simulator("--rate-limit", f"{SYNC_LIMIT:g}",
                            *(["--hide-rate-limit"] if hidden else []))
    processes: list[subprocess.Popen] = []
    try:
        with postgres_database() as database_url, redis_database() as broker_url:
            web_port = free_port()
            env = {**os.environ, "JIRA_SYNC_DATABASE_URL": database_url,
                   "JIRA_SYNC_BROKER_URL": broker_url,
                   "JIRA_SYNC_SECRET_KEY": Fernet.generate_key().decode(),
                   "JIRA_SYNC_LOG_LEVEL": "WARNING", "JIRA_BASE_URL": base,
                   "JIRA_EMAIL": "svc@example.com", "JIRA_API_TOKEN": "tok-123",
                   "JIRA_PROJECT_KEY": "DATA", "JIRA_ISSUE_TYPE": "Bug",
                   "QALITA_EVENTS_SECRET": EVENTS_SECRET, "JIRA_SYNC_WEB_PORT": str(web_port),
                   "JIRA_SYNC_WORKER_METRICS_PORT": "0", "JIRA_SYNC_DEBOUNCE_SECONDS": "0.3"}
            for command in (["web"], ["worker", "--concurrency", "4"]):
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "jira_sync", *command], env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True))
            web = f"http://127.0.0.1:{web_port}"
            _wait_http(f"{web}/healthz")
            database = Database(database_url)

            def linked(version: int) -> bool:
                with database.unit_of_work() as session:
                    return session.scalar(select(func.count()).select_from(IssueLink).where(
                        IssueLink.applied_version >= version, IssueLink.due_at.is_(None),
                        IssueLink.jira_issue_id.is_not(None))) == EDITS

            _send_events(web, [_event(n, 1) for n in range(1, EDITS + 1)])
            _wait(lambda: linked(1), 600, "creating the issues")
            time.sleep(2)  # the create phase's buckets settle
            before = _call_count(base)
            _send_events(web, [_event(n, 2) for n in range(1, EDITS + 1)])
            _wait(lambda: linked(2), 900, "editing the issues")
            database.dispose()
            calls = requests.get(f"{base}/_sim/calls", timeout=60).json()[before:]
    finally:
        for process in processes:
            _stop(process)
        _stop(jira)
    edits = [c for c in calls if c["method"] == "PUT" and c["path"].startswith(
        "/rest/api/3/issue/") and c["path"].count("/") == 5 and c["status"] == 204]
    start, end = _seconds(edits[0]), _seconds(edits[-1])
    steady = [c for c in edits if _seconds(c) >= start + WARM_UP_SECONDS]
    limited = sum(1 for c in calls if c["status"] == 429)
    overall = (len(edits) - 1) / (end - start)
    after = (len(steady) - 1) / (end - _seconds(steady[0]))
    return {"per_s": after, "ratio": after / SYNC_LIMIT, "overall_ratio": overall / SYNC_LIMIT,
            "share_429": limited / len(calls), "calls": len(calls), "edits": len(edits),
            "limited": limited}


CLIENT = textwrap.dedent("""
    import json, sys, threading, time, redis
    from collections import Counter
    from jira_sync.jira.auth import BasicAuth
    from jira_sync.jira.client import JiraClient, JiraSite
    from jira_sync.jira.limiter import RateLimiter, RedisStore
    from jira_sync.remote import RetryPolicy
    base, broker, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    keys = sys.argv[5:]
    limiter = RateLimiter(RedisStore(redis.Redis.from_url(broker))) if rate else None
    done, end = Counter(), time.monotonic() + seconds

    def drive(name, call):
        # A thread per endpoint, each with a client of its own (as a worker's pool has).
        client = JiraClient(JiraSite(base, "server"), BasicAuth("svc@example.com", "tok-123"),
                            limiter=limiter, rate_limit=rate or None,
                            policy=RetryPolicy(max_tries=10))
        n = 0
        while time.monotonic() < end:
            call(client, keys[n % len(keys)], n)
            done[name] += 1
            n += 1

    calls = {"read": lambda c, key, n: c.get_issue(key),
             "edit": lambda c, key, n: c.edit_issue(key, fields={"summary": f"s{n}"}),
             "myself": lambda c, key, n: c.myself()}
    threads = [threading.Thread(target=drive, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(done))
""")


def clients(limit: float | None) -> dict[str, float]:
    """Four processes of ``JiraClient`` and the limiter over three endpoints of one site."""
    jira, base = _simulator("--deployment", "server",
                            *(["--rate-limit", f"{limit:g}"] if limit else []))
    try:
        keys = [requests.post(f"{base}/rest/api/2/issue", auth=AUTH, timeout=10, json={
            "fields": {"project": {"key": "DATA"}, "issuetype": {"name": "Bug"},
                       "summary": f"bench {n}"}}).json()["key"] for n in range(40)]
        with redis_database() as broker_url:
            time.sleep(1.5)  # the buckets refill after the set-up
            before = _call_count(base)
            workers = [subprocess.Popen([sys.executable, "-c", CLIENT, base, broker_url,
                                         f"{10 if limit else 0}", str(CLIENT_SECONDS),
                                         *keys[n::4]],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for n in range(4)]
            outputs = [w.communicate(timeout=CLIENT_SECONDS + 120) for w in workers]
            for worker, (_, err) in zip(workers, outputs, strict=True):
                if worker.returncode:
                    raise RuntimeError(f"a bench client failed: {err[-2000:]}")
            calls = requests.get(f"{base}/_sim/calls", timeout=60).json()[before:]
    finally:
        _stop(jira)
    ok = [c for c in calls if c["status"] in (200, 204)]
    span = _seconds(calls[-1]) - _seconds(calls[0])
    per_endpoint = Counter((c["method"], c["path"].endswith("/myself")) for c in ok)
    return {"per_s": len(ok) / span, "ratio": len(ok) / span / limit if limit else 0.0,
            "slowest_share": min(per_endpoint.values()) / len(ok),
            "share_429": sum(1 for c in calls if c["status"] == 429) / len(calls)}


def report_sync(result: dict[str, float], hidden: bool) -> bool:
    ok = result["ratio"] >= TARGETS["ratio"] and result["share_429"] <= TARGETS["share_429"]
    print(f"rate limits, sync path, {EDITS} edits under {SYNC_LIMIT:g}/s per endpoint "
          f"({'hidden' if hidden else 'advertised'}): {result['per_s']:.2f} edits/s after "
          f"{WARM_UP_SECONDS:.0f}s = {result['ratio']:.3f}x the limit (target >= "
          f"{TARGETS['ratio']}; {result['overall_ratio']:.3f}x over the whole run); "
          f"{result['limited']} of {result['calls']} calls answered 429 = "
          f"{100 * result['share_429']:.2f} % (target <= {100 * TARGETS['share_429']:.0f} %) "
          f"{'ok' if ok else 'BELOW TARGET'}")
    return ok


def report_clients(limited: dict[str, float], unlimited: dict[str, float]) -> bool:
    ok = limited["ratio"] >= TARGETS["ratio"] and limited["share_429"] <= TARGETS["share_429"]
    print(f"rate limits, 4 client processes over 3 endpoints under {CLIENT_LIMIT:g}/s in all: "
          f"{limited['per_s']:.1f}/s = {limited['ratio']:.3f}x the limit (target >= "
          f"{TARGETS['ratio']}), the least used endpoint "
          f"{100 * limited['slowest_share']:.0f} % of calls, 429s "
          f"{100 * limited['share_429']:.2f} %; without a limit the same clients reach "
          f"{unlimited['per_s']:.0f}/s {'ok' if ok else 'BELOW TARGET'}")
    return ok


def run() -> bool:
    results = [report_sync(sync(hidden), hidden) for hidden in (False, True)]
    results.append(report_clients(clients(CLIENT_LIMIT), clients(None)))
    return all(results)


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
