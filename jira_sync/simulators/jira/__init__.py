"""A faithful Jira simulator (Cloud REST v3 or Server/DC REST v2) for tests, demo and benchmarks.

It refuses what real Jira refuses, lags its search index, limits its rate, fails on purpose
(also after applying a change) and delivers webhooks at least once, unordered on request.
"""

from jira_sync.simulators.jira.app import make_app, simulator_of
from jira_sync.simulators.jira.config import (
    FieldDef,
    ProjectDef,
    SimulatorConfig,
    StatusDef,
    TransitionDef,
    UserDef,
)
from jira_sync.simulators.jira.server import running_simulator, serve

__all__ = [
    "FieldDef",
    "ProjectDef",
    "SimulatorConfig",
    "StatusDef",
    "TransitionDef",
    "UserDef",
    "make_app",
    "running_simulator",
    "serve",
    "simulator_of",
]
