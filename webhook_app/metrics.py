"""``GET /metrics``: the gauges read from the database at scrape time
(``jira_sync.store.gauges``); the workers' own counters are on their metrics port."""

from __future__ import annotations

from flask import Flask, Response
from prometheus_client import CollectorRegistry, generate_latest

from jira_sync.store.gauges import StoreCollector


def register(app: Flask) -> None:
    registry = CollectorRegistry()
    registry.register(StoreCollector(app.extensions["jira_sync"]["database"]))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
