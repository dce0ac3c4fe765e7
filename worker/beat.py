"""A beat scheduler that schedules only while it holds the deployment-wide beat lease.

A second ``jira-sync beat`` against the same broker waits instead of scheduling twice, and
takes over within one lease period when the first one dies.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

import redis
from celery.beat import Scheduler

from jira_sync.locks import DatabaseLease, Lease, LeaseStoreUnavailable, RedisLease
from worker import queues, runtime

logger = logging.getLogger("jira_sync.beat")
LEASE_NAME = "beat"


def make_lease() -> Lease:
    settings = runtime.settings()
    holder = f"{socket.gethostname()}:{os.getpid()}"
    if settings.broker_is_redis:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=5,
                                      socket_connect_timeout=5)
        return RedisLease(client, LEASE_NAME, holder, settings.beat_lock_seconds)
    return DatabaseLease(runtime.database(), LEASE_NAME, holder, settings.beat_lock_seconds)


def schedule() -> dict[str, dict[str, Any]]:
    settings = runtime.settings()
    heartbeat = timedelta(seconds=settings.heartbeat_seconds)
    sweep = timedelta(seconds=settings.sync.sweep_seconds)
    reconcile = timedelta(seconds=settings.sync.reconcile_seconds)
    # Each entry expires after its interval: a backlog of stale sweeps is useless.
    return {
        "send-heartbeats": {
            "task": "jira_sync.send_heartbeats", "schedule": heartbeat,
            "options": {"queue": queues.MAINTENANCE, "expires": heartbeat.total_seconds()},
        },
        "sweep": {
            "task": "jira_sync.sweep", "schedule": sweep,
            "options": {"queue": queues.MAINTENANCE, "expires": sweep.total_seconds()},
        },
        "sweep-deliveries": {
            "task": "jira_sync.sweep_deliveries", "schedule": sweep,
            "options": {"queue": queues.MAINTENANCE, "expires": sweep.total_seconds()},
        },
        "reconcile": {
            "task": "jira_sync.reconcile", "schedule": reconcile,
            "options": {"queue": queues.MAINTENANCE, "expires": reconcile.total_seconds()},
        },
        "prune": {
            "task": "jira_sync.prune", "schedule": timedelta(hours=1),
            "options": {"queue": queues.MAINTENANCE, "expires": 3600},
        },
    }


class LockedScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lease = make_lease()
        self._held: bool | None = None
        self._store_down = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self.merge_inplace(schedule())

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_every = self.lease.ttl_seconds / 3
        try:
            held = self.lease.acquire()
        except LeaseStoreUnavailable as exc:
            if not self._store_down:
                logger.warning("beat: cannot reach the lock store (%s); retrying every %.0fs",
                               exc, renew_every)
            self._store_down, self._held = True, None
            return renew_every
        self._store_down = False
        if held != self._held:
            if held:
                logger.info("beat: lock acquired; this beat schedules the periodic sweeps")
            else:
                logger.info("beat: another beat holds the lock; waiting to take over")
            self._held = held
        if not held:
            return renew_every
        return min(super().tick(*args, **kwargs), renew_every)

    def close(self) -> None:
        super().close()
        if self._held:
            self.lease.release()
            self._held = False
            logger.info("beat: lock released")
