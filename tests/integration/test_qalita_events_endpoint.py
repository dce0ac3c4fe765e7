"""``POST /api/v2/integrations/qalita/events`` through the Flask app on the real Postgres."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from config.settings import load
from jira_sync.store.models import InboxEvent, IssueLink
from tests.support.processes import closed_port
from tests.support.sync import bootstrap, qalita_event
from webhook_app import create_app

pytestmark = pytest.mark.integration
PATH = "/api/v2/integrations/qalita/events"
SECRET = "events-secret"


@pytest.fixture
def make_client(secret_key, broker_url):
    apps = []

    def make(database_url: str, **extra: str):
        env = {"JIRA_SYNC_DATABASE_URL": database_url, "JIRA_SYNC_BROKER_URL": broker_url,
               "JIRA_SYNC_SECRET_KEY": secret_key, "QALITA_EVENTS_SECRET": SECRET,
               "JIRA_SYNC_DEBOUNCE_SECONDS": "60", **extra}
        app = create_app(load(env))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["jira_sync"]["database"].dispose()


@pytest.fixture
def served(database, secret_key):
    from jira_sync.crypto import SecretBox
    from jira_sync.integrations import upsert_from_env

    with database.unit_of_work() as session:
        upsert_from_env(session, bootstrap("http://127.0.0.1:9", "cloud"),
                        SecretBox((secret_key,)))
    return database


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Qalita-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def post(client, payload, secret: str = SECRET):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(PATH, data=body, headers=signed(body, secret))


def test_a_signed_event_is_stored_and_its_link_marked_due(make_client, served, postgres_url):
    client = make_client(postgres_url)
    event = qalita_event(4211)
    response = post(client, event)
    assert response.status_code == 202 and response.json["event_id"] == event["event_id"]
    again = post(client, event)
    assert again.status_code == 202
    with served.unit_of_work() as session:
        assert session.scalars(select(InboxEvent.state)).all() == ["processed"]
        link = session.scalars(select(IssueLink)).one()
    assert link.qalita_issue_id == 4211 and link.due_at is not None


def test_without_a_configured_secret_everything_is_refused_with_the_reason(
        make_client, postgres_url):
    client = make_client(postgres_url, QALITA_EVENTS_SECRET="")
    response = post(client, qalita_event(1))
    assert response.status_code == 401 and "QALITA_EVENTS_SECRET" in response.json["reason"]


@pytest.mark.parametrize("headers", [{}, {"X-Qalita-Signature": "sha256=00"},
                                     {"X-Qalita-Signature": "md5=abc"},
                                     {"X-Qalita-Signature": "sha256=\u00e9\u00e9"}])
def test_a_missing_or_wrong_signature_is_401(make_client, postgres_url, headers):
    response = make_client(postgres_url).post(PATH, data=b"{}", headers=headers)
    assert response.status_code == 401 and "X-Qalita-Signature" in response.json["reason"]


def test_a_body_signed_with_another_secret_is_401(make_client, postgres_url):
    assert post(make_client(postgres_url), qalita_event(1), secret="other").status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"',
                                  b"[" * 100_000, b'{"schema": NaN}'])
def test_a_body_that_is_not_an_event_object_is_400(make_client, postgres_url, body):
    response = post(make_client(postgres_url), body)
    assert response.status_code == 400 and response.json["reason"]


def test_an_invalid_event_is_400_with_the_validation_errors(make_client, postgres_url):
    event = qalita_event(1)
    del event["issue"]["title"]
    event["issue"]["version"] = "x"
    response = post(make_client(postgres_url), event)
    assert response.status_code == 400
    assert "issue" in response.json["errors"] and "version" in response.json["reason"]


def test_over_one_mebibyte_is_413(make_client, postgres_url):
    body = json.dumps(qalita_event(1, description="d" * (1024 * 1024))).encode()
    response = post(make_client(postgres_url), body)
    assert response.status_code == 413


def test_an_unreachable_database_is_503_so_the_sender_retries(make_client):
    client = make_client(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/none")
    response = post(client, qalita_event(1))
    assert response.status_code == 503 and "send it again" in response.json["reason"]


def test_an_unreachable_broker_still_accepts_what_was_stored(make_client, served, postgres_url):
    client = make_client(postgres_url,
                         JIRA_SYNC_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0")
    event = qalita_event(1)
    assert post(client, event).status_code == 202
    # Stored and folded into its link, which stays due: the sweep sends the lost flush.
    with served.unit_of_work() as session:
        stored = session.execute(select(InboxEvent.dedupe_key, InboxEvent.state)).all()
        due = session.execute(select(IssueLink.qalita_issue_id,
                                     IssueLink.due_at.is_not(None))).all()
    assert stored == [(event["event_id"], "processed")]
    assert due == [(1, True)]
