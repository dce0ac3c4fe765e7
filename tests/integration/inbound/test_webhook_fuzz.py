"""Fuzzing the receiver and the worker's fold: whatever arrives, signed or not, the answer is
a 2xx or a 4xx (never a 500), and every stored delivery ends processed or as a dead letter."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jira_sync.crypto import SecretBox
from jira_sync.store.models import InboxEvent, IssueLink
from jira_sync.sync.context import SyncContext
from jira_sync.sync.jira_changes import receive_deliveries
from tests.integration.inbound.test_webhook_receiver import PATH, SECRET, signature

pytestmark = pytest.mark.integration
FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "jira" / "webhooks").glob("*.json"))
HOSTILE = st.sampled_from(["", "\x00", "\ud800", "'; DROP TABLE inbox; --", "\U0001d54f" * 300,
                           "\u202e", "<script>", "9" * 40, "../../etc/passwd", "NaN"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=50), HOSTILE)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20)
KEYS = ["webhookEvent", "issue", "changelog", "comment", "user", "timestamp",
        "issue_event_type_name", "id", "key", "fields", "items", "fieldId", "toString",
        "fromString", "to", "from", "body", "updated", "labels", "status", "self"]


@st.composite
def mutated(draw) -> object:
    """A captured body with values replaced at random paths."""
    body = json.loads(draw(st.sampled_from(FIXTURES)).read_text())
    for _ in range(draw(st.integers(0, 4))):
        target = body
        for _step in range(draw(st.integers(0, 3))):
            keys = list(target) if isinstance(target, dict) else []
            if not keys or not isinstance(target[keys[0]], dict | list):
                break
            chosen = draw(st.sampled_from(keys))
            if not isinstance(target[chosen], dict):
                break
            target = target[chosen]
        if isinstance(target, dict):
            target[draw(st.sampled_from([*KEYS, *list(target)]))] = draw(values)
    return body


bodies = st.one_of(
    st.binary(max_size=300),
    values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6).map(
        lambda v: json.dumps(v).encode()),
    mutated().map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture
def fuzzing(make_client, integrations, database, secret_key):
    integration_id = integrations()
    with database.unit_of_work() as session:
        # Some bodies name issue ids that are linked, so the fold goes past the lookup.
        for issue_id in ("10001", "10100", "1", "12345"):
            session.add(IssueLink(integration_id=integration_id, tenant="default",
                                  qalita_issue_id=int(issue_id), jira_issue_id=issue_id,
                                  jira_issue_key=f"DATA-{issue_id}", state="linked",
                                  written={}, managed_labels=[], jira_view={}))
    context = SyncContext(database=database, box=SecretBox((secret_key,)), debounce_seconds=0)
    return make_client(), context


def _header(text: str) -> str:
    """What can travel as an HTTP header value at all (latin-1, one line)."""
    return text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ").replace(
        "\r", " ")


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, signed=st.booleans(), identifier=st.one_of(st.none(), st.text(max_size=300)),
       header=st.one_of(st.none(), st.text(max_size=80)))
def test_only_2xx_and_4xx_and_nothing_left_unhandled(fuzzing, database, body, signed,
                                                      identifier, header):
    client, context = fuzzing
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Hub-Signature"] = signature(body)
    elif header is not None:
        headers["X-Hub-Signature"] = _header(header)
    if identifier is not None:
        headers["X-Atlassian-Webhook-Identifier"] = _header(identifier)
    response = client.post(PATH, data=body, headers=headers)
    assert 200 <= response.status_code < 500, (response.status_code, response.json)
    if not signed:
        assert response.status_code in (400, 401, 413) or response.status_code < 300
    with database.unit_of_work() as session:
        waiting = list(session.scalars(select(InboxEvent.id).where(
            InboxEvent.state == "received")))
    receive_deliveries(context, waiting)
    with database.unit_of_work() as session:
        assert session.scalars(select(InboxEvent.id).where(
            InboxEvent.state == "received")).all() == []


def test_the_signature_helper_is_the_one_jira_uses():
    assert signature(b"x") == "sha256=" + hmac.new(SECRET.encode(), b"x",
                                                    hashlib.sha256).hexdigest()
