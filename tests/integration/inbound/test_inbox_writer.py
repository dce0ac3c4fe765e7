"""The web's group commit on a real Postgres: deliveries waiting together share a
transaction, each caller learns only its own outcome, and nothing is stored twice."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from jira_sync import deliveries
from jira_sync.inbox_writer import InboxWriter
from jira_sync.store.db import Database
from jira_sync.store.models import InboxEvent
from tests.support.processes import free_port
from tests.support.stack import eventually

pytestmark = pytest.mark.integration


def row(integration_id: int, key: str | None = None) -> dict[str, Any]:
    target = deliveries.Target(integration_id, "default", None, b"s", None)
    payload = {"webhookEvent": "jira:issue_updated", "issue": {"id": "10001"}}
    return deliveries.inbox_rows([target], payload, {deliveries.IDENTIFIER_HEADER:
                                                     key or str(uuid.uuid4())},
                                 json.dumps(payload).encode())[0]


class Gate:
    """``deliveries.insert_new`` that holds its first call until opened, so the stores made
    meanwhile queue up behind it; counts the transactions."""

    def __init__(self) -> None:
        self.open, self.entered, self.calls = threading.Event(), threading.Event(), []

    def __call__(self, connection: Any, rows: Any) -> list[tuple[int, str]]:
        self.calls.append(len(rows))
        self.entered.set()
        self.open.wait(10)
        return deliveries.insert_new(connection, rows)


def in_threads(writer: InboxWriter, rows: list[dict[str, Any]]
               ) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = [None] * len(rows)

    def store(n: int) -> None:
        try:
            results[n] = writer.store([rows[n]])
        except Exception as exc:
            results[n] = exc

    threads = [threading.Thread(target=store, args=(n,)) for n in range(len(rows))]
    for thread in threads:
        thread.start()
    return threads, results


def held(writer: InboxWriter, gate: Gate, rows: list[dict[str, Any]]) -> list[Any]:
    """Store a first row and, while its transaction is held open, ``rows`` concurrently."""
    first, _ = in_threads(writer, [row(rows[0]["integration_id"])])
    assert gate.entered.wait(10)
    threads, results = in_threads(writer, rows)
    while len(writer._waiting) < len(rows):  # all queued behind the held transaction
        threading.Event().wait(0.01)
    gate.open.set()
    for thread in [*first, *threads]:
        thread.join(10)
    return results


def count(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent))


def test_deliveries_waiting_together_share_one_transaction(database, integrations):
    integration_id = integrations()
    gate, published = Gate(), []
    writer = InboxWriter(database, gate, published.extend)
    results = held(writer, gate, [row(integration_id) for _ in range(20)])
    assert all(isinstance(ids, list) and len(ids) == 1 for ids in results), results
    assert gate.calls == [1, 20]
    assert count(database) == 21
    eventually(lambda: len(set(published)) == 21, timeout=10)
    assert {i for ids in results for i in ids} <= set(published)


def test_the_same_delivery_twice_in_a_batch_is_stored_once(database, integrations):
    integration_id = integrations()
    gate = Gate()
    writer = InboxWriter(database, gate, lambda ids: None)
    results = held(writer, gate, [row(integration_id, "same"), row(integration_id, "same")])
    assert sorted(len(ids) for ids in results) == [0, 1]
    assert count(database) == 2
    assert writer.store([row(integration_id, "same")]) == []  # and later still a duplicate


def test_one_bad_row_fails_alone(database, integrations):
    integration_id = integrations()
    gate = Gate()
    writer = InboxWriter(database, gate, lambda ids: None)
    results = held(writer, gate, [row(integration_id), row(integration_id + 999),
                                  row(integration_id)])
    assert isinstance(results[1], IntegrityError)
    assert len(results[0]) == 1 and len(results[2]) == 1
    assert count(database) == 3


def test_a_broker_failure_still_answers_stored(database, integrations, caplog):
    integration_id = integrations()

    def down(ids: list[int]) -> None:
        raise ConnectionError("broker down")

    writer = InboxWriter(database, deliveries.insert_new, down)
    assert len(writer.store([row(integration_id)])) == 1  # answered before the publish
    assert count(database) == 1
    eventually(lambda: "could not enqueue them (ConnectionError); the sweep will"
               in caplog.text, timeout=10)


def test_an_unreachable_database_is_every_waiting_callers_error():
    database = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/none")
    writer = InboxWriter(database, deliveries.insert_new, lambda ids: None)
    with pytest.raises(OperationalError):
        writer.store([row(1)])
    database.dispose()


def test_a_connection_the_database_dropped_is_replaced_without_an_error(
        postgres_url, database, integrations):
    integration_id = integrations()
    own = Database(postgres_url, pre_ping=False)
    writer = InboxWriter(own, deliveries.insert_new, lambda ids: None)
    assert len(writer.store([row(integration_id)])) == 1
    with database.unit_of_work() as session:  # what a database restart does to it
        session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    assert len(writer.store([row(integration_id)])) == 1
    assert count(database) == 2
    own.dispose()
