"""Named leases shared between processes: in Redis when the broker is Redis, else the database.

A lease is held by one holder until it expires; the holder renews it well before that. A
holder that dies simply stops renewing, so another process takes over after at most one TTL.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Protocol

import redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from jira_sync.store.db import Database
from jira_sync.store.models import ServiceLock
from jira_sync.store.types import utcnow


class LeaseStoreUnavailable(Exception):
    """The store behind the lease cannot be reached; the caller retries later."""


class Lease(Protocol):
    ttl_seconds: float

    def acquire(self) -> bool:
        """Take the lease, or renew it when already held; False when someone else holds it."""

    def release(self) -> None: ...


# Take or renew atomically: only the current holder may extend, anyone may take a free lease.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    def __init__(self, client: redis.Redis, name: str, holder: str, ttl_seconds: float) -> None:
        self._client, self.key, self.holder = client, f"jira_sync:lock:{name}", holder
        self.ttl_seconds = ttl_seconds

    def acquire(self) -> bool:
        try:
            return bool(self._client.eval(_ACQUIRE, 1, self.key, self.holder,
                                          int(self.ttl_seconds * 1000)))
        except redis.RedisError as exc:
            raise LeaseStoreUnavailable(str(exc)) from None

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError):  # Else it expires on its own.
            self._client.eval(_RELEASE, 1, self.key, self.holder)


class DatabaseLease:
    def __init__(self, database: Database, name: str, holder: str, ttl_seconds: float) -> None:
        self._database, self.name, self.holder = database, name, holder
        self.ttl_seconds = ttl_seconds

    def acquire(self) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl_seconds)
        try:
            with self._database.unit_of_work() as session:
                # One conditional UPDATE is atomic on every backend: no read-then-write race.
                taken = session.execute(
                    update(ServiceLock)
                    .where(ServiceLock.name == self.name)
                    .where((ServiceLock.holder == self.holder) | (ServiceLock.expires_at < now))
                    .values(holder=self.holder, expires_at=expires)
                ).rowcount
                if taken:
                    return True
                if session.scalar(select(ServiceLock.name).where(ServiceLock.name == self.name)):
                    return False
                session.add(ServiceLock(name=self.name, holder=self.holder, expires_at=expires))
            return True
        except IntegrityError:
            return False  # Another process inserted it first.
        except OperationalError as exc:
            raise LeaseStoreUnavailable(str(exc).splitlines()[0]) from None

    def release(self) -> None:
        try:
            with self._database.unit_of_work() as session:
                session.execute(update(ServiceLock).where(
                    ServiceLock.name == self.name, ServiceLock.holder == self.holder,
                ).values(expires_at=utcnow()))
        except OperationalError:
            pass  # It expires on its own.
