"""The gauges operators alert on, read from the tables at every scrape.

Reading the tables instead of counting in memory gives the same answer from every gunicorn
worker and every Celery worker, and survives restarts, which in-process values do not. The
web's ``/metrics`` and the worker's metrics port both serve this collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from jira_sync import heartbeats
from jira_sync.store import stats
from jira_sync.store.db import Database


class StoreCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("jira_sync_database_up", "1 when the database answered the scrape")
        try:
            with self.database.unit_of_work() as session:
                inbox = stats.inbox_by_state(session)
                links = stats.links_by_state(session)
                dead = stats.open_dead_letters(session)
                ages = heartbeats.ages(session)
                lanes = stats.inbound_lanes(session)
                waiting = stats.oldest_waiting_delivery_seconds(session)
                reconciled = stats.reconciliation_ages(session)
                paused = stats.paused_sides(session)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _by_label("jira_sync_inbox_events", "Inbox rows by source and state",
                        ["source", "state"], inbox)
        yield _by_label("jira_sync_issue_links", "Issue links by state", ["state"],
                        links)
        yield GaugeMetricFamily("jira_sync_dead_letters_open",
                                "Dead letters neither replayed, discarded nor resolved",
                                value=dead)
        yield _by_label("jira_sync_queue_heartbeat_age_seconds",
                        "Seconds since a worker last consumed the probe sent through each "
                        "queue", ["queue"], ages)
        yield _by_label("jira_sync_inbound_links",
                        "Links with Jira changes still to write to QALITA, by lane state",
                        ["state"], lanes)
        yield GaugeMetricFamily(
            "jira_sync_jira_delivery_wait_seconds",
            "How long the oldest stored Jira delivery has waited for a worker", value=waiting)
        yield _by_label("jira_sync_reconcile_age_seconds",
                        "Seconds since each integration's last reconciliation sweep",
                        ["tenant"], reconciled)
        yield _by_label("jira_sync_integration_paused",
                        "1 while an integration-wide refusal pauses a side (jira: both "
                        "directions; qalita: Jira to QALITA)", ["tenant", "side"], paused)


def _by_label(name: str, documentation: str, labels: list[str],
              values: Mapping[Any, float]) -> GaugeMetricFamily:
    """A gauge per label value (a tuple of values for several labels)."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family
