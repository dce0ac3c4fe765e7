"""Webhook delivery the way Jira Cloud does it: from a background sender, at least once.

A delivery keeps one ``X-Atlassian-Webhook-Identifier`` across its retries; it is retried on
408/409/425/429/5xx, connection errors and timeouts, up to 5 times, and dropped after that.
``shuffle`` and ``duplicate`` orders reproduce what receivers must survive in production:
no ordering guarantee, and the same delivery arriving twice. Deliveries can also be lost on
purpose (never sent at all), the loss only a reconciliation sweep repairs.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from jira_sync.simulators.jira.config import SimulatorConfig

MAX_RETRIES = 5
RETRIED_STATUSES = frozenset({408, 409, 425, 429})


@dataclass
class Delivery:
    identifier: str
    event: str
    payload: dict
    body: bytes
    copy: int = 1  # 2 for the redelivered copy in "duplicate" order
    generation: int = 0  # deliveries of an earlier generation were discarded by a reset
    flow: str = "Primary"  # "Secondary": a consequence of another change (X-Atlassian-Webhook-Flow)
    state: str = "pending"  # pending | delivered | failed | dropped
    attempts: list[dict] = field(default_factory=list)

    def summary(self, *, with_payload: bool) -> dict:
        out = {
            "id": self.identifier, "event": self.event,
            "issue_event_type_name": self.payload.get("issue_event_type_name"),
            "issue_key": (self.payload.get("issue") or {}).get("key"), "copy": self.copy,
            "flow": self.flow, "state": self.state,
            "status": self.attempts[-1]["status"] if self.attempts else None,
            "attempt_count": len(self.attempts), "attempts": list(self.attempts),
        }
        if with_payload:
            out["payload"] = self.payload
        return out


class WebhookDispatcher:
    """Queues deliveries and sends them from one background thread (never inside a request)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(f"{config.seed}:webhooks")
        self._drop_rng = random.Random(f"{config.seed}:drops")
        self._drop_next = 0
        self._cond = threading.Condition()
        self._new: list[Delivery] = []
        self._first_new_at = 0.0
        self._retries: list[tuple[float, int, Delivery]] = []
        self._sequence = itertools.count()
        self._all: list[Delivery] = []
        self._busy = 0
        self._generation = 0
        self._closed = False
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="jira-sim-webhooks", daemon=True)
        self._thread.start()

    # -- producers ---------------------------------------------------------------------------

    def submit(self, event: str, build: Callable[[], dict], flow: str = "Primary") -> None:
        """Queue ``event`` if the webhook subscribes to it; ``build`` renders the body now."""
        if not self.config.webhook_url or event not in self.config.webhook_events:
            return
        payload = build()
        body = json.dumps(payload).encode()
        identifier = str(uuid.uuid4())
        copies = 2 if self.config.webhook_order == "duplicate" else 1
        with self._cond:
            if self._dropped():
                self._all.append(Delivery(identifier, event, payload, body, 1, self._generation,
                                          flow, state="dropped"))
                return
            if not self._new:
                self._first_new_at = time.monotonic()
            for copy in range(1, copies + 1):
                delivery = Delivery(identifier, event, payload, body, copy, self._generation,
                                    flow)
                self._new.append(delivery)
                self._all.append(delivery)
            self._cond.notify_all()

    def drop(self, count: int) -> None:
        """Lose exactly the next ``count`` deliveries (replacing any count still pending)."""
        with self._cond:
            self._drop_next = count

    def _dropped(self) -> bool:
        """Whether the delivery being queued is lost: one of the next N asked for, else by the
        drop rate (drawn from a seeded generator only when a rate is set, so runs repeat)."""
        if self._drop_next:
            self._drop_next -= 1
            return True
        rate = self.config.webhook_drop_rate
        return rate > 0 and self._drop_rng.random() < rate

    # -- inspection ------------------------------------------------------------------------

    def deliveries(self, *, with_payload: bool = False) -> list[dict]:
        with self._cond:
            return [d.summary(with_payload=with_payload) for d in self._all]

    def pending(self) -> int:
        with self._cond:
            return len(self._new) + len(self._retries) + self._busy

    def drops_pending(self) -> int:
        with self._cond:
            return self._drop_next

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued, scheduled for retry or being sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._new or self._retries or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def reset(self) -> None:
        with self._cond:
            self._new.clear()
            self._retries.clear()
            self._all.clear()
            self._generation += 1
            self._rng = random.Random(f"{self.config.seed}:webhooks")
            self._drop_rng = random.Random(f"{self.config.seed}:drops")
            self._drop_next = 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._session.close()

    # -- the sender ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                self._busy = len(batch)
            for delivery in batch:
                self._attempt(delivery)
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _next_batch(self) -> list[Delivery] | None:
        """Wait (holding the condition) for work that is due; None once closed."""
        while not self._closed:
            now = time.monotonic()
            due = []
            while self._retries and self._retries[0][0] <= now:
                due.append(heapq.heappop(self._retries)[2])
            window = self.config.webhook_shuffle_window_ms / 1000
            shuffle = self.config.webhook_order == "shuffle"
            if self._new and (not shuffle or now >= self._first_new_at + window):
                due += self._new
                self._new = []
            if due:
                if shuffle:
                    self._rng.shuffle(due)
                return due
            waits = [self._retries[0][0] - now] if self._retries else []
            if self._new:
                waits.append(self._first_new_at + window - now)
            self._cond.wait(min(waits) if waits else None)
        return None

    def _attempt(self, delivery: Delivery) -> None:
        config = self.config
        number = len(delivery.attempts) + 1
        headers = {"Content-Type": "application/json",
                   "User-Agent": "Atlassian Webhook HTTP Client",
                   "X-Atlassian-Webhook-Identifier": delivery.identifier,
                   "X-Atlassian-Webhook-Flow": delivery.flow}
        retry = number - 1 + (delivery.copy - 1)
        if retry:
            headers["X-Atlassian-Webhook-Retry"] = str(retry)
        if config.webhook_secret:
            digest = hmac.new(config.webhook_secret.encode(), delivery.body, hashlib.sha256)
            headers["X-Hub-Signature"] = f"sha256={digest.hexdigest()}"
        record = {"attempt": number, "at": datetime.now(UTC).isoformat(), "status": None,
                  "error": None, "retry_header": headers.get("X-Atlassian-Webhook-Retry"),
                  "url": config.webhook_url}
        started = time.monotonic()
        try:
            if not config.webhook_url:
                raise requests.ConnectionError("no webhook URL is configured any more")
            response = self._session.post(config.webhook_url, data=delivery.body,
                                          headers=headers,
                                          timeout=config.webhook_timeout_ms / 1000)
            record["status"] = response.status_code
            response.close()
            retryable = response.status_code in RETRIED_STATUSES or response.status_code >= 500
            succeeded = 200 <= response.status_code < 300
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            retryable, succeeded = True, False
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        with self._cond:
            delivery.attempts.append(record)
            if succeeded:
                delivery.state = "delivered"
            elif retryable and number <= MAX_RETRIES and delivery.generation == self._generation:
                due = time.monotonic() + config.webhook_retry_delay_ms / 1000
                heapq.heappush(self._retries, (due, next(self._sequence), delivery))
            else:
                delivery.state = "failed"
