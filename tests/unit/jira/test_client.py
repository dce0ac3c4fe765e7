"""The Jira client alone, against canned HTTP answers (`responses`): errors, retries, paging."""

import json
import time

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError

from jira_sync.jira.auth import BasicAuth, BearerAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.remote import (
    AuthError,
    NotFound,
    PermanentError,
    RateLimited,
    RetryPolicy,
    TransientError,
)

BASE = "https://acme.atlassian.net"
FAST = RetryPolicy(max_tries=3, base_seconds=0.001, cap_seconds=0.01)


def cloud(**kwargs) -> JiraClient:
    return JiraClient(JiraSite(BASE, "cloud"), BasicAuth("svc@example.com", "tok-secret"),
                      policy=FAST, **kwargs)


def server() -> JiraClient:
    return JiraClient(JiraSite(BASE, "server"), BearerAuth("pat-secret"), policy=FAST)


@responses.activate
def test_cloud_uses_v3_and_basic_auth_server_v2_and_bearer():
    responses.get(f"{BASE}/rest/api/3/myself", json={"accountId": "a"})
    responses.get(f"{BASE}/rest/api/2/myself", json={"name": "svc"})
    assert cloud().myself() == {"accountId": "a"}
    assert server().myself() == {"name": "svc"}
    first, second = responses.calls
    assert first.request.headers["Authorization"].startswith("Basic ")
    assert second.request.headers["Authorization"] == "Bearer pat-secret"


@responses.activate
def test_a_400_is_permanent_not_retried_and_readable():
    responses.post(f"{BASE}/rest/api/3/issue", status=400, json={
        "errorMessages": ["Bad things"],
        "errors": {"summary": "Summary must be less than 255 characters."}})
    with pytest.raises(PermanentError) as caught:
        cloud().create_issue({"summary": "x" * 300})
    assert str(caught.value) == ("create an issue: HTTP 400: Bad things; "
                                 "summary: Summary must be less than 255 characters.")
    assert caught.value.maybe_applied is False
    assert len(responses.calls) == 1


@responses.activate
def test_reads_retry_5xx_then_succeed():
    url = f"{BASE}/rest/api/3/issue/DATA-1"
    responses.get(url, status=503)
    responses.get(url, status=502)
    responses.get(url, json={"id": "1", "key": "DATA-1"})
    assert cloud().get_issue("DATA-1")["key"] == "DATA-1"
    assert len(responses.calls) == 3


@responses.activate
def test_reads_give_up_after_max_tries_as_transient():
    responses.get(f"{BASE}/rest/api/3/issue/DATA-1", status=500)
    with pytest.raises(TransientError):
        cloud().get_issue("DATA-1")
    assert len(responses.calls) == FAST.max_tries


@responses.activate
def test_a_create_that_failed_with_a_5xx_may_be_applied_and_is_not_retried():
    responses.post(f"{BASE}/rest/api/3/issue", status=502)
    with pytest.raises(TransientError) as caught:
        cloud().create_issue({"summary": "s"})
    assert caught.value.maybe_applied is True
    assert len(responses.calls) == 1


@responses.activate
def test_a_dropped_connection_after_sending_may_be_applied():
    responses.post(f"{BASE}/rest/api/3/issue/DATA-1/comment",
                   body=requests.ConnectionError("Connection aborted."))
    with pytest.raises(TransientError) as caught:
        cloud().add_comment("DATA-1", {"type": "doc", "version": 1, "content": []})
    assert caught.value.maybe_applied is True


def test_a_refused_connection_was_never_applied():
    client = JiraClient(JiraSite("http://127.0.0.1:1", "cloud"), BasicAuth("a", "b"),
                        policy=RetryPolicy(max_tries=1))
    with pytest.raises(TransientError) as caught:
        client.create_issue({"summary": "s"})
    assert caught.value.maybe_applied is False


@responses.activate
def test_a_short_retry_after_is_waited_out():
    url = f"{BASE}/rest/api/3/issue/DATA-1"
    responses.put(url, status=429, headers={"Retry-After": "1",
                                            "RateLimit-Reason": "jira-burst-based"})
    responses.put(url, status=204)
    started = time.monotonic()
    cloud().edit_issue("DATA-1", fields={"summary": "s"})
    assert len(responses.calls) == 2
    assert time.monotonic() - started >= 0.95


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_is_a_permanent_error_never_a_silent_success(status):
    responses.put(f"{BASE}/rest/api/3/issue/DATA-1", status=status,
                  headers={"Location": "https://id.atlassian.com/login"})
    with pytest.raises(PermanentError, match=r"redirected to https://id\.atlassian\.com/login"):
        cloud().edit_issue("DATA-1", fields={"summary": "s"})


@responses.activate
def test_a_non_json_success_is_a_permanent_error():
    responses.get(f"{BASE}/rest/api/3/myself", body="<html>login</html>",
                  content_type="text/html")
    with pytest.raises(PermanentError, match=r"non-JSON body \(text/html\)"):
        cloud().myself()


def test_a_token_that_cannot_be_sent_is_permanent_and_not_quoted():
    client = JiraClient(JiraSite(BASE, "server"), BearerAuth("pat-secret\n"), policy=FAST)
    with pytest.raises(PermanentError) as caught:
        client.myself()
    assert "InvalidHeader" in str(caught.value) and caught.value.maybe_applied is False
    assert "pat-secret" not in repr(caught.value) and caught.value.__context__ is None


@responses.activate
def test_ids_from_elsewhere_cannot_reshape_the_path():
    responses.get(f"{BASE}/rest/api/3/issue/1%2F..%2Fmyself%3F", json={"id": "1"})
    cloud().get_issue("1/../myself?")
    assert responses.calls[0].request.url.startswith(
        f"{BASE}/rest/api/3/issue/1%2F..%2Fmyself%3F?")


@responses.activate
def test_a_create_whose_connection_was_refused_is_retried():
    url = f"{BASE}/rest/api/3/issue"
    refused = requests.ConnectionError(NewConnectionError(None, "[Errno 111] Connection refused"))
    responses.post(url, body=refused)
    responses.post(url, status=201, json={"id": "1", "key": "DATA-1"})
    assert cloud().create_issue({"summary": "s"})["key"] == "DATA-1"
    assert len(responses.calls) == 2


@responses.activate
def test_a_long_retry_after_is_handed_to_the_caller():
    responses.put(f"{BASE}/rest/api/3/issue/DATA-1", status=429,
                  headers={"Retry-After": "60", "RateLimit-Reason": "jira-quota-tenant-based"})
    with pytest.raises(RateLimited) as caught:
        cloud().edit_issue("DATA-1", fields={"summary": "s"})
    assert caught.value.retry_after == 60
    assert caught.value.limit_reason == "jira-quota-tenant-based"
    assert "jira-quota-tenant-based" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_409_is_transient():
    url = f"{BASE}/rest/api/3/issue/DATA-1"
    responses.put(url, status=409, json={"errorMessages": ["conflict"]})
    responses.put(url, status=204)
    cloud().edit_issue("DATA-1", update={"labels": [{"add": "x"}]})
    assert json.loads(responses.calls[0].request.body) == {"update": {"labels": [{"add": "x"}]}}


@responses.activate
def test_deletes_are_idempotent():
    responses.delete(f"{BASE}/rest/api/3/issue/DATA-1", status=404,
                     json={"errorMessages": ["Issue does not exist"]})
    responses.delete(f"{BASE}/rest/api/3/issue/DATA-1/comment/5", status=404)
    cloud().delete_issue("DATA-1")
    cloud().delete_comment("DATA-1", "5")


@responses.activate
def test_auth_and_not_found_have_their_own_types_and_never_show_the_token():
    responses.get(f"{BASE}/rest/api/3/myself", status=401, body="Unauthorized")
    responses.get(f"{BASE}/rest/api/3/issue/X-1", status=404, json={"errorMessages": ["gone"]})
    with pytest.raises(AuthError) as caught:
        cloud().myself()
    assert "tok-secret" not in str(caught.value) and "non-JSON" in str(caught.value)
    with pytest.raises(NotFound):
        cloud().get_issue("X-1")


@responses.activate
def test_bulk_create_matches_results_by_position():
    responses.post(f"{BASE}/rest/api/3/issue/bulk", status=201, json={
        "issues": [{"id": "10", "key": "DATA-10"}, {"id": "12", "key": "DATA-12"}],
        "errors": [{"failedElementNumber": 1, "status": 400,
                    "elementErrors": {"errors": {"labels": "no spaces"}}}]})
    result = cloud().bulk_create([{"fields": {}}, {"fields": {}}, {"fields": {}}])
    assert result.created == {0: {"id": "10", "key": "DATA-10"},
                              2: {"id": "12", "key": "DATA-12"}}
    assert result.failed == {1: "HTTP 400: labels: no spaces"}


@responses.activate
def test_bulk_create_where_every_item_failed_is_a_result():
    responses.post(f"{BASE}/rest/api/3/issue/bulk", status=400, json={
        "issues": [], "errors": [{"failedElementNumber": 0, "status": 400,
                                  "elementErrors": {"errorMessages": ["nope"]}}]})
    assert cloud().bulk_create([{"fields": {}}]).failed == {0: "HTTP 400: nope"}


def test_bulk_create_refuses_more_than_fifty():
    with pytest.raises(ValueError):
        cloud().bulk_create([{"fields": {}}] * 51)


@responses.activate
def test_cloud_search_pages_with_next_page_token():
    url = f"{BASE}/rest/api/3/search/jql"
    responses.post(url, json={"issues": [{"id": "1"}], "nextPageToken": "t2", "isLast": False})
    responses.post(url, json={"issues": [{"id": "2"}], "isLast": True})
    assert [i["id"] for i in cloud().search('labels = "x"')] == ["1", "2"]
    assert json.loads(responses.calls[1].request.body)["nextPageToken"] == "t2"


@responses.activate
def test_server_search_pages_with_start_at():
    url = f"{BASE}/rest/api/2/search"
    responses.post(url, json={"issues": [{"id": "1"}], "startAt": 0, "total": 2})
    responses.post(url, json={"issues": [{"id": "2"}], "startAt": 1, "total": 2})
    assert [i["id"] for i in server().search('labels = "x"', page_size=1)] == ["1", "2"]
    assert json.loads(responses.calls[1].request.body)["startAt"] == 1


@responses.activate
def test_find_user_takes_only_an_exact_email_match():
    responses.get(f"{BASE}/rest/api/3/user/search", json=[
        {"accountId": "1", "emailAddress": "ana@example.com.au"},
        {"accountId": "2", "emailAddress": "Ana@Example.com"}])
    client = cloud()
    assert client.find_user("ana@example.com")["accountId"] == "2"
    assert client.user_ref({"accountId": "2"}) == {"accountId": "2"}
    assert server().user_ref({"name": "ana"}) == {"name": "ana"}


@responses.activate
def test_transitions_ask_for_the_screen_fields():
    responses.get(f"{BASE}/rest/api/3/issue/DATA-1/transitions", json={"transitions": []})
    responses.post(f"{BASE}/rest/api/3/issue/DATA-1/transitions", status=204)
    client = cloud()
    assert client.transitions("DATA-1") == []
    client.transition("DATA-1", "31", fields={"resolution": {"name": "Done"}})
    assert "expand=transitions.fields" in responses.calls[0].request.url
    assert json.loads(responses.calls[1].request.body) == {
        "transition": {"id": "31"}, "fields": {"resolution": {"name": "Done"}}}
