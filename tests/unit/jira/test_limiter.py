"""The shared limiter's schedule, on both stores: paced slots, shared pauses, adapted rates."""

import time

import fakeredis
import pytest

from jira_sync.jira.limiter import (
    MIN_RATE,
    SAFETY,
    DatabaseRateLimiter,
    RedisRateLimiter,
    learned_rate,
)
from jira_sync.store.db import Database

SITE = "https://acme.atlassian.net"
NO_LIMIT = 1000.0


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


def test_without_any_rate_nobody_waits(limiters):
    first, second = limiters
    assert first.reserve(SITE, None, NO_LIMIT) == 0 and second.reserve(SITE, None, NO_LIMIT) == 0


def slots(reservations) -> list[float]:
    """When each reserved slot falls, from the first call on (waits shrink as time passes;
    the slot times do not)."""
    start = time.monotonic()
    return [reserve() + (time.monotonic() - start) for reserve in reservations]


def test_slots_are_shared_and_spaced_by_the_configured_rate(limiters):
    first, second = limiters
    times = slots(lambda limiter=limiter: limiter.reserve(SITE, 10, NO_LIMIT)
                  for _ in range(5) for limiter in (first, second))
    assert times == pytest.approx([n / 10 for n in range(10)], abs=0.03)


def test_an_advertised_rate_replaces_the_configured_one(limiters):
    first, second = limiters
    first.set_rate(SITE, 2 / SAFETY)  # paced at exactly 2 per second
    times = slots(lambda: second.reserve(SITE, 10, NO_LIMIT) for _ in range(3))
    assert times == pytest.approx([0, 0.5, 1.0], abs=0.03)


def test_a_wait_too_long_for_the_caller_reserves_nothing(limiters):
    first, second = limiters
    for _ in range(10):
        first.reserve(SITE, 1, NO_LIMIT)  # the schedule is now ~10 s ahead
    parked = [second.reserve(SITE, 1, max_wait=5) for _ in range(50)]
    assert all(w > 5 for w in parked)
    # Parking did not push the schedule further out (50 reserved slots would be 50 s more).
    assert 5 < second.reserve(SITE, 1, NO_LIMIT) <= parked[0] + 0.1


def test_a_429_pauses_every_process_and_halves_the_pace(limiters):
    first, second = limiters
    first.throttled(SITE, 10, retry_after=3, pause_site=True)
    # The first slot after the pause, then the next at the halved rate (0.2 s apart).
    times = slots(lambda: second.reserve(SITE, 10, NO_LIMIT) for _ in range(2))
    assert times == pytest.approx([3, 3.2], abs=0.1)


def test_a_per_issue_429_slows_without_pausing_the_site(limiters):
    first, second = limiters
    first.throttled(SITE, 10, retry_after=3, pause_site=False)
    assert second.reserve(SITE, 10, NO_LIMIT) == pytest.approx(0, abs=0.05)


def test_repeated_429s_never_stop_the_site(limiters):
    first, _ = limiters
    for _ in range(20):
        first.throttled(SITE, 10, retry_after=None, pause_site=False)
    first.reserve(SITE, 10, NO_LIMIT)
    assert first.reserve(SITE, 10, NO_LIMIT) == pytest.approx(1 / MIN_RATE, abs=0.1)


def test_sites_are_independent(limiters):
    first, _ = limiters
    first.throttled(SITE, 10, retry_after=3, pause_site=True)
    assert first.reserve("https://other.atlassian.net", 10, NO_LIMIT) == 0


def test_rates_are_learned_from_token_bucket_headers():
    assert learned_rate({"X-RateLimit-FillRate": "20", "X-RateLimit-Interval-Seconds": "2"}) == 10
    assert learned_rate({"X-RateLimit-Limit": "100"}) is None
    assert learned_rate({"X-RateLimit-FillRate": "zero"}) is None
