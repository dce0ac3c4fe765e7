"""The fault suite's resources: both simulators, the broker (the run's Redis db, or a
redis-server with AOF of the test's own for the broker scenario), and the size and seed of
the run, from ``FAULT_EVENTS``, ``FAULT_KILLS`` and ``FAULT_SEED``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator
from tests.conftest import REDIS_URL
from tests.support.processes import free_port

DEFAULT_SEED = 20261207


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("FAULT_SEED", DEFAULT_SEED))


@pytest.fixture
def size() -> tuple[int, int]:
    """Events of the run and worker kills: the CI subset unless the environment says more."""
    return int(os.environ.get("FAULT_EVENTS", 200)), int(os.environ.get("FAULT_KILLS", 1))


class AofRedis:
    """A redis-server with its append-only file on, on a free port: restarted, it comes back
    with what it held."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return process
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.1)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.process = self._start()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The run's Redis db, flushed; the broker scenario's own AOF redis-server."""
    scenario = request.node.callspec.params["scenario"]
    if scenario.own_broker:
        own = AofRedis(tmp_path)
        request.node.aof_redis = own
        yield own.url
        own.stop()
        return
    url = f"{REDIS_URL}/{request.getfixturevalue('redis_db')}"
    redis.Redis.from_url(url).flushdb()
    yield url


@pytest.fixture
def jira(seed: int) -> Iterator[object]:
    with running_simulator(SimulatorConfig(deployment="cloud", index_lag_ms=0,
                                           seed=seed)) as sim:
        yield sim


@pytest.fixture
def qalita(broker_url: str) -> Iterator[object]:
    with running_qalita_simulator(QalitaSimulatorConfig(broker_url=broker_url)) as sim:
        yield sim
