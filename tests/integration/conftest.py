"""The two simulators as most integration tests want them; a test changes them with an
indirect parameter (``@pytest.mark.parametrize("jira", ["server"], indirect=True)``) or
defines its own fixture of the same name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from jira_sync.broker import transport_options
from jira_sync.simulators.jira import SimulatorConfig, running_simulator
from jira_sync.simulators.qalita import QalitaSimulatorConfig, running_qalita_simulator


@pytest.fixture
def jira(request: pytest.FixtureRequest) -> Iterator[object]:
    """The Jira simulator: Cloud unless the parameter names the deployment; new issues are
    searchable at once."""
    deployment = getattr(request, "param", "cloud")
    with running_simulator(SimulatorConfig(deployment=deployment, index_lag_ms=0)) as sim:
        yield sim


@pytest.fixture
def qalita(request: pytest.FixtureRequest, broker_url: str) -> Iterator[object]:
    """The QALITA simulator, publishing its events on the test's broker unless the parameter
    is False (then only what a test or an operator asks for happens)."""
    publishing = getattr(request, "param", True)
    config = QalitaSimulatorConfig(broker_url=broker_url if publishing else None)
    with running_qalita_simulator(config) as sim:
        yield sim


@pytest.fixture
def producer(broker_url: str) -> Iterator[Celery]:
    """A send-only Celery app on the test's broker, as web and the commands make one
    (jira_sync/broker.py's transport options)."""
    app = Celery("test-producer", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = transport_options(broker_url)
    yield app
    app.close()
