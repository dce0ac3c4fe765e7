"""Rate limiting and injected failures: the two ways a healthy Jira still says no.

Both are deterministic under a seed, so a failing test can be replayed.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FAULT_KINDS = (500, 502, 503, "drop")


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: float
    remaining: int
    retry_after: int  # whole seconds until a token is back, at least 1


def format_rate(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else f"{rate:g}"


class RateLimiter:
    """A token bucket of capacity max(1, R) refilled at R tokens per second (Jira's burst limit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._tokens = 0.0
        self._stamp = time.monotonic()

    def reset(self) -> None:
        with self._lock:
            self._rate = None

    def take(self, rate: float) -> RateDecision:
        with self._lock:
            now = time.monotonic()
            capacity = max(1.0, rate)
            if self._rate != rate:
                self._rate, self._tokens, self._stamp = rate, capacity, now
            self._tokens = min(capacity, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return RateDecision(True, rate, int(self._tokens), 0)
            wait = max(1, math.ceil((1 - self._tokens) / rate))
            return RateDecision(False, rate, 0, wait)


def reset_time(seconds: int) -> str:
    """``X-RateLimit-Reset`` is an ISO-8601 instant."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Fault:
    after: bool  # True: the change is applied (and webhooks fire) before the failure
    kind: int | str  # 500 | 502 | 503 | "drop" (close the connection, no response at all)


class FaultInjector:
    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(f"{seed}:faults")

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(f"{self._seed}:faults")

    def draw(self, fail_rate: float) -> Fault | None:
        with self._lock:
            if fail_rate <= 0 or self._rng.random() >= fail_rate:
                return None
            return Fault(after=self._rng.random() < 0.5, kind=self._rng.choice(FAULT_KINDS))
