"""Jira's rate limits as the simulated site enforces them (reference notes §9).

Cloud applies three limits at once, each answering 429 with its own ``RateLimit-Reason``:

- ``jira-burst-based``: a token bucket per endpoint (path template, e.g.
  ``/rest/api/3/issue/{id_or_key}``) and HTTP method, refilled at ``rate_limit`` requests per
  second. Its capacity is max(1, R), one second's worth: Jira adds a buffer above its steady
  rate, but a client designed for the steady rate never needs it, and a test's arithmetic
  stays plain.
- ``jira-per-issue-on-write``: the writes one issue takes, in sliding windows (20 per 2 s and
  100 per 30 s). A refused write is not counted, so backing off is enough to get through.
- ``jira-quota-global-based`` / ``jira-quota-tenant-based``: the hourly points of an OAuth app,
  in one pool for every site of the app or one per site; used up, every call it covers waits
  for the top of the UTC hour. API tokens and PATs are exempt.

Data Center has one admin-configured token bucket per user instead, and its 429 names no
reason; the call log labels it ``dc-token-bucket``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jira_sync.simulators.jira.config import SimulatorConfig

BURST = "jira-burst-based"
PER_ISSUE = "jira-per-issue-on-write"
QUOTA_REASONS = {"global": "jira-quota-global-based", "tenant": "jira-quota-tenant-based"}
DC_BUCKET = "dc-token-bucket"  # the call log's name for Data Center's limit (no header says it)

NEAR_LIMIT_SHARE = 0.2  # X-RateLimit-NearLimit: true when less than this share of points is left
IDENTITY_WEIGHT, CORE_WEIGHT = 2, 1
# Reads whose objects are identities (users, permissions): 2 points each instead of 1.
IDENTITY_ENDPOINTS = frozenset({"myself", "user", "user_search", "my_permissions"})
# Where a paged answer lists the objects it read; other answers read their list's items, or one.
PAGE_ITEMS = {"search_jql": "issues", "search": "issues", "bulk_fetch": "issues",
              "get_changelog": "values", "get_comments": "comments",
              "get_transitions": "transitions", "createmeta_types": "issueTypes",
              "createmeta_fields": "fields", "property_keys": "keys",
              "my_permissions": "permissions"}


@dataclass(frozen=True)
class Refusal:
    """Why a call is answered 429, and when to come back: ``Retry-After`` in whole seconds
    (at least 1) and the instant ``X-RateLimit-Reset`` names."""

    reason: str
    retry_after: int
    resets_at: datetime


def refusal(reason: str, seconds: float, now: datetime | None = None) -> Refusal:
    now = now or datetime.now(UTC)
    return Refusal(reason, max(1, math.ceil(seconds)), now + timedelta(seconds=seconds))


@dataclass(frozen=True)
class BucketDecision:
    rate: float  # tokens per second
    capacity: float
    remaining: int  # whole tokens left now
    refusal: Refusal | None


def endpoint_template(rule: str) -> str:
    """A Flask rule as Jira's docs write paths: ``/issue/<id_or_key>`` is
    ``/issue/{id_or_key}``, one bucket whichever issue is called."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


class TokenBuckets:
    """Token buckets by key, all at one rate; a change of rate starts every bucket full."""

    def __init__(self, reason: str) -> None:
        self._reason = reason
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, when)

    def reset(self) -> None:
        with self._lock:
            self._rate = None
            self._buckets.clear()

    def take(self, key: Hashable, rate: float) -> BucketDecision:
        capacity = max(1.0, rate)
        with self._lock:
            now = time.monotonic()
            if self._rate != rate:
                self._rate = rate
                self._buckets.clear()
            tokens, stamp = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - stamp) * rate)
            refused = None
            if tokens >= 1:
                tokens -= 1
            else:
                refused = refusal(self._reason, (1 - tokens) / rate)
            self._buckets[key] = (tokens, now)
            return BucketDecision(rate, capacity, int(tokens), refused)


class IssueWrites:
    """When each issue took its recent writes, against windows of (writes, seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes: dict[str, deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._writes.clear()

    def take(self, issue_id: str, windows: tuple[tuple[int, float], ...]) -> Refusal | None:
        """Count one more write to the issue, or refuse it until the window that binds frees
        a place."""
        with self._lock:
            now = time.monotonic()
            stamps = self._writes.setdefault(issue_id, deque())
            longest = max(seconds for _, seconds in windows)
            while stamps and stamps[0] <= now - longest:
                stamps.popleft()
            ordered = list(stamps)
            waits = []
            for count, seconds in windows:
                inside = ordered[bisect_right(ordered, now - seconds):]
                if len(inside) >= count:  # the write that must leave before one more fits
                    waits.append(inside[len(inside) - count] + seconds - now)
            if waits:
                return refusal(PER_ISSUE, max(waits))
            stamps.append(now)
            return None


def top_of_next_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


class QuotaPool:
    """The points an OAuth app has used in the current window, which ends at the top of the
    UTC hour (or earlier, when a test says so through ``/_sim/quota``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._used = 0
            self._resets_at = top_of_next_hour(datetime.now(UTC))

    def _roll(self, now: datetime) -> None:
        if now >= self._resets_at:
            self._used, self._resets_at = 0, top_of_next_hour(now)

    def check(self, points: int, reason: str) -> Refusal | None:
        with self._lock:
            now = datetime.now(UTC)
            self._roll(now)
            if self._used < points:
                return None
            return refusal(reason, (self._resets_at - now).total_seconds(), now)

    def charge(self, cost: int) -> int:
        """Add the call's cost; the points used now."""
        with self._lock:
            self._roll(datetime.now(UTC))
            self._used += cost
            return self._used

    def set(self, used: int | None = None, reset_in_seconds: float | None = None) -> None:
        with self._lock:
            now = datetime.now(UTC)
            self._roll(now)
            if used is not None:
                self._used = used
            if reset_in_seconds is not None:
                self._resets_at = now + timedelta(seconds=reset_in_seconds)

    def state(self) -> tuple[int, datetime]:
        """The points used and when the window ends."""
        with self._lock:
            self._roll(datetime.now(UTC))
            return self._used, self._resets_at


_APP_POOLS: dict[str, QuotaPool] = {}
_APP_POOLS_LOCK = threading.Lock()


def app_pool(client_id: str) -> QuotaPool:
    """The global pool of an app: shared by every simulated site in this process that serves
    the same OAuth client id, as Jira shares it across every site of the app."""
    with _APP_POOLS_LOCK:
        return _APP_POOLS.setdefault(client_id, QuotaPool())


def objects_read(endpoint: str, body: Any) -> int:
    """What a read answer counts as read: the page's items (``issues`` of a search or bulk
    fetch, ``values``, ``comments``, ...), the items of a list answer, else the one object."""
    key = PAGE_ITEMS.get(endpoint)
    if key is not None and isinstance(body, dict):
        items = body.get(key)
        return len(items) if isinstance(items, list | dict) else 0
    if isinstance(body, list):
        return len(body)
    return 1 if isinstance(body, dict) else 0


def call_cost(endpoint: str, write: bool, status: int, body: Any) -> int:
    """Points per call as the notes give them: writes 1; reads 1 plus 1 per core object read
    and 2 per identity object (only an answer that read something counts its objects)."""
    if write or not 200 <= status < 300:
        return 1
    weight = IDENTITY_WEIGHT if endpoint in IDENTITY_ENDPOINTS else CORE_WEIGHT
    return 1 + weight * objects_read(endpoint, body)


def format_rate(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else f"{rate:g}"


def iso_instant(moment: datetime) -> str:
    """``X-RateLimit-Reset`` is an ISO-8601 instant, in milliseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SiteLimits:
    """Every limit of one simulated site. Settings are read at each call, since
    ``/_sim/config`` changes them while the site runs."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.cloud = config.deployment == "cloud"
        self.buckets = TokenBuckets(BURST if self.cloud else DC_BUCKET)
        self.issue_writes = IssueWrites()
        self._lock = threading.Lock()
        self._site_pools: dict[str, QuotaPool] = {}

    def reset(self) -> None:
        """Full buckets, no write counted, no point used: in the app's global pool too, when
        this site serves the app (the pool is the app's, whichever of its sites resets)."""
        self.buckets.reset()
        self.issue_writes.reset()
        with self._lock:
            self._site_pools.clear()
        if self.config.oauth_token is not None:
            app_pool(self.config.oauth_client_id).reset()

    def burst(self, key: Hashable) -> BucketDecision | None:
        """Take a token from the bucket of ``key``; None when the site limits no rate."""
        rate = self.config.rate_limit
        return None if rate is None else self.buckets.take(key, rate)

    def issue_write(self, issue_id: str) -> Refusal | None:
        """Count a write to one issue. Cloud only, and only while the site limits its rate:
        a simulator started without ``--rate-limit`` never answers 429 to Basic traffic."""
        windows = self.config.issue_write_limits
        if not self.cloud or self.config.rate_limit is None or not windows:
            return None
        return self.issue_writes.take(issue_id, windows)

    def quota_pool(self) -> QuotaPool:
        client_id = self.config.oauth_client_id
        if self.config.quota_scope == "global":
            return app_pool(client_id)
        with self._lock:
            return self._site_pools.setdefault(client_id, QuotaPool())

    def quota(self) -> Refusal | None:
        """Whether an OAuth call may go ahead: the pool still has points this hour."""
        return self.quota_pool().check(self.config.quota_points,
                                       QUOTA_REASONS[self.config.quota_scope])

    def charge(self, cost: int) -> bool:
        """Charge an OAuth call's cost; whether less than a fifth of the points is left."""
        points = self.config.quota_points
        return points - self.quota_pool().charge(cost) < NEAR_LIMIT_SHARE * points

    def quota_state(self) -> dict[str, Any]:
        used, resets_at = self.quota_pool().state()
        points = self.config.quota_points
        return {"client_id": self.config.oauth_client_id, "scope": self.config.quota_scope,
                "reason": QUOTA_REASONS[self.config.quota_scope], "points": points,
                "used": used, "remaining": max(0, points - used),
                "resets_at": iso_instant(resets_at)}


def limit_headers(cloud: bool, advertise: bool, bucket: BucketDecision | None,
                  refused: Refusal | None) -> dict[str, str]:
    """Cloud advertises the endpoint's rate and the tokens left. Data Center's token bucket
    says its size as the limit, then the tokens it adds per interval (whole tokens: a rate
    under 1 per second is 1 token per 1/R seconds) and ``retry-after``, 0 while tokens remain.
    A 429 says when to come back, and on Cloud why and until when. ``advertise`` off hides
    the limit from a client that must discover it; a 429's own headers stay."""
    headers: dict[str, str] = {}
    if bucket is not None and advertise:
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        if cloud:
            headers["X-RateLimit-Limit"] = format_rate(bucket.rate)
        else:
            fill, interval = (bucket.rate, 1.0) if bucket.rate >= 1 else (1.0, 1 / bucket.rate)
            headers["X-RateLimit-Limit"] = format_rate(bucket.capacity)
            headers["X-RateLimit-FillRate"] = format_rate(fill)
            headers["X-RateLimit-Interval-Seconds"] = format_rate(interval)
            headers["Retry-After"] = "0"
    if refused is not None:
        headers["Retry-After"] = str(refused.retry_after)
        if cloud:
            headers["RateLimit-Reason"] = refused.reason
            headers["X-RateLimit-Reset"] = iso_instant(refused.resets_at)
    return headers
