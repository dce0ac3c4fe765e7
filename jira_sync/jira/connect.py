"""From a stored integration to a working client, and the "Test Connection" check."""

from __future__ import annotations

from dataclasses import dataclass, field

from jira_sync.crypto import SecretBox
from jira_sync.jira.auth import Auth, BasicAuth, BearerAuth
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.jira.limiter import RateLimiter
from jira_sync.remote import AuthError, NotFound, RemoteError
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


def client_for(integration: Integration, box: SecretBox,
               limiter: RateLimiter | None = None) -> JiraClient:
    site = JiraSite(integration.base_url, integration.deployment)
    return JiraClient(site, auth_for(integration, box), limiter=limiter)


@dataclass
class CheckReport:
    account: str | None = None
    problems: list[str] = field(default_factory=list)


def check(client: JiraClient, project_key: str | None, issue_type: str | None) -> CheckReport:
    """What an operator needs to fix before the sync can create issues, in plain words."""
    report = CheckReport()
    try:
        me = client.myself()
    except AuthError as exc:
        report.problems.append(f"authentication failed: {exc.reason}")
        return report
    except RemoteError as exc:
        report.problems.append(f"Jira is not reachable: {exc.reason}")
        return report
    report.account = me.get("emailAddress") or me.get("displayName") or me.get("name")
    if not project_key:
        report.problems.append("no project key configured (JIRA_PROJECT_KEY)")
        return report
    try:
        client.project(project_key)
        types = client.create_issue_types(project_key)
        names = sorted(t["name"] for t in types)
        chosen = next((t for t in types if t["name"] == issue_type), None)
        if chosen is None:
            report.problems.append(f"issue type {issue_type!r} cannot be created in "
                                   f"{project_key}; available: {', '.join(names) or 'none'}")
            return report
        fields = client.create_fields(project_key, chosen["id"])
    except NotFound:
        report.problems.append(f"project {project_key} does not exist or is not visible "
                               "to this account")
        return report
    except RemoteError as exc:
        report.problems.append(f"project {project_key}: {exc.reason}")
        return report
    # Jira fills a required field that has a default value itself.
    required = [f for f in fields if f.get("required") and not f.get("hasDefaultValue")
                and f.get("fieldId") not in FIELDS_THE_SYNC_SETS]
    for extra in required:
        report.problems.append(f"the create screen of {project_key} {issue_type} requires "
                               f"{extra.get('name')} ({extra.get('fieldId')}), which jira-sync "
                               "does not fill")
    return report
