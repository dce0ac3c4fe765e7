"""The shared limiter's schedule, on both stores: paced slots, shared pauses, learned rates."""

import fakeredis
import pytest

from jira_sync.jira.limiter import (
    SAFETY,
    DatabaseRateLimiter,
    RedisRateLimiter,
    learned_rate,
)
from jira_sync.store.db import Database

SITE = "https://acme.atlassian.net"


@pytest.fixture(params=["redis", "database"])
def limiters(request, sqlite_url):
    """Two limiters over one store, as two worker processes would have."""
    if request.param == "redis":
        server = fakeredis.FakeServer()
        yield [RedisRateLimiter(fakeredis.FakeRedis(server=server)) for _ in range(2)]
    else:
        databases = [Database(sqlite_url) for _ in range(2)]
        yield [DatabaseRateLimiter(db) for db in databases]
        for db in databases:
            db.dispose()


def test_without_a_known_rate_nobody_waits(limiters):
    first, second = limiters
    assert first.reserve(SITE) == 0 and second.reserve(SITE) == 0


def test_slots_are_shared_and_spaced_by_the_rate(limiters):
    first, second = limiters
    first.set_rate(SITE, 10 / SAFETY)  # paced at exactly 10 per second
    waits = [limiter.reserve(SITE) for _ in range(5) for limiter in (first, second)]
    assert waits[0] == pytest.approx(0, abs=0.02)
    assert waits[-1] == pytest.approx(0.9, abs=0.05)  # the 10th slot, 0.1 s apart
    assert waits == sorted(waits)


def test_a_pause_stops_every_process(limiters):
    first, second = limiters
    first.pause(SITE, 3)
    assert second.reserve(SITE) == pytest.approx(3, abs=0.1)
    first.pause(SITE, 1)  # a shorter pause never shortens a longer one
    assert second.reserve(SITE) == pytest.approx(3, abs=0.1)


def test_sites_are_independent(limiters):
    first, _ = limiters
    first.pause(SITE, 3)
    assert first.reserve("https://other.atlassian.net") == 0


def test_rates_are_learned_from_token_bucket_headers():
    assert learned_rate({"X-RateLimit-FillRate": "20", "X-RateLimit-Interval-Seconds": "2"}) == 10
    assert learned_rate({"X-RateLimit-Limit": "100"}) is None
    assert learned_rate({"X-RateLimit-FillRate": "zero"}) is None
