"""The log of every REST call, in arrival order, for tests to assert on.

A write's ``changed`` says whether it changed anything on the site (null on reads), so a test
can assert that a client never restates what Jira already holds. A 429's
``rate_limit_reason`` says which limit refused it, so tests and benches count 429s per reason;
an OAuth call's ``cost`` is the quota points it spent.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any


def path_matches(pattern: str, path: str) -> bool:
    """Exact match, or a glob when the pattern has ``*``, ``?`` or ``[`` (``*`` spans ``/``)."""
    if any(char in pattern for char in "*?["):
        return fnmatchcase(path, pattern)
    return path == pattern


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._sequence = itertools.count(1)

    def start(self, method: str, path: str, query: dict[str, Any], body: Any) -> dict:
        record = {"seq": 0, "method": method, "path": path, "query": query, "body": body,
                  "actor": None, "status": None, "fault": None, "dropped": False,
                  "changed": None, "rate_limit_reason": None, "cost": None,
                  "time": datetime.now(UTC).isoformat()}
        with self._lock:
            record["seq"] = next(self._sequence)
            self._records.append(record)
        return record

    def select(self, method: str | None = None, path: str | None = None,
               status: int | None = None, rate_limit_reason: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records
                    if (method is None or r["method"] == method.upper())
                    and (path is None or path_matches(path, r["path"]))
                    and (status is None or r["status"] == status)
                    and (rate_limit_reason is None
                         or r["rate_limit_reason"] == rate_limit_reason)]

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._sequence = itertools.count(1)
