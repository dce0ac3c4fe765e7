"""HTTP load from its own process: signed 3 KB ``jira:issue_updated`` deliveries over keep-alive
connections, in one of two shapes.

- ``closed``: N connections, each sending its next request as soon as the last is answered
  (how many requests/s the server sustains).
- ``open``: requests started on a fixed schedule whatever the server does, each timed from its
  scheduled start, so a slow answer delays nothing and hides nothing (latency at a rate).

A minimal HTTP/1.1 client on asyncio streams: a requests- or thread-based client would spend
more CPU than the server it measures on a 2-core machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid
from urllib.parse import urlsplit

BODY_BYTES = 3 * 1024
SITE = "https://acme.atlassian.net"


def delivery(n: int, secret: str) -> tuple[bytes, dict[str, str]]:
    """A Cloud ``jira:issue_updated`` (status To Do -> In Progress) of about 3 KB, signed."""
    issue_id = str(10000 + n % 1000)
    user = {"self": f"{SITE}/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5",
            "accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ana Lopez",
            "active": True, "timeZone": "Europe/Paris", "accountType": "atlassian"}
    body = {
        "timestamp": 1764930000000 + n, "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic", "user": user,
        "issue": {"id": issue_id, "self": f"{SITE}/rest/api/3/issue/{issue_id}",
                  "key": f"DATA-{issue_id}", "fields": {
                      "summary": f"[high] orders: freshness check failed ({n})",
                      "status": {"self": f"{SITE}/rest/api/3/status/3", "id": "3",
                                 "name": "In Progress", "statusCategory": {
                                     "self": f"{SITE}/rest/api/3/statuscategory/4", "id": 4,
                                     "key": "indeterminate", "colorName": "yellow",
                                     "name": "In Progress"}},
                      "project": {"self": f"{SITE}/rest/api/3/project/10000", "id": "10000",
                                  "key": "DATA", "name": "Data quality"},
                      "issuetype": {"self": f"{SITE}/rest/api/3/issuetype/10004", "id": "10004",
                                    "name": "Bug", "subtask": False},
                      "labels": ["qalita", "qalita-id-default-1"], "assignee": None,
                      "reporter": user, "updated": "2026-12-05T10:20:00.000+0000",
                      "description": None}},
        "changelog": {"id": str(200000 + n), "items": [
            {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10000",
             "fromString": "To Do", "to": "3", "toString": "In Progress"}]},
    }
    padding = BODY_BYTES - len(json.dumps(body, separators=(",", ":")))
    body["issue"]["fields"]["description"] = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "x" * max(padding - 90, 0)}]}]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature": f"sha256={signature}"}


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> int:
        """Send one request and read the whole answer; reconnect when the server closed."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            try:
                # A new identifier each time: every request is a new delivery to store.
                self.writer.write(head + f"X-Atlassian-Webhook-Identifier: {uuid.uuid4()}"
                                  f"\r\n\r\n".encode() + body)
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed")
                length, close = 0, False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                await self.reader.readexactly(length)
                if close:
                    self.close()
                return int(status_line.split()[1])
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _requests(url: str, count: int, secret: str) -> list[tuple[bytes, bytes]]:
    parts = urlsplit(url)
    prepared = []
    for n in range(count):
        body, headers = delivery(n, secret)
        lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        prepared.append((("\r\n".join(lines) + "\r\n").encode(), body))
    return prepared


async def closed(url: str, connections: int, seconds: float, warmup: float,
                 prepared: list[tuple[bytes, bytes]]) -> dict:
    parts = urlsplit(url)
    statuses: dict[int, int] = {}
    counted = 0
    next_request = 0
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def client() -> None:
        nonlocal counted, next_request
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        while (now := time.perf_counter()) < stop:
            head, body = prepared[next_request % len(prepared)]
            next_request += 1
            status = await connection.request(head, body)
            if time.perf_counter() >= measure_from and now >= measure_from:
                counted += 1
                statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return {"requests_per_s": counted / seconds, "requests": counted, "statuses": statuses}


async def open_loop(url: str, rate: float, seconds: float, warmup: float,
                    prepared: list[tuple[bytes, bytes]]) -> dict:
    parts = urlsplit(url)
    idle: list[Connection] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * (seconds + warmup))
    begin = time.perf_counter() + 0.1

    async def one(n: int, scheduled: float) -> None:
        connection = idle.pop() if idle else Connection(parts.hostname or "127.0.0.1",
                                                        parts.port or 80)
        head, body = prepared[n % len(prepared)]
        status = await connection.request(head, body)
        idle.append(connection)
        if scheduled >= begin + warmup:
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for n in range(total):
        scheduled = begin + n / rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(n, scheduled)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"p50_ms": percentile(0.50), "p99_ms": percentile(0.99),
            "max_ms": latencies[-1] * 1000, "requests": len(latencies), "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--shape", choices=("closed", "open"), required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    prepared = _requests(args.url, 1000, args.secret)
    if args.shape == "closed":
        result = asyncio.run(closed(args.url, args.connections, args.seconds, args.warmup,
                                    prepared))
    else:
        result = asyncio.run(open_loop(args.url, args.rate, args.seconds, args.warmup, prepared))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
