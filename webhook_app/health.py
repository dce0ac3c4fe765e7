"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from jira_sync.readiness import broker_problem, database_problem
from webhook_app import context

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    problems = {
        "database": database_problem(context.database()),
        "broker": broker_problem(context.settings().broker_url),
    }
    checks = {name: problem or "ok" for name, problem in problems.items()}
    failing = [problem for problem in problems.values() if problem]
    if failing:
        return jsonify(status="unavailable", reason="; ".join(failing), checks=checks), 503
    return jsonify(status="ok", checks=checks)
