"""What every benchmark run needs: throw-away Postgres databases and Redis db indexes, free
ports, and a process timed from its first piece of work to its last."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jira_sync.store import migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "JIRA_SYNC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("JIRA_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"jira_sync_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis db index claimed for the benchmark (the same claims the tests use)."""
    admin = redis.Redis.from_url(f"{REDIS_URL}/0")
    token = uuid.uuid4().hex
    for index in range(1, 16):
        if admin.set(f"jira_sync:test-claim:{index}", token, nx=True, ex=3600):
            break
    else:
        raise RuntimeError("no free Redis db index (1-15)")
    url = f"{REDIS_URL}/{index}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        admin.delete(f"jira_sync:test-claim:{index}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(command: list[str], env: dict[str, str], finished: Callable[[], bool],
          started: Callable[[], bool]) -> float:
    """Seconds from ``started()`` to ``finished()`` with ``command`` running: timing from the
    first piece of work done leaves process start-up, which differs between a subject and its
    baseline, out of both."""
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        begin = None
        while True:
            if worker.poll() is not None:
                raise RuntimeError(f"{command} exited with {worker.returncode}")
            if begin is None and started():
                begin = time.perf_counter()
            if begin is not None and finished():
                return time.perf_counter() - begin
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(60)
