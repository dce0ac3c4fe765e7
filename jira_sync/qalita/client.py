"""QALITA's REST API (CONTRACT §5): the only module that knows its paths and verbs.

QALITA publishes no OpenAPI document for issues, so the routes are our best reading of its
conventions; keeping them here means a real instance that differs costs one file. Errors come
out as the types of :mod:`jira_sync.remote`, so the sync layer never looks at status codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from jira_sync import telemetry
from jira_sync.remote import (
    DEFAULT_POLICY,
    NotFound,
    PermanentError,
    RetryPolicy,
    call,
    content_type,
    http_session,
    json_body,
)

ORIGIN = "jira-sync"
UPDATABLE_FIELDS = frozenset({"status", "title", "description", "assignee_email", "labels"})
_ISSUES = "/api/v2/issues"


class QalitaClient:
    """One QALITA instance, reached with one API token.

    Writes carry ``X-Qalita-Origin: jira-sync`` so that QALITA (and whoever reads its events)
    can tell our changes from a user's and no loop starts.
    """

    def __init__(self, base_url: str, token: str, *, session: requests.Session | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._session = session or http_session(self._base_url)
        self._policy = policy

    def get_issue(self, issue_id: int) -> dict[str, Any] | None:
        """The issue, or None when QALITA says it is gone (404, or 204 as it does for no access)."""
        path = f"{_ISSUES}/{issue_id}"
        try:
            response = self._request("GET", path)
        except NotFound:
            return None
        if response.status_code == 204:
            return None
        return self._expect(dict, self._payload(response, f"QALITA GET {path}"), "GET", path)

    def list_issues(self, offset: int, limit: int) -> list[dict[str, Any]]:
        params = {"offset": offset, "limit": limit}
        response = self._request("GET", _ISSUES, params=params)
        if response.status_code == 204:  # QALITA's lists answer 204 when there is nothing.
            return []
        issues = self._expect(list, self._payload(response, f"QALITA GET {_ISSUES}"),
                              "GET", _ISSUES)
        if not all(isinstance(issue, dict) for issue in issues):
            raise PermanentError(f"QALITA GET {_ISSUES}: expected a JSON array of issue objects",
                                 status=response.status_code)
        return issues

    def iter_issues(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every issue, page by page until a short page.

        QALITA offers no cursor, so an issue created or deleted during the walk can shift a
        page; callers that need exactness (drift checks) compare ``version`` afterwards.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        offset = 0
        while True:
            page = self.list_issues(offset, page_size)
            yield from page
            if len(page) < page_size:
                return
            offset += page_size

    def update_issue(self, issue_id: int, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """A partial PUT of the changed fields only, so a concurrent QALITA edit of another
        field survives; returns the issue as QALITA answers it, when it does."""
        unknown = sorted(set(changes) - UPDATABLE_FIELDS)
        if unknown:
            raise ValueError(f"QALITA issues cannot be updated on {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(UPDATABLE_FIELDS))}")
        if not changes:
            raise ValueError("an issue update needs at least one changed field")
        path = f"{_ISSUES}/{issue_id}"
        response = self._request("PUT", path, body=dict(changes))
        self._check_body(response, "PUT", path)
        answer = self._payload(response, f"QALITA PUT {path}") if response.content.strip() \
            else None
        return answer if isinstance(answer, dict) else None

    def add_comment(self, issue_id: int, body: str, external_id: str, author_name: str) -> int:
        """Post a comment and return QALITA's id for it.

        Not retried once it may have reached QALITA (``maybe_applied``): QALITA does not
        deduplicate on ``external_id``, so a blind retry could post the comment twice.
        """
        path = f"{_ISSUES}/{issue_id}/comments"
        payload = {"body": body, "external_id": external_id, "author_name": author_name}
        response = self._request("POST", path, body=payload, idempotent=False)
        created = self._payload(response, f"QALITA POST {path}")
        comment_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(comment_id, int) or isinstance(comment_id, bool):
            raise PermanentError(f"QALITA POST {path}: the answer carries no comment id",
                                 status=response.status_code, maybe_applied=True)
        return comment_id

    def edit_comment(self, issue_id: int, comment_id: int, body: str) -> None:
        path = f"{_ISSUES}/{issue_id}/comments/{comment_id}"
        self._check_body(self._request("PUT", path, body={"body": body}), "PUT", path)

    def delete_comment(self, issue_id: int, comment_id: int) -> None:
        """Delete a comment; one that is already gone counts as deleted."""
        path = f"{_ISSUES}/{issue_id}/comments/{comment_id}"
        try:
            response = self._request("DELETE", path)
        except NotFound:
            return
        self._check_body(response, "DELETE", path)

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 body: Any = None, idempotent: bool = True) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if method != "GET":
            headers["X-Qalita-Origin"] = ORIGIN
        url = self._base_url + path

        def send() -> requests.Response:
            try:
                response = self._session.request(method, url, params=params, json=body,
                                                 headers=headers, timeout=self._policy.timeout)
            except requests.RequestException:
                telemetry.qalita_call(method, path, None)
                raise
            telemetry.qalita_call(method, path, response.status_code)
            return response

        return call(send, what=f"QALITA {method} {path}", idempotent=idempotent,
                    reason_of=self._reason_of, policy=self._policy)

    def _reason_of(self, response: requests.Response) -> str:
        return self._redact(_reason(response))

    def _redact(self, text: str) -> str:
        """A proxy or error page may echo the request headers back; the token stays out."""
        return text.replace(self._token, "***") if self._token else text

    def _payload(self, response: requests.Response, what: str) -> Any:
        return json_body(response, what, service="QALITA",
                         hint="an SSO or proxy page? check QALITA_API_URL", redact=self._redact)

    def _check_body(self, response: requests.Response, method: str, path: str) -> None:
        """Writes may answer with no body; a body that is there must be JSON."""
        if response.content.strip():
            self._payload(response, f"QALITA {method} {path}")

    @staticmethod
    def _expect(kind: type, payload: Any, method: str, path: str) -> Any:
        if not isinstance(payload, kind):
            expected = "a JSON array" if kind is list else "a JSON object"
            raise PermanentError(f"QALITA {method} {path}: expected {expected}, "
                                 f"got {type(payload).__name__}")
        return payload


def _reason(response: requests.Response) -> str:
    """A one-line reason from QALITA's FastAPI-style error body, when it has one."""
    status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    try:
        body = response.json()
    except ValueError:
        return f"{status} ({content_type(response)} body)" if response.content else status
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return f"{status}: {detail}"
    if isinstance(detail, list) and detail:
        return f"{status}: " + "; ".join(_violation(item) for item in detail)
    return f"{status}: {json.dumps(body)[:300]}"


def _violation(item: Any) -> str:
    """``{"loc": ["body", "status"], "msg": "..."}`` → ``status: ...``."""
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc") or []]
    if loc[:1] == ["body"] and len(loc) > 1:
        loc = loc[1:]
    message = str(item.get("msg", "invalid"))
    return f"{'.'.join(loc)}: {message}" if loc else message


