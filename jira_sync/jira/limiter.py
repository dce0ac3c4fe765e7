"""A rate limiter shared by every process that calls one Jira site.

Each worker process discovering the limit on its own means N times the 429s. Instead every
call first takes a slot from a shared schedule (GCRA: slots ``1 / rate`` apart), and what
Jira answers feeds back into it:

- the pace starts at the configured rate of the site;
- a 429 halves it (down to ``MIN_RATE``) for ``RATE_TTL_SECONDS``, after which the configured
  rate applies again, and, unless the limit was per issue, pauses every process for the
  ``Retry-After``;
- token-bucket headers (``X-RateLimit-FillRate`` / ``X-RateLimit-Interval-Seconds``, sent by
  Data Center) set the pace to what the site advertises.

A wait longer than the caller accepts reserves nothing, so parked work never pushes the
schedule ahead of the work that runs. The schedule lives in Redis when the broker is Redis,
else in the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from jira_sync.store.db import Database
from jira_sync.store.models import RateLimitState
from jira_sync.store.upsert import insert

# Pace a little under an advertised rate: clocks and bucket edges are not exact.
SAFETY = 0.9
MIN_RATE = 0.5
RATE_TTL_SECONDS = 600


class RateLimiter(Protocol):
    def reserve(self, site: str, default_rate: float | None, max_wait: float) -> float:
        """Seconds to wait for the next slot, which is reserved only if that is ``max_wait``
        or less."""

    def throttled(self, site: str, default_rate: float | None, retry_after: float | None,
                  pause_site: bool) -> None:
        """Jira answered 429: slow the site's pace, and pause it for ``retry_after``."""

    def set_rate(self, site: str, per_second: float) -> None:
        """The site advertises this sustainable rate."""


def learned_rate(headers: Mapping[str, str]) -> float | None:
    """The sustainable rate a response advertises, if it says (DC token-bucket headers)."""
    try:
        fill = float(headers["X-RateLimit-FillRate"])
        interval = float(headers.get("X-RateLimit-Interval-Seconds", "1"))
    except (KeyError, ValueError):
        return None
    return fill / interval if fill > 0 and interval > 0 else None


_RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = tonumber(redis.call('GET', KEYS[3]) or ARGV[1])
local wait = math.max(0, paused - now)
if rate > 0 then
  local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + wait)
  wait = slot - now
  if wait <= tonumber(ARGV[2]) then
    redis.call('SET', KEYS[1], tostring(slot + 1 / rate), 'EX', 3600)
  end
end
return tostring(wait)
"""
_THROTTLED = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local pause = tonumber(ARGV[2])
if pause > 0 and now + pause > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], tostring(now + pause), 'EX', math.ceil(pause) + 1)
end
local rate = tonumber(redis.call('GET', KEYS[3]) or ARGV[1])
if rate > 0 then
  redis.call('SET', KEYS[3], tostring(math.max(tonumber(ARGV[3]), rate / 2)), 'EX', ARGV[4])
end
return 1
"""


class RedisRateLimiter:
    """Slots and pauses on the broker's Redis, timed by Redis's clock (one clock for all hosts)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._reserve = client.register_script(_RESERVE)
        self._throttled = client.register_script(_THROTTLED)

    @staticmethod
    def _keys(site: str) -> list[str]:
        return [f"jira_sync:rate:{site}:{part}" for part in ("slot", "paused", "rate")]

    def reserve(self, site: str, default_rate: float | None, max_wait: float) -> float:
        return max(0.0, float(self._reserve(keys=self._keys(site),
                                            args=[default_rate or 0, max_wait])))

    def throttled(self, site: str, default_rate: float | None, retry_after: float | None,
                  pause_site: bool) -> None:
        pause = (retry_after or 1.0) if pause_site else 0
        self._throttled(keys=self._keys(site),
                        args=[default_rate or 0, pause, MIN_RATE, RATE_TTL_SECONDS])

    def set_rate(self, site: str, per_second: float) -> None:
        self._client.set(self._keys(site)[2], per_second * SAFETY, ex=RATE_TTL_SECONDS)


class DatabaseRateLimiter:
    """The same schedule in the ``rate_limits`` table: each change locks the site's row first
    (an UPDATE, so SQLite takes its write lock at once instead of failing to upgrade)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _locked(self, session: Session, site: str) -> RateLimitState:
        locked = session.execute(update(RateLimitState).where(RateLimitState.site == site)
                                 .values(site=site)).rowcount
        if not locked:
            session.execute(insert(session, RateLimitState).values(
                site=site, next_slot=0.0, paused_until=0.0, rate_until=0.0,
            ).on_conflict_do_nothing(index_elements=["site"]))
        state = session.get(RateLimitState, site, populate_existing=True)
        assert state is not None
        return state

    @staticmethod
    def _rate(state: RateLimitState, default_rate: float | None, now: float) -> float:
        if state.rate_per_second and state.rate_until > now:
            return state.rate_per_second
        return default_rate or 0.0

    def reserve(self, site: str, default_rate: float | None, max_wait: float) -> float:
        with self._database.unit_of_work() as session:
            state, now = self._locked(session, site), time.time()
            rate = self._rate(state, default_rate, now)
            wait = max(0.0, state.paused_until - now)
            if rate > 0:
                slot = max(state.next_slot, now + wait)
                wait = slot - now
                if wait <= max_wait:
                    state.next_slot = slot + 1.0 / rate
            return wait

    def throttled(self, site: str, default_rate: float | None, retry_after: float | None,
                  pause_site: bool) -> None:
        with self._database.unit_of_work() as session:
            state, now = self._locked(session, site), time.time()
            if pause_site:
                state.paused_until = max(state.paused_until, now + (retry_after or 1.0))
            rate = self._rate(state, default_rate, now)
            if rate > 0:
                state.rate_per_second = max(MIN_RATE, rate / 2)
                state.rate_until = now + RATE_TTL_SECONDS

    def set_rate(self, site: str, per_second: float) -> None:
        with self._database.unit_of_work() as session:
            state = self._locked(session, site)
            state.rate_per_second = per_second * SAFETY
            state.rate_until = time.time() + RATE_TTL_SECONDS


def limiter_for(broker_url: str, database: Database) -> RateLimiter:
    """Redis when the broker is Redis (one clock, no database writes per call), else the
    database (the demo's embedded broker)."""
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        return RedisRateLimiter(redis.Redis.from_url(broker_url, socket_timeout=5,
                                                     socket_connect_timeout=5))
    return DatabaseRateLimiter(database)
