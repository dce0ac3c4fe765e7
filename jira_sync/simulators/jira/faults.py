"""Injected failures: a healthy Jira that still fails, before or after applying the change.

Deterministic under a seed, so a failing test can be replayed. (Rate limits, the other way a
healthy Jira says no, are in ``ratelimits``.)
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_KINDS = (500, 502, 503, "drop")


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
