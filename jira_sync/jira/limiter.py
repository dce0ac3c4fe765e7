"""A rate limiter shared by every process that calls one Jira site.

Each worker process discovering the limit on its own means N times the 429s. Instead every
call first takes a slot from a shared schedule (GCRA: slots ``1 / rate`` apart) and every
response feeds what Jira said back into it: a 429's ``Retry-After`` pauses all processes,
and the token-bucket headers (``X-RateLimit-FillRate`` / ``X-RateLimit-Interval-Seconds``)
set the pace. The schedule lives in Redis when the broker is Redis, else in the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import redis
from sqlalchemy import case, update

from jira_sync.store.db import Database
from jira_sync.store.models import RateLimitState
from jira_sync.store.upsert import insert

# Pace a little under the advertised rate: clocks and bucket edges are not exact.
SAFETY = 0.9
RATE_TTL_SECONDS = 3600


class RateLimiter(Protocol):
    def reserve(self, site: str) -> float:
        """Take the next slot; returns how many seconds to wait before using it."""

    def pause(self, site: str, seconds: float) -> None:
        """Nobody calls the site for ``seconds`` (a 429's Retry-After)."""

    def set_rate(self, site: str, per_second: float) -> None: ...


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
local rate = tonumber(redis.call('GET', KEYS[3]) or '0')
local wait = 0
if paused > now then wait = paused - now end
if rate > 0 then
  local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + wait)
  redis.call('SET', KEYS[1], tostring(slot + 1 / rate), 'EX', 3600)
  wait = slot - now
end
return tostring(wait)
"""
_PAUSE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'EX', math.ceil(tonumber(ARGV[1])) + 1)
end
return 1
"""


class RedisRateLimiter:
    """Slots and pauses on the broker's Redis, timed by Redis's clock (one clock for all hosts)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._reserve = client.register_script(_RESERVE)
        self._pause = client.register_script(_PAUSE)

    @staticmethod
    def _keys(site: str) -> list[str]:
        return [f"jira_sync:rate:{site}:{part}" for part in ("slot", "paused", "rate")]

    def reserve(self, site: str) -> float:
        return max(0.0, float(self._reserve(keys=self._keys(site))))

    def pause(self, site: str, seconds: float) -> None:
        self._pause(keys=[self._keys(site)[1]], args=[seconds])

    def set_rate(self, site: str, per_second: float) -> None:
        self._client.set(self._keys(site)[2], per_second * SAFETY, ex=RATE_TTL_SECONDS)


class DatabaseRateLimiter:
    """The same schedule in the ``rate_limits`` table, one atomic UPDATE per call."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _ensure(self, site: str) -> None:
        with self._database.unit_of_work() as session:
            session.execute(insert(session, RateLimitState).values(
                site=site, next_slot=0.0, paused_until=0.0,
            ).on_conflict_do_nothing(index_elements=["site"]))

    def reserve(self, site: str) -> float:
        now = time.time()
        row = RateLimitState
        start = case((row.paused_until > now, row.paused_until), else_=now)
        slot = case((row.next_slot > start, row.next_slot), else_=start)
        statement = (
            update(row).where(row.site == site)
            .values(next_slot=case((row.rate_per_second > 0, slot + 1.0 / row.rate_per_second),
                                   else_=row.next_slot))
            .returning(row.next_slot, row.paused_until, row.rate_per_second)
        )
        with self._database.unit_of_work() as session:
            result = session.execute(statement).one_or_none()
        if result is None:
            self._ensure(site)
            return self.reserve(site)
        next_slot, paused_until, rate = result
        wait = max(0.0, paused_until - now)
        if rate:
            wait = max(wait, next_slot - 1.0 / rate - now)
        return wait

    def pause(self, site: str, seconds: float) -> None:
        self._ensure(site)
        until = time.time() + seconds
        with self._database.unit_of_work() as session:
            session.execute(update(RateLimitState).where(
                RateLimitState.site == site, RateLimitState.paused_until < until,
            ).values(paused_until=until))

    def set_rate(self, site: str, per_second: float) -> None:
        self._ensure(site)
        with self._database.unit_of_work() as session:
            session.execute(update(RateLimitState).where(RateLimitState.site == site)
                            .values(rate_per_second=per_second * SAFETY))


def limiter_for(broker_url: str, database: Database) -> RateLimiter:
    """Redis when the broker is Redis (one clock, no database writes per call), else the
    database (the demo's embedded broker)."""
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        return RedisRateLimiter(redis.Redis.from_url(broker_url, socket_timeout=5,
                                                     socket_connect_timeout=5))
    return DatabaseRateLimiter(database)
