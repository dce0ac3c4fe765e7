"""The store on real Postgres: sealed secrets, inbox dedupe, the concurrent env bootstrap."""

import multiprocessing

import pytest
from sqlalchemy import func, select, text

from config.settings import load
from jira_sync import intake
from jira_sync.crypto import SecretBox
from jira_sync.integrations import TenantLabelCollision, upsert_from_env
from jira_sync.mapping import tenant_label
from jira_sync.store.db import Database
from jira_sync.store.models import DeadLetter, InboxEvent, Integration
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

JIRA_ENV = {
    "JIRA_BASE_URL": "https://acme.atlassian.net", "JIRA_EMAIL": "svc@example.com",
    "JIRA_API_TOKEN": "tok-plaintext-123", "JIRA_WEBHOOK_SECRET": "hook-plaintext-456",
    "QALITA_API_TOKEN": "qalita-plaintext-789", "JIRA_PROJECT_KEY": "DATA",
}


def test_secrets_are_not_readable_in_the_database_row(database, secret_key):
    box = SecretBox((secret_key,))
    with database.unit_of_work() as session:
        upsert_from_env(session, load(JIRA_ENV).jira, box)
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM integrations")).mappings().one()
    dumped = " ".join(str(value) for value in row.values())
    for secret in ("tok-plaintext-123", "hook-plaintext-456", "qalita-plaintext-789"):
        assert secret not in dumped
    assert box.open(row["secrets_sealed"])["api_token"] == "tok-plaintext-123"


def test_environment_values_win_and_other_settings_persist(database, secret_key):
    box = SecretBox((secret_key,))
    with database.unit_of_work() as session:
        upsert_from_env(session, load(JIRA_ENV).jira, box)
    with database.unit_of_work() as session:
        integration = session.scalars(select(Integration)).one()
        integration.options = {"mapping": "set through the admin API"}
        integration.enabled = False
    with database.unit_of_work() as session:
        upsert_from_env(session, load({**JIRA_ENV, "JIRA_PROJECT_KEY": "OPS"}).jira, box)
    with database.unit_of_work() as session:
        integration = session.scalars(select(Integration)).one()
        assert integration.project_key == "OPS"
        assert integration.options == {"mapping": "set through the admin API"}
        assert integration.enabled is False


def test_tenants_whose_labels_collide_are_refused(database, secret_key):
    box = SecretBox((secret_key,))
    assert tenant_label("Acme_EU") == "acme_eu"
    with database.unit_of_work() as session:
        upsert_from_env(session, load({**JIRA_ENV, "JIRA_SYNC_TENANT": "acme-eu"}).jira, box)
    assert tenant_label("acme.eu") == "acme-eu"
    collides = load({**JIRA_ENV, "JIRA_SYNC_TENANT": "ACME-EU"}).jira
    with pytest.raises(TenantLabelCollision, match="acme-eu"), database.unit_of_work() as s:
        upsert_from_env(s, collides, box)


def _bootstrap(url: str, key: str, barrier) -> None:
    database = Database(url)
    barrier.wait()
    with database.unit_of_work() as session:
        upsert_from_env(session, load(JIRA_ENV).jira, SecretBox((key,)))
    database.dispose()


def test_concurrent_bootstraps_give_one_integration(postgres_url, secret_key):
    processes = 8
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    workers = [context.Process(target=_bootstrap, args=(postgres_url, secret_key, barrier))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * processes
    database = Database(postgres_url)
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Integration)) == 1
    database.dispose()


def intake_context(database):
    from cryptography.fernet import Fernet

    from jira_sync.crypto import SecretBox
    from jira_sync.sync.context import SyncContext

    return SyncContext(database=database, box=SecretBox((Fernet.generate_key().decode(),)),
                       debounce_seconds=0.0)


def test_inbox_stores_each_event_id_once_and_holds_it_for_an_unserved_tenant(database):
    from tests.support.sync import qalita_event

    event = qalita_event(1, tenant="acme")
    ctx = intake_context(database)
    for _ in range(2):
        with database.unit_of_work() as session:
            assert intake.receive(session, ctx, [event]) == []
    with database.unit_of_work() as session:
        stored = session.scalars(select(InboxEvent)).one()
        assert (stored.tenant, stored.event_type, stored.state) == ("acme", "issue.created",
                                                                    "waiting")


@pytest.mark.parametrize(("event", "reason"), [
    (["not", "an", "object"], "must be a JSON object"),
    ({"event_type": "issue.created"}, "event_id"),
    ({"event_id": "x" * 256}, "event_id"),
    ({"event_id": "nan", "observed": float("nan")}, "plain JSON"),
    ({"event_id": "nul\x00", "title": "a\x00b"}, "NUL"),
])
def test_invalid_events_become_dead_letters_with_a_reason(database, event, reason):
    with database.unit_of_work() as session:
        intake.receive(session, intake_context(database), [event])
    with database.unit_of_work() as session:
        stored = session.scalars(select(DeadLetter)).one()
        assert reason in stored.reason and stored.kind == "invalid_event"
        assert stored.payload


def test_an_event_whose_processing_fails_is_kept_as_a_dead_letter(database, monkeypatch):
    from tests.support.sync import Harness, qalita_event

    Harness(database, "http://127.0.0.1:9", "cloud")  # an integration serves the tenant

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in handling this event")

    monkeypatch.setattr(intake, "apply_events", broken)
    assert intake.receive_batch(intake_context(database), [qalita_event(1)]) == []
    with database.unit_of_work() as session:
        letter = session.scalars(select(DeadLetter)).one()
    assert letter.kind == "intake_failed" and "a bug in handling" in letter.reason
    assert letter.payload["issue"]["id"] == 1


def test_a_batch_with_an_event_that_trips_a_bug_keeps_only_that_event_as_a_dead_letter(
        database, monkeypatch):
    from jira_sync.store.models import IssueLink
    from tests.support.sync import Harness, qalita_event

    Harness(database, "http://127.0.0.1:9", "cloud")  # an integration serves the tenant
    real = intake.apply_events

    def broken_for_issue_2(session, integration, mappings, events, debounce):
        if any(event.issue.id == 2 for event in events):
            raise RuntimeError("a bug in handling issue 2")
        return real(session, integration, mappings, events, debounce)

    monkeypatch.setattr(intake, "apply_events", broken_for_issue_2)
    dues = intake.receive_batch(intake_context(database), [qalita_event(n) for n in (1, 2, 3)])
    with database.unit_of_work() as session:
        letter = session.scalars(select(DeadLetter)).one()
        linked = sorted(session.scalars(select(IssueLink.qalita_issue_id)))
    assert letter.kind == "intake_failed" and letter.payload["issue"]["id"] == 2
    assert linked == [1, 3] and len(dues) == 2


def test_an_unreachable_database_raises_so_the_task_retries_instead_of_acknowledging():
    from sqlalchemy.exc import OperationalError

    from tests.support.processes import closed_port
    from tests.support.sync import qalita_event

    unreachable = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/none")
    with pytest.raises(OperationalError):
        intake.receive_batch(intake_context(unreachable), [qalita_event(1)])
    unreachable.dispose()


def lock_waits(database: Database) -> int:
    """Statements of this test's database waiting for a lock another transaction holds."""
    with database.unit_of_work() as session:
        return session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                   "wait_event_type = 'Lock' AND datname = current_database()"))


def test_two_batches_sharing_issues_of_two_tenants_in_opposite_orders_do_not_deadlock(
        database, monkeypatch):
    import threading

    from cryptography.fernet import Fernet

    from jira_sync.store.models import IssueLink
    from jira_sync.sync import state
    from jira_sync.sync.context import SyncContext
    from tests.support.sync import bootstrap, qalita_event

    key = Fernet.generate_key().decode()
    with database.unit_of_work() as session:
        for tenant in ("acme", "zeta"):
            upsert_from_env(session, bootstrap("http://127.0.0.1:9", "cloud", tenant=tenant),
                            SecretBox((key,)))
    real = state._links_for
    holding: list[threading.Thread] = []
    both_in = threading.Event()

    def held_links_for(*args):
        links = real(*args)
        if threading.current_thread() not in holding:
            # Its first tenant's links locked: held until the other batch has its own, or
            # waits for these.
            holding.append(threading.current_thread())
            both_in.wait(30)
        return links

    monkeypatch.setattr(state, "_links_for", held_links_for)
    def events(tenant):  # new event ids each time, for the same issues
        return [qalita_event(n, tenant=tenant) for n in (1, 2)]

    errors: list[BaseException] = []

    def run(events):
        ctx = SyncContext(database=database, box=SecretBox((key,)), debounce_seconds=0.0)
        try:
            intake.receive_batch(ctx, events)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(events("acme") + events("zeta"),)),
               threading.Thread(target=run, args=(events("zeta") + events("acme"),))]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(holding) + lock_waits(database) == 2, 30)
    both_in.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(IssueLink)) == 4
