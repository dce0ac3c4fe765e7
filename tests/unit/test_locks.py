"""The two lease stores behave alike: take, renew, refuse others, expire, release."""

import time

import fakeredis
import pytest
import redis

from jira_sync.locks import DatabaseLease, LeaseStoreUnavailable, RedisLease
from jira_sync.store.db import Database


@pytest.fixture(params=["redis", "database"])
def make_lease(request, sqlite_url):
    if request.param == "redis":
        server = fakeredis.FakeServer()
        yield lambda holder, ttl=30: RedisLease(
            fakeredis.FakeRedis(server=server), "beat", holder, ttl)
    else:
        database = Database(sqlite_url)
        yield lambda holder, ttl=30: DatabaseLease(database, "beat", holder, ttl)
        database.dispose()


def test_one_holder_at_a_time(make_lease):
    first, second = make_lease("a"), make_lease("b")
    assert first.acquire() is True
    assert second.acquire() is False
    assert first.acquire() is True  # renewal by the holder
    assert second.acquire() is False


def test_release_hands_over_at_once(make_lease):
    first, second = make_lease("a"), make_lease("b")
    assert first.acquire()
    first.release()
    assert second.acquire() is True
    assert first.acquire() is False


def test_a_holder_that_stops_renewing_loses_the_lease(make_lease):
    first, second = make_lease("a", ttl=1), make_lease("b", ttl=1)
    assert first.acquire()
    time.sleep(1.2)
    assert second.acquire() is True


def test_releasing_someone_elses_lease_does_nothing(make_lease):
    first, second = make_lease("a"), make_lease("b")
    assert first.acquire()
    second.release()
    assert second.acquire() is False


def test_unreachable_redis_is_reported_not_raised_raw():
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    with pytest.raises(LeaseStoreUnavailable):
        RedisLease(client, "beat", "a", 30).acquire()
