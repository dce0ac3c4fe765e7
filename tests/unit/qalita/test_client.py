"""The QALITA adapter against recorded HTTP: paths, headers, bodies and every error mapping."""

from __future__ import annotations

import time

import pytest
import requests
import responses
from responses import matchers

from jira_sync.qalita import QalitaClient
from jira_sync.remote import (
    AuthError,
    NotFound,
    PermanentError,
    RateLimited,
    RetryPolicy,
    TransientError,
)

BASE = "https://qalita.test"
TOKEN = "tok-very-secret-42"
POLICY = RetryPolicy(base_seconds=0.01, cap_seconds=0.02, timeout=(1.5, 7.0))
ISSUE = {"id": 7, "version": 3, "title": "Orders table is stale", "status": "open"}


@pytest.fixture
def client() -> QalitaClient:
    return QalitaClient(BASE + "/", TOKEN, policy=POLICY)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def _sent(mocked, index: int = 0) -> requests.PreparedRequest:
    return mocked.calls[index].request


def _assert_read_headers(request: requests.PreparedRequest) -> None:
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "X-Qalita-Origin" not in request.headers
    assert request.req_kwargs["timeout"] == (1.5, 7.0)


def _assert_write_headers(request: requests.PreparedRequest) -> None:
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Qalita-Origin"] == "jira-sync"
    assert request.req_kwargs["timeout"] == (1.5, 7.0)


# Each call: method, path, headers, body.

def test_get_issue(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", json=ISSUE)
    assert client.get_issue(7) == ISSUE
    _assert_read_headers(_sent(mocked))


@pytest.mark.parametrize("status", [204, 404])
def test_get_issue_that_is_gone_is_none(client, mocked, status):
    mocked.get(f"{BASE}/api/v2/issues/7", status=status,
               json={"detail": "Issue not found"} if status == 404 else None)
    assert client.get_issue(7) is None
    assert len(mocked.calls) == 1


def test_list_issues_sends_offset_and_limit(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues", json=[ISSUE],
               match=[matchers.query_param_matcher({"offset": "20", "limit": "10"})])
    assert client.list_issues(20, 10) == [ISSUE]
    _assert_read_headers(_sent(mocked))


def test_list_issues_refuses_an_envelope(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues", json={"items": [ISSUE]})
    with pytest.raises(PermanentError, match="expected a JSON array"):
        client.list_issues(0, 10)


def test_iter_issues_pages_until_a_short_page(client, mocked):
    pages = {0: [{"id": 1}, {"id": 2}], 2: [{"id": 3}, {"id": 4}], 4: [{"id": 5}]}
    for offset, page in pages.items():
        mocked.get(f"{BASE}/api/v2/issues", json=page, match=[
            matchers.query_param_matcher({"offset": str(offset), "limit": "2"})])
    assert [issue["id"] for issue in client.iter_issues(page_size=2)] == [1, 2, 3, 4, 5]
    assert len(mocked.calls) == 3


def test_iter_issues_stops_on_an_empty_page(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues", json=[{"id": 1}],
               match=[matchers.query_param_matcher({"offset": "0", "limit": "1"})])
    mocked.get(f"{BASE}/api/v2/issues", json=[],
               match=[matchers.query_param_matcher({"offset": "1", "limit": "1"})])
    assert [issue["id"] for issue in client.iter_issues(page_size=1)] == [1]


def test_update_issue_puts_only_the_changes(client, mocked):
    changes = {"status": "resolved", "labels": ["a", "b"], "assignee_email": None}
    mocked.put(f"{BASE}/api/v2/issues/7", json={**ISSUE, "status": "resolved"},
               match=[matchers.json_params_matcher(changes)])
    client.update_issue(7, changes)
    _assert_write_headers(_sent(mocked))


@pytest.mark.parametrize("changes", [{"status": "resolved", "severity": "high"}, {}])
def test_update_issue_rejects_other_fields_before_sending(client, mocked, changes):
    with pytest.raises(ValueError):
        client.update_issue(7, changes)
    assert len(mocked.calls) == 0


def test_add_comment_returns_the_new_id(client, mocked):
    body = {"body": "root cause found", "external_id": "jira:10042", "author_name": "Bo"}
    mocked.post(f"{BASE}/api/v2/issues/7/comments", status=201, json={"id": 991},
                match=[matchers.json_params_matcher(body)])
    assert client.add_comment(7, "root cause found", "jira:10042", "Bo") == 991
    _assert_write_headers(_sent(mocked))


def test_add_comment_without_an_id_in_the_answer_may_have_been_applied(client, mocked):
    mocked.post(f"{BASE}/api/v2/issues/7/comments", status=201, json={"ok": True})
    with pytest.raises(PermanentError) as caught:
        client.add_comment(7, "x", "jira:1", "Bo")
    assert caught.value.maybe_applied is True


def test_edit_comment(client, mocked):
    mocked.put(f"{BASE}/api/v2/issues/7/comments/991", json={"id": 991, "body": "edited"},
               match=[matchers.json_params_matcher({"body": "edited"})])
    client.edit_comment(7, 991, "edited")
    _assert_write_headers(_sent(mocked))


@pytest.mark.parametrize("status", [204, 404])
def test_delete_comment_counts_gone_as_done(client, mocked, status):
    mocked.delete(f"{BASE}/api/v2/issues/7/comments/991", status=status)
    client.delete_comment(7, 991)
    _assert_write_headers(_sent(mocked))
    assert _sent(mocked).body is None


# Error mapping.

def test_401_is_an_auth_error_and_not_retried(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", status=401, json={"detail": "Not authenticated"})
    with pytest.raises(AuthError, match="Not authenticated"):
        client.get_issue(7)
    assert len(mocked.calls) == 1


def test_422_carries_the_validation_message_and_is_not_retried(client, mocked):
    detail = [{"loc": ["body", "status"], "msg": "value is not a valid enumeration member",
               "type": "type_error.enum"}]
    mocked.put(f"{BASE}/api/v2/issues/7", status=422, json={"detail": detail})
    with pytest.raises(PermanentError) as caught:
        client.update_issue(7, {"status": "closed"})
    assert not isinstance(caught.value, TransientError)
    assert caught.value.status == 422
    assert "status: value is not a valid enumeration member" in str(caught.value)
    assert "PUT /api/v2/issues/7" in str(caught.value)
    assert len(mocked.calls) == 1


def test_404_on_a_write_is_not_found(client, mocked):
    mocked.put(f"{BASE}/api/v2/issues/7", status=404, json={"detail": "Issue not found"})
    with pytest.raises(NotFound, match="Issue not found"):
        client.update_issue(7, {"title": "t"})


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_get_retries_transient_failures_then_succeeds(client, mocked, status):
    mocked.get(f"{BASE}/api/v2/issues/7", status=status, body="<html>busy</html>",
               content_type="text/html")
    mocked.get(f"{BASE}/api/v2/issues/7", json=ISSUE)
    assert client.get_issue(7) == ISSUE
    assert len(mocked.calls) == 2


def test_put_retries_a_503_then_succeeds(client, mocked):
    mocked.put(f"{BASE}/api/v2/issues/7", status=503, json={"detail": "maintenance"})
    mocked.put(f"{BASE}/api/v2/issues/7", json=ISSUE)
    client.update_issue(7, {"title": "t"})
    assert len(mocked.calls) == 2


def test_delete_retries_a_503_then_succeeds(client, mocked):
    mocked.delete(f"{BASE}/api/v2/issues/7/comments/1", status=503)
    mocked.delete(f"{BASE}/api/v2/issues/7/comments/1", status=204)
    client.delete_comment(7, 1)
    assert len(mocked.calls) == 2


def test_transient_failures_that_persist_reach_the_caller(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", status=503, json={"detail": "down"})
    with pytest.raises(TransientError, match="HTTP 503"):
        client.get_issue(7)
    assert len(mocked.calls) == POLICY.max_tries


def test_comment_post_is_not_retried_after_a_503(client, mocked):
    mocked.post(f"{BASE}/api/v2/issues/7/comments", status=503, json={"detail": "busy"})
    with pytest.raises(TransientError) as caught:
        client.add_comment(7, "x", "jira:1", "Bo")
    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1


def test_comment_post_is_retried_after_a_429_it_certainly_did_not_apply(client, mocked):
    mocked.post(f"{BASE}/api/v2/issues/7/comments", status=429, headers={"Retry-After": "0"})
    mocked.post(f"{BASE}/api/v2/issues/7/comments", status=201, json={"id": 5})
    assert client.add_comment(7, "x", "jira:1", "Bo") == 5
    assert len(mocked.calls) == 2


def test_a_short_retry_after_is_waited_inline(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", status=429, headers={"Retry-After": "0.2"})
    mocked.get(f"{BASE}/api/v2/issues/7", json=ISSUE)
    started = time.monotonic()
    assert client.get_issue(7) == ISSUE
    assert time.monotonic() - started >= 0.2


def test_a_long_retry_after_is_handed_to_the_caller(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", status=429, headers={"Retry-After": "120"},
               json={"detail": "Too many requests"})
    with pytest.raises(RateLimited) as caught:
        client.get_issue(7)
    assert caught.value.retry_after == 120
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_an_html_200_is_a_clear_permanent_error(client, mocked, method):
    mocked.add(method, f"{BASE}/api/v2/issues/7", status=200,
               body="<html><form>Sign in</form></html>", content_type="text/html; charset=utf-8")
    with pytest.raises(PermanentError) as caught:
        if method == "GET":
            client.get_issue(7)
        else:
            client.update_issue(7, {"title": "t"})
    reason = str(caught.value)
    assert "answered 200 with a non-JSON body (text/html)" in reason
    assert "SSO or proxy page" in reason
    assert "QALITA_API_URL" in reason
    assert len(mocked.calls) == 1


def test_a_connection_failure_is_transient(client, mocked):
    mocked.get(f"{BASE}/api/v2/issues/7", body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError, match="connection failed"):
        client.get_issue(7)


# The token never leaks.

@pytest.mark.parametrize("status, kwargs", [
    (401, {"json": {"detail": f"token {TOKEN} expired"}}),
    (422, {"json": {"detail": [{"loc": ["header", TOKEN], "msg": f"bad {TOKEN}"}]}}),
    (503, {"body": f"upstream saw Authorization: Bearer {TOKEN}", "content_type": "text/plain"}),
    (200, {"body": f"<html>Bearer {TOKEN}</html>", "content_type": "text/html"}),
])
def test_the_token_is_never_in_an_error(client, mocked, status, kwargs):
    mocked.get(f"{BASE}/api/v2/issues/7", status=status, **kwargs)
    with pytest.raises((PermanentError, TransientError)) as caught:
        client.get_issue(7)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.args)
