"""One simulated Jira site: its configuration, content, call log, limits and webhook sender."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import replace
from typing import Any

from flask import g, request

from jira_sync.simulators.jira.calls import CallLog
from jira_sync.simulators.jira.catalog import Catalog
from jira_sync.simulators.jira.config import SimulatorConfig, UserDef
from jira_sync.simulators.jira.errors import JiraError
from jira_sync.simulators.jira.faults import FaultInjector
from jira_sync.simulators.jira.ratelimits import SiteLimits
from jira_sync.simulators.jira.render import Renderer
from jira_sync.simulators.jira.store import Actor, IssueStore
from jira_sync.simulators.jira.webhooks import WebhookDispatcher


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = replace(config)  # our own copy: /_sim/config changes it at run time
        self.catalog = Catalog(self.config)
        self.dispatcher = WebhookDispatcher(self.config)
        self.store = IssueStore(self.config, self.catalog, self.dispatcher)
        self.calls = CallLog()
        self.limits = SiteLimits(self.config)
        self.faults = FaultInjector(self.config.seed)

    @property
    def cloud(self) -> bool:
        return self.config.deployment == "cloud"

    def reset(self) -> None:
        """Forget issues, calls, deliveries, counters, limits spent and switches; keep the
        configuration."""
        self.catalog.switches.reset()
        self.store.reset()
        self.calls.reset()
        self.dispatcher.reset()
        self.limits.reset()
        self.faults.reset()

    def close(self) -> None:
        self.dispatcher.close()

    # -- per-request helpers (Flask request context) -----------------------------------------

    def authenticate(self) -> UserDef | None:
        user = self._credentials_user()
        if user is self.catalog.service and self.catalog.switches.revoke_token:
            return None  # as Jira answers a revoked API token or PAT
        return user

    def _credentials_user(self) -> UserDef | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                login, _, secret = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return self.catalog.user_by_login(login, secret, self.config.deployment)
        if scheme.lower() == "bearer" and not self.cloud:
            return self.catalog.user_by_pat(value.strip())
        if self.oauth_client() is not None:
            return self.catalog.service
        return None

    def oauth_client(self) -> str | None:
        """The OAuth app whose access token the call bears (Cloud), whose quota it spends."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self.config.oauth_token
        if scheme.lower() != "bearer" or token is None or not self.cloud:
            return None
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return self.config.oauth_client_id

    def renderer(self) -> Renderer:
        """The representation of the API version called: Cloud also answers a few reads under
        ``/rest/api/2``, in v2's shapes (wiki text)."""
        api = "2" if request.path.startswith("/rest/api/2/") else self.config.api_version
        return Renderer(request.host_url, api, self.catalog, self.config.deployment)

    def actor(self) -> Actor:
        return Actor(g.user, request.host_url)


def json_body(*, required: bool = True) -> Any:
    """The request's JSON, refused the way Jira's JSON layer refuses it."""
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise JiraError(400, ["No content to map due to end-of-input"])
        return None
    if request.mimetype != "application/json":
        raise JiraError(415, ["Unsupported Media Type: send the body as application/json."])
    try:
        return json.loads(data)
    except ValueError as exc:
        raise JiraError(400, [f"Unexpected character in the JSON body: {exc}"]) from None


def logged_body() -> Any:
    """The body as the call log shows it: parsed JSON when possible, else text."""
    data = request.get_data(cache=True)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")[:10000]
