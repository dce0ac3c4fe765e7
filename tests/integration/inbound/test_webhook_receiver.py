"""The Jira webhook receiver through the Flask app on the real Postgres and Redis: who may
deliver (signature, token URL, allowlist), what is stored, and the answers Jira acts on."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from jira_sync.crypto import SecretBox
from jira_sync.deliveries import new_token
from jira_sync.store.models import InboxEvent, Integration
from tests.integration.inbound.conftest import SECRET
from tests.support.processes import closed_port
from tests.support.stack import eventually

pytestmark = pytest.mark.integration
PATH = "/api/v2/integrations/jira/webhook"

FIXTURES = Path(__file__).parents[2] / "fixtures" / "jira" / "webhooks"


def signature(body: bytes, secret: str = SECRET, method: str = "sha256") -> str:
    return f"{method}=" + hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


def delivery(issue_id: str = "10001", host: str = "acme.atlassian.net", **extra) -> dict:
    return {"timestamp": 1777122314106, "webhookEvent": "jira:issue_updated",
            "issue": {"id": issue_id, "key": "DATA-1",
                      "self": f"https://{host}/rest/api/2/issue/{issue_id}", "fields": {}},
            "changelog": {"id": "10100", "items": []}, **extra}


def post(client, payload, *, secret: str | None = SECRET, path: str = PATH,
         headers: dict | None = None, **kwargs):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": kwargs.pop("identifier", None) or "id-1"}
    if secret is not None:
        sent["X-Hub-Signature"] = signature(body, secret)
    sent.update(headers or {})
    return client.post(path, data=body, headers=sent, **kwargs)


def stored(database) -> list[InboxEvent]:
    with database.unit_of_work() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def queued(broker_url: str) -> int:
    return redis.Redis.from_url(broker_url).llen("jira_sync.jira_inbound")


def test_the_documented_test_vector_verifies():
    """Atlassian's example: secret "It's a Secret to Everybody", body "Hello World!"."""
    assert signature(b"Hello World!") == (
        "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9")


def test_a_signed_delivery_is_stored_enqueued_by_id_and_deduplicated(
        make_client, integrations, database, broker_url):
    integration_id = integrations()
    client = make_client()
    first = post(client, delivery(), identifier="abc-1",
                 headers={"X-Atlassian-Webhook-Flow": "Primary"})
    assert first.status_code == 202, first.json
    [row] = stored(database)
    assert (row.source, row.integration_id, row.state) == ("jira", integration_id, "received")
    assert row.event_type == "jira:issue_updated" and row.payload["issue"]["id"] == "10001"
    assert row.headers == {"X-Atlassian-Webhook-Identifier": "abc-1",
                           "X-Atlassian-Webhook-Flow": "Primary"}
    # Published once stored and answered: it follows the answer closely.
    message = json.loads(eventually(lambda: redis.Redis.from_url(broker_url).lindex(
        "jira_sync.jira_inbound", 0), timeout=10))
    assert message["headers"]["task"] == "jira_sync.jira_delivery"
    assert json.loads(__import__("base64").b64decode(message["body"]))[0] == [[row.id]]
    # Jira's retry keeps the identifier: stored once, answered 200, never 409.
    retry = post(client, delivery(), identifier="abc-1",
                 headers={"X-Atlassian-Webhook-Retry": "1"})
    assert retry.status_code == 200 and retry.json["status"] == "duplicate"
    assert len(stored(database)) == 1 and queued(broker_url) == 1


def test_without_an_identifier_the_body_hash_deduplicates(make_client, integrations, database):
    integrations()
    client = make_client()
    body = json.dumps(delivery()).encode()
    for _ in range(2):
        client.post(PATH, data=body, headers={"X-Hub-Signature": signature(body)})
    other = json.dumps(delivery(issue_id="10002")).encode()
    client.post(PATH, data=other, headers={"X-Hub-Signature": signature(other)})
    keys = [row.dedupe_key for row in stored(database)]
    assert len(keys) == 2 and all(":sha256:" in key for key in keys)


@pytest.mark.parametrize("header", [
    None,
    "sha256=" + "0" * 64,
    "md5=" + "0" * 32,
    "sha256",
    "sha256=ZZ",
    "sha256=ünïcode",
])
def test_missing_or_wrong_signatures_are_401_and_store_nothing(make_client, integrations,
                                                               database, broker_url, header):
    integrations()
    client = make_client()
    body = json.dumps(delivery()).encode()
    headers = {} if header is None else {"X-Hub-Signature": header}
    response = client.post(PATH, data=body, headers=headers)
    assert response.status_code == 401
    assert "token URL" in response.json["reason"] and "jira-sync webhook url" in \
        response.json["reason"]
    assert stored(database) == [] and queued(broker_url) == 0


def test_one_changed_byte_or_another_secret_does_not_verify(make_client, integrations,
                                                            database):
    integrations()
    client = make_client()
    body = json.dumps(delivery()).encode()
    tampered = body.replace(b"10001", b"10002")
    assert client.post(PATH, data=tampered,
                       headers={"X-Hub-Signature": signature(body)}).status_code == 401
    assert post(client, delivery(), secret="another secret").status_code == 401
    # The method is read from the header, in any case, and a sha512 signature verifies.
    upper = signature(body).replace("sha256=", "SHA256=")
    assert client.post(PATH, data=body, headers={"X-Hub-Signature": upper}).status_code == 202
    sha512 = json.dumps(delivery(issue_id="3")).encode()
    assert client.post(PATH, data=sha512, headers={
        "X-Hub-Signature": signature(sha512, method="sha512")}).status_code == 202
    assert len(stored(database)) == 2


def test_a_disabled_integrations_deliveries_are_still_stored(make_client, integrations,
                                                             database):
    integration_id = integrations()
    with database.unit_of_work() as session:
        session.get(Integration, integration_id).enabled = False
    assert post(make_client(), delivery()).status_code == 202
    assert [row.integration_id for row in stored(database)] == [integration_id]


def test_several_integrations_sharing_a_secret_get_the_delivery_of_their_host(
        make_client, integrations, database):
    acme = integrations("acme", base_url="https://acme.atlassian.net")
    other = integrations("other", base_url="https://other.atlassian.net")
    internal = integrations("internal", base_url="https://jira.internal.example")
    client = make_client()
    assert post(client, delivery(host="acme.atlassian.net"), identifier="a").status_code == 202
    assert {r.integration_id for r in stored(database)} == {acme}
    # A Server's self links may name an internal host no base URL has: all of them get it.
    assert post(client, delivery(host="10.1.2.3"), identifier="b").status_code == 202
    assert {r.integration_id for r in stored(database) if r.dedupe_key.endswith(":b")} == \
        {acme, other, internal}


def test_token_urls_for_jira_that_cannot_sign(make_client, integrations, database,
                                              secret_key):
    integration_id = integrations(secret=None)
    with database.unit_of_work() as session:
        token = new_token(session, session.get(Integration, integration_id))
    with database.unit_of_work() as session:
        assert token not in json.dumps(
            [str(v) for v in session.execute(select(Integration.__table__)).one()])
    client = make_client()
    good = post(client, delivery(), secret=None, path=f"{PATH}/{token}")
    assert good.status_code == 202
    wrong = post(client, delivery(), secret=None, path=f"{PATH}/{token[:-1]}x", identifier="2")
    assert wrong.status_code == 401 and "token" in wrong.json["reason"]
    # Without a secret, the signed endpoint cannot be used: there is nothing to verify with.
    assert post(client, delivery(), identifier="3").status_code == 401
    assert [row.integration_id for row in stored(database)] == [integration_id]


def test_the_ip_allowlist_and_trusted_proxies(make_client, integrations, database):
    integrations(allowlist=("104.192.136.0/21",))
    client = make_client(JIRA_SYNC_TRUSTED_PROXIES="10.0.0.0/8")
    atlassian = {"REMOTE_ADDR": "104.192.137.10"}
    assert post(client, delivery(), environ_base=atlassian).status_code == 202
    refused = post(client, delivery(), identifier="2", environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert refused.status_code == 403 and "8.8.8.8" in refused.json["reason"]
    # Through the trusted proxy, the address it appended counts; a forged one before it not.
    proxied = {"REMOTE_ADDR": "10.1.1.1"}
    assert post(client, delivery(), identifier="3", environ_base=proxied, headers={
        "X-Forwarded-For": "8.8.8.8, 104.192.137.10"}).status_code == 202
    assert post(client, delivery(), identifier="4", environ_base=proxied, headers={
        "X-Forwarded-For": "104.192.137.10, 8.8.8.8"}).status_code == 403
    # An untrusted peer's X-Forwarded-For is ignored.
    assert post(client, delivery(), identifier="5", environ_base={"REMOTE_ADDR": "8.8.4.4"},
                headers={"X-Forwarded-For": "104.192.137.10"}).status_code == 403
    assert len(stored(database)) == 2


def test_checks_come_in_order_size_then_sender_then_json(make_client, integrations,
                                                        database):
    integrations()
    client = make_client(JIRA_SYNC_WEBHOOK_MAX_BYTES="2048")
    big = b"{" + b" " * 4096 + b"}"
    assert client.post(PATH, data=big).status_code == 413  # unsigned, but too big first
    assert client.post(PATH, data=b"[1, 2]").status_code == 401
    for body in (b"[1, 2]", b"not json", b'{"a": NaN}', b"\xff\xfe", b"[" * 1000 + b"]" * 1000):
        response = client.post(PATH, data=body, headers={"X-Hub-Signature": signature(body)})
        assert response.status_code == 400, body[:20]
    assert stored(database) == []


def test_hostile_json_objects_are_stored_not_refused(make_client, integrations, database):
    integrations()
    client = make_client()
    hostile = delivery(comment={"id": "1", "body": "nul \u0000 and \ud800 half"})
    body = json.dumps(hostile).encode()
    response = client.post(PATH, data=body, headers={"X-Hub-Signature": signature(body)})
    assert response.status_code == 202
    assert stored(database)[0].payload["comment"]["body"] == "nul \u2400 and \ufffd half"


def test_bodies_are_stored_as_parsed_whatever_their_encoding(make_client, integrations,
                                                             database):
    """The inbox keeps a UTF-8 body as it came, so what Python parsed and what the JSON
    column holds must agree for every encoding json reads, and for numbers Postgres would
    refuse or give back in a form Python cannot read."""
    integrations()
    client = make_client()
    text = json.dumps(delivery(comment={"id": "1", "body": "é \U0001d54f"}),
                      ensure_ascii=False)
    bodies = [text.encode("utf-16"), text.encode("utf-32-le"), b"\xef\xbb\xbf" + text.encode(),
              text.encode()]
    numbers = {"1e400": "inf", "1e4400": "inf", "1e-20000": 0.0, "12.5e3": 12500.0,
               "1" * 302 + ".5": float("1" * 302 + ".5"), "7": 7}
    bodies += [text.replace('"1"', number).encode() for number in numbers]
    for n, body in enumerate(bodies):
        response = post(client, body, identifier=f"id-{n}")
        assert response.status_code == 202, (n, response.json)
    comments = [row.payload["comment"] for row in stored(database)]  # as the worker reads
    assert [comment["body"] for comment in comments] == ["é \U0001d54f"] * len(bodies)
    # jsonb keeps a number's value, not its notation: 1.1e301 may come back as an integer.
    assert [value if isinstance(value, str) else float(value)
            for value in (comment["id"] for comment in comments[4:])] == \
        [value if isinstance(value, str) else float(value) for value in numbers.values()]


def test_an_unreachable_database_is_503_so_jira_retries(make_client, integrations):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nothing"
    response = post(make_client(url), delivery())
    assert response.status_code == 503 and "sends it again" in response.json["reason"]


def test_an_unreachable_broker_still_answers_2xx_once_stored(make_client, integrations,
                                                             database):
    integrations()
    client = make_client(JIRA_SYNC_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0")
    assert post(client, delivery()).status_code == 202
    assert [row.state for row in stored(database)] == ["received"]


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_captured_body_is_accepted_when_signed(make_client, integrations, database,
                                                     fixture):
    integrations()
    body = (FIXTURES / fixture).read_bytes()
    response = make_client().post(PATH, data=body, headers={"X-Hub-Signature": signature(body)})
    assert response.status_code == 202, response.json
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 1


@pytest.mark.parametrize("linked", [True, False], ids=["linked", "unlinked"])
@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_captured_body_is_processed_by_a_worker(make_client, integrations, database,
                                                      secret_key, fixture, linked):
    """Stored, then folded by the worker's code: applied to its link, or logged as unlinked
    or ignored; never a dead letter."""
    from jira_sync.store.models import DeadLetter, IssueLink, LogEntry
    from jira_sync.sync.context import SyncContext
    from jira_sync.sync.jira_changes import receive_deliveries

    integration_id = integrations()
    body = (FIXTURES / fixture).read_bytes()
    issue_id = json.loads(body)["issue"]["id"]
    if linked:
        with database.unit_of_work() as session:
            session.add(IssueLink(integration_id=integration_id, tenant="default",
                                  qalita_issue_id=1, jira_issue_id=issue_id,
                                  jira_issue_key="X-1", state="linked", written={},
                                  managed_labels=[], jira_view={}))
    assert make_client().post(PATH, data=body, headers={
        "X-Hub-Signature": signature(body)}).status_code == 202
    ctx = SyncContext(database=database, box=SecretBox((secret_key,)), debounce_seconds=0)
    receive_deliveries(ctx, [row.id for row in stored(database)])
    with database.unit_of_work() as session:
        assert [row.state for row in session.scalars(select(InboxEvent))] == ["processed"]
        assert session.scalars(select(DeadLetter)).all() == []
        decisions = set(session.scalars(select(LogEntry.decision)))
    if linked:
        assert decisions & {"accepted", "stale", "echo", "ignored", "unchanged"}, decisions
    else:
        assert decisions == {"unlinked"}
