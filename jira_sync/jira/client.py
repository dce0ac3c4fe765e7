"""The Jira REST client, one for both deployments.

Cloud speaks ``/rest/api/3`` with rich text as ADF; Server/Data Center speaks
``/rest/api/2`` with wiki-markup strings, and names users instead of giving account ids.
Those differences stay in here (``api``, ``rich_text``, ``user_ref``) so the sync layer
writes one code path. Reads and PUTs retry inside; non-idempotent writes (create, bulk
create, transition, comment) report ``maybe_applied`` and leave the retry to the caller's
guards (DESIGN.md: search for the marker before creating again).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import redis
import requests
from sqlalchemy.exc import SQLAlchemyError

from jira_sync import telemetry
from jira_sync.jira.auth import Auth
from jira_sync.jira.limiter import LIMITER_PAUSE, QUOTA_PAUSE, Call, RateLimiter, advertised_rate
from jira_sync.remote import (
    DEFAULT_POLICY,
    NotFound,
    PermanentError,
    RateLimited,
    RetryPolicy,
    TransientError,
    call,
    content_type,
    http_session,
    json_body,
    retry_after_seconds,
)

# What the sync reads of an issue; everything else is left on Jira's side.
ISSUE_FIELDS = ("summary", "description", "status", "labels", "assignee", "priority",
                "components", "issuetype", "project", "resolution", "created", "updated")
BULK_CREATE_LIMIT = 50
BULK_FETCH_LIMIT = 100
SEARCH_PAGE_SIZE = 50
USER_AGENT = "jira-sync/0.1"
# The limiter's store (Redis or the database) failing.
LIMITER_FAILURES = (redis.RedisError, SQLAlchemyError)


@dataclass(frozen=True)
class JiraSite:
    base_url: str
    deployment: str  # "cloud" or "server"

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.deployment == "cloud" else "/rest/api/2"


@dataclass
class BulkResult:
    """Bulk create answers by position: ``created[i]`` and ``failed[i]`` for input item i."""

    created: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def _seg(value: str) -> str:
    """One path segment: an id or key from elsewhere must not reshape the request path."""
    return quote(str(value), safe="")


def jira_reason(response: requests.Response) -> str:
    """Jira's ``errorMessages`` and per-field ``errors`` as one readable line."""
    status = f"HTTP {response.status_code}"
    if response.status_code == 429:
        limit = response.headers.get("RateLimit-Reason") or "rate limited"
        after = response.headers.get("Retry-After")
        status += f" ({limit}{f', retry after {after}s' if after else ''})"
    try:
        body = response.json()
    except ValueError:
        return f"{status} with a non-JSON body ({content_type(response)})"
    return f"{status}: {_error_text(body)}" if _error_text(body) else status


def _error_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    messages = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors") or {}
    if isinstance(errors, dict):
        messages += [f"{name}: {message}" for name, message in errors.items()]
    return "; ".join(messages)


class JiraClient:
    def __init__(self, site: JiraSite, auth: Auth, *, limiter: RateLimiter | None = None,
                 rate_limit: float | None = None, policy: RetryPolicy = DEFAULT_POLICY,
                 session: requests.Session | None = None) -> None:
        """``rate_limit`` is each bucket's starting pace in calls per second, until Jira
        advertises its limit or a 429 shows it (jira_sync/jira/limiter.py); it needs a
        ``limiter`` shared with the other processes."""
        self.site, self._auth, self._limiter, self.policy = site, auth, limiter, policy
        self._rate_limit = rate_limit
        self._session = session or http_session(site.base_url)
        # The rate each bucket last advertised, and when the limiter was told it.
        self._told: dict[str, float] = {}
        self._told_at: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"JiraClient({self.site.base_url!r}, {self.site.deployment})"

    @property
    def is_cloud(self) -> bool:
        return self.site.deployment == "cloud"

    # -- plumbing ---------------------------------------------------------------------

    def _request(self, method: str, path: str, *, what: str, idempotent: bool,
                 json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Send one call; returns its JSON body (None when empty)."""
        response = self._response(method, path, what=what, idempotent=idempotent, json=json,
                                  params=params)
        if not response.content.strip():
            return None
        return json_body(response, what, service="Jira", hint="is JIRA_BASE_URL Jira's address?")

    def _response(self, method: str, path: str, *, what: str, idempotent: bool,
                  json: Any, params: Mapping[str, Any] | None) -> requests.Response:
        url = f"{self.site.base_url}{self.site.api}{path}"

        limited = Call(self.site.base_url, method, path, self.site.deployment, self._auth.app)

        def send() -> requests.Response:
            busy = self._wait_for_slot(limited, what)
            response = self._send(method, path, url, json, params)
            if response.status_code == 401 and self._auth.on_unauthorized():
                response = self._send(method, path, url, json, params)
            self._learn(limited, response, busy)
            return response

        return call(send, what=what, idempotent=idempotent, reason_of=jira_reason,
                    policy=self.policy)

    def _send(self, method: str, path: str, url: str, json: Any,
              params: Mapping[str, Any] | None) -> requests.Response:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT,
                   **self._auth.headers()}
        try:
            response = self._session.request(method, url, json=json, params=params,
                                             headers=headers, timeout=self.policy.timeout,
                                             allow_redirects=False)
        except requests.RequestException:
            telemetry.jira_call(method, path, None)
            raise
        telemetry.jira_call(method, path, response.status_code)
        if response.status_code == 429:
            telemetry.jira_rate_limited(response.headers.get("RateLimit-Reason"))
        return response

    def _wait_for_slot(self, limited: Call, what: str) -> bool:
        """Wait for the call's slot; True when it had to (its bucket is busy). A pause of
        its issue or quota holds no slot, so its end is waited for before reserving one."""
        if self._limiter is None:
            return False
        while True:
            try:
                slot = self._limiter.reserve(limited, self._rate_limit,
                                             self.policy.max_inline_wait_seconds)
            except LIMITER_FAILURES as exc:
                raise TransientError(f"{what}: rate limiter unavailable "
                                     f"({type(exc).__name__})") from None
            if slot.wait > self.policy.max_inline_wait_seconds:
                reason = "Jira's hourly quota" if slot.quota else "the shared Jira rate limit"
                raise RateLimited(f"{what}: waiting {slot.wait:.1f}s for {reason}",
                                  retry_after=slot.wait,
                                  limit_reason=QUOTA_PAUSE if slot.quota else LIMITER_PAUSE)
            if slot.wait > 0:
                telemetry.limiter_waited(slot.wait)
                time.sleep(slot.wait)
            if slot.reserved:
                return slot.wait > 0

    def _learn(self, limited: Call, response: requests.Response, busy: bool) -> None:
        if self._limiter is None:
            return
        status, headers = response.status_code, response.headers
        told = advertised_rate(headers)
        if status != 429 and ((told is None and not busy) or (told is not None and (
                told == self._told.get(limited.bucket)
                and time.monotonic() - self._told_at.get(limited.bucket, 0) < 60))):
            # Nothing to learn (an idle bucket's clean answer without a limit), or told
            # already: told again now and then so the pace does not expire.
            return
        try:
            self._limiter.answered(limited, self._rate_limit, status, headers,
                                   retry_after_seconds(response), busy)
        except LIMITER_FAILURES:
            return  # Learning is best effort; the next answer teaches the same.
        if told is not None:
            self._told[limited.bucket], self._told_at[limited.bucket] = told, time.monotonic()

    # -- account and project ----------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        return self._request("GET", "/myself", what="read the account", idempotent=True)

    def projects(self) -> list[dict[str, Any]]:
        return self._request("GET", "/project", what="list projects", idempotent=True)

    def project(self, key: str) -> dict[str, Any]:
        return self._request("GET", f"/project/{_seg(key)}", what=f"read project {key}",
                             idempotent=True)

    def create_issue_types(self, project_key: str) -> list[dict[str, Any]]:
        """The issue types this account may create in the project (create metadata)."""
        return list(self._pages(f"/issue/createmeta/{_seg(project_key)}/issuetypes", "issueTypes",
                                what=f"read create metadata of {project_key}"))

    def create_fields(self, project_key: str, issue_type_id: str) -> list[dict[str, Any]]:
        """The fields of the create screen, with ``required`` and ``allowedValues``."""
        path = f"/issue/createmeta/{_seg(project_key)}/issuetypes/{_seg(issue_type_id)}"
        return list(self._pages(path, "fields", what=f"read create fields of {project_key}"))

    def my_permissions(self, project_key: str, keys: tuple[str, ...]) -> dict[str, bool]:
        """Which of the project permissions ``keys`` this account holds in the project."""
        body = self._request("GET", "/mypermissions", what=f"read permissions in {project_key}",
                             idempotent=True,
                             params={"projectKey": project_key, "permissions": ",".join(keys)})
        held = (body or {}).get("permissions") or {}
        return {key: bool((held.get(key) or {}).get("havePermission")) for key in keys}

    def project_statuses(self, project_key: str) -> list[dict[str, Any]]:
        """Per issue type of the project, the statuses its workflow holds (with categories)."""
        return self._request("GET", f"/project/{_seg(project_key)}/statuses",
                             what=f"read the statuses of {project_key}", idempotent=True)

    def _pages(self, path: str, key: str, *, what: str) -> Iterator[dict[str, Any]]:
        """Create-metadata pages: Cloud names the list ``key``, Data Center ``values``."""
        start = 0
        while True:
            page = self._request("GET", path, what=what, idempotent=True,
                                 params={"startAt": start, "maxResults": 200})
            items = page.get(key if self.is_cloud else "values") or []
            yield from items
            start += len(items)
            if not items or page.get("isLast") or start >= page.get("total", start):
                return

    # -- issues -----------------------------------------------------------------------

    def create_issue(self, fields: dict[str, Any],
                     properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"fields": fields}
        if properties:
            body["properties"] = properties
        return self._request("POST", "/issue", what="create an issue", idempotent=False,
                             json=body)

    def bulk_create(self, issues: list[dict[str, Any]]) -> BulkResult:
        """Create up to 50 issues in one call; results by input position.

        Jira answers 201 even when some items failed, and 400 when all did.
        """
        if not 0 < len(issues) <= BULK_CREATE_LIMIT:
            raise ValueError(f"bulk create takes 1 to {BULK_CREATE_LIMIT} issues")
        what = f"bulk create {len(issues)} issues"
        try:
            body = self._request("POST", "/issue/bulk", what=what, idempotent=False,
                                 json={"issueUpdates": issues})
        except PermanentError as exc:
            # A 400 whose body lists every item's error is a result, not a failure.
            if exc.status != 400 or not isinstance(exc.body, dict) or not exc.body.get("errors"):
                raise
            body = exc.body
        result = BulkResult()
        for error in body.get("errors") or []:
            element = error.get("elementErrors") or {}
            result.failed[int(error["failedElementNumber"])] = \
                f"HTTP {error.get('status', 400)}: {_error_text(element)}"
        succeeded = (i for i in range(len(issues)) if i not in result.failed)
        for position, issue in zip(succeeded, body.get("issues") or [], strict=False):
            result.created[position] = issue
        return result

    def get_issue(self, issue: str, fields: tuple[str, ...] = ISSUE_FIELDS, *,
                  expand: tuple[str, ...] = ()) -> dict[str, Any]:
        params = {"fields": ",".join(fields), **({"expand": ",".join(expand)} if expand else {})}
        return self._request("GET", f"/issue/{_seg(issue)}", what=f"read issue {issue}",
                             idempotent=True, params=params)

    def edit_issue(self, issue: str, *, fields: dict[str, Any] | None = None,
                   update: dict[str, list[dict[str, Any]]] | None = None) -> None:
        """Set ``fields`` and apply ``update`` operations (e.g. labels add/remove).

        Label operations leave labels other people added alone; a field may not appear in
        both (Jira refuses that).
        """
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = fields
        if update:
            body["update"] = update
        self._request("PUT", f"/issue/{_seg(issue)}", what=f"edit issue {issue}", idempotent=True,
                      json=body)

    def delete_issue(self, issue: str) -> None:
        with contextlib.suppress(NotFound):  # Deleting is idempotent: already gone is done.
            self._request("DELETE", f"/issue/{_seg(issue)}", what=f"delete issue {issue}",
                          idempotent=True)

    def transitions(self, issue: str) -> list[dict[str, Any]]:
        """Transitions available from the current status, with their screens' fields."""
        return self._request("GET", f"/issue/{_seg(issue)}/transitions",
                             what=f"list transitions of {issue}", idempotent=True,
                             params={"expand": "transitions.fields"})["transitions"]

    def transition(self, issue: str, transition_id: str,
                   fields: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"transition": {"id": transition_id}}
        if fields:
            body["fields"] = fields
        self._request("POST", f"/issue/{_seg(issue)}/transitions",
                      what=f"transition {issue} by {transition_id}", idempotent=False, json=body)

    # -- comments ---------------------------------------------------------------------

    def comments(self, issue: str) -> Iterator[dict[str, Any]]:
        start = 0
        while True:
            page = self._request("GET", f"/issue/{_seg(issue)}/comment",
                                 what=f"list comments of {issue}", idempotent=True,
                                 params={"startAt": start, "maxResults": 100})
            items = page.get("comments") or []
            yield from items
            start += len(items)
            if not items or start >= page.get("total", start):
                return

    def add_comment(self, issue: str, body: Any) -> dict[str, Any]:
        return self._request("POST", f"/issue/{_seg(issue)}/comment", what=f"comment on {issue}",
                             idempotent=False, json={"body": body})

    def edit_comment(self, issue: str, comment_id: str, body: Any) -> dict[str, Any]:
        return self._request("PUT", f"/issue/{_seg(issue)}/comment/{_seg(comment_id)}",
                             what=f"edit comment {comment_id} of {issue}", idempotent=True,
                             json={"body": body})

    def delete_comment(self, issue: str, comment_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._request("DELETE", f"/issue/{_seg(issue)}/comment/{_seg(comment_id)}",
                          what=f"delete comment {comment_id} of {issue}", idempotent=True)

    # -- users and search -------------------------------------------------------------

    def search_users(self, query: str) -> list[dict[str, Any]]:
        """Users matching ``query`` (Cloud: prefix of name or e-mail; Server: username too)."""
        params = {"query": query} if self.is_cloud else {"username": query}
        return self._request("GET", "/user/search", what="search users", idempotent=True,
                             params=params)

    def find_user(self, email: str) -> dict[str, Any] | None:
        """The one user whose e-mail is exactly ``email``; None rather than a guess."""
        wanted = email.strip().lower()
        matches = [u for u in self.search_users(email)
                   if (u.get("emailAddress") or "").lower() == wanted]
        return matches[0] if len(matches) == 1 else None

    def user(self, ref: str) -> dict[str, Any] | None:
        """A user by how changelogs name them: accountId on Cloud, user name on Server."""
        params = {"accountId": ref} if self.is_cloud else {"username": ref}
        try:
            return self._request("GET", "/user", what="read a user", idempotent=True,
                                 params=params)
        except NotFound:
            return None

    def statuses(self) -> list[dict[str, Any]]:
        """Every status of the site, with its category."""
        return self._request("GET", "/status", what="list statuses", idempotent=True)

    def user_ref(self, user: Mapping[str, Any]) -> dict[str, str]:
        """How to name a user in an issue's fields: accountId on Cloud, name on Server."""
        return {"accountId": user["accountId"]} if self.is_cloud else {"name": user["name"]}

    def search(self, jql: str, fields: tuple[str, ...] = ("summary", "labels", "updated"),
               page_size: int = SEARCH_PAGE_SIZE, *, expand: tuple[str, ...] = (),
               validate: bool = True) -> Iterator[dict[str, Any]]:
        """Every issue ``jql`` matches, page by page.

        Cloud pages with ``nextPageToken`` on ``/search/jql`` (the old ``/search`` is gone);
        Server pages with ``startAt``, and with ``validate=False`` answers for ids that no
        longer exist instead of refusing the query. Results lag fresh writes (Jira's search
        index).
        """
        what = "search issues"
        if self.is_cloud:
            token: str | None = None
            while True:
                body: dict[str, Any] = {"jql": jql, "maxResults": page_size,
                                        "fields": list(fields)}
                if expand:
                    body["expand"] = ",".join(expand)
                if token:
                    body["nextPageToken"] = token
                page = self._request("POST", "/search/jql", what=what, idempotent=True,
                                     json=body)
                yield from page.get("issues") or []
                token = page.get("nextPageToken")
                if page.get("isLast", True) or not token:
                    return
        start = 0
        while True:
            body = {"jql": jql, "startAt": start, "maxResults": page_size,
                    "fields": list(fields)}
            if expand:
                body["expand"] = list(expand)
            if not validate:
                body["validateQuery"] = False
            page = self._request("POST", "/search", what=what, idempotent=True, json=body)
            issues = page.get("issues") or []
            yield from issues
            start += len(issues)
            if not issues or start >= page.get("total", start):
                return

    def count(self, jql: str) -> int | None:
        """About how many issues ``jql`` matches (Cloud's count is approximate); None when
        this Jira cannot say."""
        try:
            if self.is_cloud:
                return self._request("POST", "/search/approximate-count", what="count issues",
                                     idempotent=True, json={"jql": jql}).get("count")
            return self._request("POST", "/search", what="count issues", idempotent=True,
                                 json={"jql": jql, "maxResults": 0}).get("total")
        except PermanentError:
            return None

    def bulk_fetch(self, ids: list[str], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        """Up to 100 issues by id or key in one call (Cloud). Issues that do not exist or are
        not visible are left out of the answer; so are those Jira could not read this time
        (``issueErrors``): what is not returned is to be checked one by one."""
        if not 0 < len(ids) <= BULK_FETCH_LIMIT:
            raise ValueError(f"bulk fetch takes 1 to {BULK_FETCH_LIMIT} issues")
        body = self._request("POST", "/issue/bulkfetch", what=f"read {len(ids)} issues",
                             idempotent=True, json={"issueIdsOrKeys": ids,
                                                    "fields": list(fields)})
        return body.get("issues") or []
