"""Test resources: a Postgres database, and a Redis db index or a RabbitMQ virtual host, of
the run's or the test's own, cleaned up after.

Postgres, Redis and RabbitMQ are the real local servers (``make services`` starts them). Each
run creates a migrated template database; tests that need a clean database get a copy of it,
so tests can run in any order and twice in a row. A module marked ``both_brokers`` runs each
of its tests that uses the broker twice: on Redis, and on RabbitMQ in a virtual host of the
test's own (``-m rabbitmq`` selects those variants, ``-m "not rabbitmq"`` leaves them out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jira_sync.store import migrate
from jira_sync.store.db import Database
from tests.support import rabbitmq
from tests.support.processes import clean_env, free_port

POSTGRES_ADMIN_URL = os.environ.get(
    "JIRA_SYNC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("JIRA_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_CLAIM_SECONDS = 3 * 3600
RUN_ID = uuid.uuid4().hex[:10]


def _admin_engine():
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT",
                         connect_args={"connect_timeout": 5})


def _create_database(name: str, template: str | None = None) -> str:
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            suffix = f" TEMPLATE {template}" if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    finally:
        engine.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_database(name: str) -> None:
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that per-test databases are copied from."""
    name = f"jira_sync_test_{RUN_ID}_template"
    try:
        url = _create_database(name)
    except Exception as exc:
        pytest.exit(f"Postgres is not reachable at {POSTGRES_ADMIN_URL} ({exc}); "
                    "run `make services`", returncode=3)
    migrate.upgrade(url)
    Database(url).dispose()
    yield name
    _drop_database(name)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated Postgres database for this test only."""
    name = f"jira_sync_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = _create_database(name, template=postgres_template)
    yield url
    _drop_database(name)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A fresh Postgres database with no schema at all."""
    name = f"jira_sync_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    try:
        url = _create_database(name)
    except Exception as exc:
        pytest.exit(f"Postgres is not reachable ({exc}); run `make services`", returncode=3)
    yield url
    _drop_database(name)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'jira-sync.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    """A Redis db index claimed by this run alone (claims live in db 0 and expire)."""
    admin = redis.Redis.from_url(f"{REDIS_URL}/0")
    try:
        admin.ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is not reachable at {REDIS_URL} ({exc}); run `make services`",
                    returncode=3)
    for index in range(1, 16):
        if admin.set(f"jira_sync:test-claim:{index}", RUN_ID, nx=True, ex=REDIS_CLAIM_SECONDS):
            break
    else:
        pytest.exit("no free Redis db index (1-15) for this test run", returncode=3)
    client = redis.Redis.from_url(f"{REDIS_URL}/{index}")
    client.flushdb()
    yield index
    client.flushdb()
    admin.delete(f"jira_sync:test-claim:{index}")


BROKERS = [pytest.param("redis", id="redis"),
           pytest.param("rabbitmq", id="rabbitmq", marks=pytest.mark.rabbitmq)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_brokers(own_broker={fixture: param}): each test of the module that "
        "uses the broker runs on Redis and on RabbitMQ; own_broker names the parameters "
        "with which the test brings a broker of its own (no RabbitMQ variant then)")
    config.addinivalue_line("markers", "rabbitmq: the variant of a test that runs on RabbitMQ")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (metafunc.definition.get_closest_marker("both_brokers")
            and "broker_url" in metafunc.fixturenames):
        metafunc.parametrize("broker", BROKERS, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A RabbitMQ variant of a test that brings its own broker would repeat the Redis one (or
    start a Redis anyway): skipped, saying why."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("broker") != "rabbitmq":
            continue
        marker = item.get_closest_marker("both_brokers")
        own = (marker.kwargs.get("own_broker") or {}) if marker else {}
        if "own_redis" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(
                reason="Redis only: the test stops and starts a redis-server of its own"))
        elif own and all(params.get(name) == value for name, value in own.items()):
            item.add_marker(pytest.mark.skip(
                reason=f"with {own} the test runs on a broker of its own, as on Redis"))


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """Which broker this test runs on: Redis, unless ``both_brokers`` asks for RabbitMQ."""
    return getattr(request, "param", "redis")


@pytest.fixture(scope="session")
def rabbitmq_vhosts() -> Iterator[list[subprocess.Popen]]:
    """The node checked once per run; the removals of the tests' virtual hosts, which run
    while the next tests do and are awaited at the end."""
    problem = rabbitmq.available()
    if problem:
        pytest.exit(f"RabbitMQ is not usable ({problem}); run `make services`, or leave its "
                    'tests out with -m "not rabbitmq"', returncode=3)
    removals: list[subprocess.Popen] = []
    yield removals
    for removal in removals:
        removal.wait(timeout=60)


@pytest.fixture
def rabbitmq_vhost(rabbitmq_vhosts: list[subprocess.Popen]) -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (removed after it, with its queues)."""
    name = f"jira_sync_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    rabbitmq.add_vhost(name)
    yield name
    rabbitmq_vhosts.append(rabbitmq.delete_vhost_in_background(name))


@pytest.fixture
def broker_url(broker: str, request: pytest.FixtureRequest) -> str:
    """This test's broker, empty: the run's Redis db, flushed, or a RabbitMQ virtual host of
    the test's own."""
    if broker == "rabbitmq":
        return f"{rabbitmq.RABBITMQ_URL}/{request.getfixturevalue('rabbitmq_vhost')}"
    url = f"{REDIS_URL}/{request.getfixturevalue('redis_db')}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def service_env(postgres_url: str, broker_url: str, secret_key: str,
                tmp_path: Path) -> dict[str, str]:
    """Environment for a service process: this test's database, broker and key, nothing else."""
    env = clean_env()
    env.update({
        "JIRA_SYNC_DATABASE_URL": postgres_url,
        "JIRA_SYNC_BROKER_URL": broker_url,
        "JIRA_SYNC_SECRET_KEY": secret_key,
        "JIRA_SYNC_WORKER_CONCURRENCY": "2",
        "JIRA_SYNC_WEB_WORKERS": "1",
        # Off unless a test serves them on a port of its own (two workers would share 9808).
        "JIRA_SYNC_WORKER_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, dict[str, subprocess.Popen], Any]]:
    """A redis-server of this test's own, on a free port, that the test can stop and start
    again (empty, as a broker without persistence comes back)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start() -> subprocess.Popen:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir",
                                    str(tmp_path)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _pings(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start")
            time.sleep(0.1)
        return process

    running = {"process": start()}
    yield port, running, start
    running["process"].kill()
    running["process"].wait()


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failing test that ran service processes shows the end of each one's log: CI keeps
    only what pytest prints, and the cause of a process test's failure is usually there."""
    outcome = yield
    report = outcome.get_result()
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if not report.failed or tmp_path is None:
        return
    for log in sorted(Path(tmp_path).glob("*.log")):
        tail = log.read_text(errors="replace")[-6000:]
        report.sections.append((f"Captured {log.name} (last 6000 characters)", tail))
