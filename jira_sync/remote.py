"""Calling a remote API (Jira or QALITA): errors as types, and retries only where safe.

Every failure becomes one of three kinds the sync layer acts on: transient (retry later,
maybe after ``retry_after``), permanent (a dead letter with a readable reason) and auth
(credentials are wrong; permanent, but worth its own alert). A failed write also says
whether it may have been applied, because that decides whether retrying could duplicate it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import backoff
import requests
from urllib3.exceptions import NewConnectionError


def http_session(base_url: str) -> requests.Session:
    """A session for one remote, with the environment's proxy (``HTTPS_PROXY``, ``NO_PROXY``,
    ...) and CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) read once for its host, as
    requests would read them. requests reads them again on every call by default, which cost
    a tenth of an inbound flush."""
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


class RemoteError(Exception):
    """A remote call failed. ``reason`` is readable and never holds a credential."""

    def __init__(self, reason: str, *, status: int | None = None, body: Any = None,
                 maybe_applied: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.status, self.body = reason, status, body
        self.maybe_applied = maybe_applied


class TransientError(RemoteError):
    """Worth retrying later: timeouts, dropped connections, 5xx, 408/409/425, 429."""

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """A 429: the server said how long to wait (``retry_after``) and why (``limit_reason``)."""

    def __init__(self, reason: str, *, limit_reason: str | None = None, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.limit_reason = limit_reason


class PermanentError(RemoteError):
    """Retrying the same request cannot succeed (400, 403, 404, 410, 413, 422, ...)."""


class NotFound(PermanentError):
    """404: gone, or not visible to this account (the two look the same)."""


class AuthError(PermanentError):
    """401: the credentials are missing, wrong or expired."""


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 4
    base_seconds: float = 1.0
    cap_seconds: float = 30.0
    # A longer Retry-After is handed to the caller, which parks the work instead of
    # holding a worker process asleep.
    max_inline_wait_seconds: float = 5.0
    timeout: tuple[float, float] = (5.0, 30.0)  # connect, read


DEFAULT_POLICY = RetryPolicy()
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # An HTTP date: rare enough to fall back to our own backoff.


def classify(response: requests.Response, reason_of: Callable[[requests.Response], str],
             what: str) -> RemoteError | None:
    """The error a response stands for, or None when it succeeded."""
    status = response.status_code
    if status < 300:
        return None
    if status < 400:
        # Redirects are never followed: a write that lands on a login page is lost.
        return PermanentError(f"{what}: HTTP {status}, redirected to "
                              f"{response.headers.get('Location', 'nowhere')}: check the base URL",
                              status=status)
    reason = f"{what}: {reason_of(response)}"
    body = _body(response)
    if status == 429:
        return RateLimited(reason, status=status, body=body,
                           retry_after=retry_after_seconds(response),
                           limit_reason=response.headers.get("RateLimit-Reason"))
    if status >= 500 or status in TRANSIENT_STATUSES:
        # A 5xx may come after the server applied the change (Jira does this under load).
        return TransientError(reason, status=status, body=body,
                              retry_after=retry_after_seconds(response),
                              maybe_applied=status >= 500)
    if status == 401:
        return AuthError(reason, status=status, body=body)
    if status == 404:
        return NotFound(reason, status=status, body=body)
    return PermanentError(reason, status=status, body=body)


def content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"


def json_body(response: requests.Response, what: str, *, service: str, hint: str,
              redact: Callable[[str], str] = str) -> Any:
    """The JSON body of a successful answer; any other body means we did not reach the API.

    SSO gateways and proxies answer 200 with a login page, which would otherwise pass for
    success and silently drop a write.
    """
    try:
        return response.json()
    except ValueError:
        raise PermanentError(
            f"{what}: {service} answered {response.status_code} with a non-JSON body "
            f"({content_type(response)}) — {hint}",
            status=response.status_code, body=redact(response.text[:2000])) from None


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


# Requests that cannot be sent as configured: retrying the same request is pointless.
_UNSENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
               requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader,
               requests.exceptions.URLRequired)


def connection_error(exc: requests.RequestException, what: str) -> RemoteError:
    """A request that got no response: may it have reached the server?"""
    if isinstance(exc, _UNSENDABLE):
        # The message may quote a header value (a token): name the kind only.
        return PermanentError(f"{what}: the request cannot be sent ({type(exc).__name__}); "
                              "check the base URL and credentials")
    never_sent = isinstance(exc, requests.ConnectTimeout) or _refused(exc)
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    return TransientError(f"{what}: {kind} ({type(exc).__name__})",
                          maybe_applied=not never_sent)


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectionRefusedError):
            return True
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = getattr(current, "reason", None) or nested or current.__cause__ \
            or current.__context__
    return False


def _waits(policy: RetryPolicy) -> Generator[float, Any, None]:
    """Exponential backoff with ±30 % jitter, never shorter than the server's Retry-After.

    backoff sends each caught exception into this generator, which is how Retry-After
    reaches the wait.
    """
    attempt = 0
    error = yield 0.0
    while True:
        delay = min(policy.cap_seconds, policy.base_seconds * 2 ** attempt)
        delay *= random.uniform(0.7, 1.3)
        attempt += 1
        error = yield max(delay, getattr(error, "retry_after", None) or 0.0)


def call(send: Callable[[], requests.Response], *, what: str, idempotent: bool,
         reason_of: Callable[[requests.Response], str],
         policy: RetryPolicy = DEFAULT_POLICY) -> requests.Response:
    """Run ``send`` with retries for transient failures, and return the successful response.

    Idempotent calls (reads, PUTs, DELETEs) retry here. A non-idempotent write retries only
    what certainly did not reach the server (refused connections, 429); anything else is
    raised with ``maybe_applied`` so the sync layer can look before it writes again.
    """

    def attempt() -> requests.Response:
        try:
            response = send()
        except requests.RequestException as exc:
            failure = connection_error(exc, what)
        else:
            failure = classify(response, reason_of, what)
            if failure is None:
                return response
        # Raised outside the handler: the original exception (which may quote a header
        # value) is not chained as context.
        raise failure

    def give_up(error: Exception) -> bool:
        if not isinstance(error, TransientError):
            return True
        if (error.retry_after or 0) > policy.max_inline_wait_seconds:
            return True
        return not idempotent and error.maybe_applied

    retrying = backoff.on_exception(
        lambda: _waits(policy), RemoteError, max_tries=policy.max_tries, giveup=give_up,
        jitter=None, logger=None)
    return retrying(attempt)()
