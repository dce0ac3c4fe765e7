"""From a stored integration to a working client (the checks of one live in admin/connection)."""

from __future__ import annotations

from jira_sync.crypto import SecretBox
from jira_sync.jira.auth import Auth, BasicAuth, BearerAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.jira.limiter import RateLimiter
from jira_sync.remote import DEFAULT_POLICY, RetryPolicy
from jira_sync.store.models import Integration

# Filled by the sync itself; a create screen requiring one of these needs no default.
FIELDS_THE_SYNC_SETS = frozenset({"project", "issuetype", "summary", "description", "labels",
                                  "priority", "components", "assignee", "reporter"})


class UnsupportedAuth(ValueError):
    """The integration's auth method has no implementation here yet."""


def auth_for(integration: Integration, box: SecretBox) -> Auth:
    secrets = box.open(integration.secrets_sealed)
    if integration.auth_method == "basic":
        return BasicAuth(integration.email or "", secrets.get("api_token", ""))
    if integration.auth_method == "pat":
        return BearerAuth(secrets.get("pat", ""))
    raise UnsupportedAuth(f"auth method {integration.auth_method!r} is not supported yet")


def client_for(integration: Integration, box: SecretBox, limiter: RateLimiter | None = None,
               *, policy: RetryPolicy = DEFAULT_POLICY) -> JiraClient:
    site = JiraSite(integration.base_url, integration.deployment)
    return JiraClient(site, auth_for(integration, box), limiter=limiter, policy=policy)
