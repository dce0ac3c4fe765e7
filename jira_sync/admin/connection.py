"""Test Connection: can this integration do its work, and if not, what exactly to fix.

Each check names one thing an operator controls (a token, a project key, a permission, a
screen, a workflow, a webhook, the QALITA token) and its fix says how to put it right. They
run in the order a setup is done; a check that needs an earlier one which failed is reported
``skipped`` (``ok`` false, and never counted against the report: the earlier failure already
is), so one cause is named once. Every Jira and QALITA call is tried once with short
timeouts: an operator is waiting, and a retried refusal says nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.deliveries import JIRA
from jira_sync.jira.client import JiraClient
from jira_sync.jira.connect import FIELDS_THE_SYNC_SETS, UnsupportedAuth, client_for
from jira_sync.mapping import config as mapping_config
from jira_sync.qalita.client import QalitaClient
from jira_sync.remote import AuthError, NotFound, RemoteError, RetryPolicy
from jira_sync.store.models import InboxEvent, Integration
from jira_sync.store.types import utcnow
from jira_sync.sync import journal

ERROR, WARNING, SKIPPED = "error", "warning", "skipped"
CHECKS = ("credentials", "project", "issue_type", "create_permission", "required_fields",
          "workflow_done", "webhook", "qalita")
QUICK = RetryPolicy(max_tries=1, timeout=(5.0, 15.0))
WEBHOOK_WINDOW = timedelta(hours=24)
SIGNED_WEBHOOK_PATH = "/api/v2/integrations/jira/webhook"

FIX_CREDENTIALS = ("check the e-mail and API token (or PAT) and that the account may use the "
                   "REST API; create a token at id.atlassian.com")
FIX_UNREADABLE = ("set the credentials again, or put the key they were sealed with back in "
                  "JIRA_SYNC_SECRET_KEY")
FIX_UNREACHABLE = "check the base URL and that Jira can be reached from this host"
FIX_PROJECT = ("check the base URL and project key, and that the account can browse the "
               "project")
FIX_CREATE = "grant Create Issues in the project's permission scheme to the account"
FIX_DONE = "no status of the Done category reachable; add one or map `resolved`"
FIX_QALITA = "QALITA API not reachable or token refused: check QALITA_API_URL and the token"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    level: str  # "error", "warning", or "skipped" for a check an earlier failure prevented
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "level": self.level, "detail": self.detail,
                "fix": self.fix}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no error-level check failed: warnings and skips do not stop the sync."""
        return not any(c.level == ERROR and not c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


def test_connection(session: Session, integration: Integration, box: SecretBox, *,
                    public_url: str, mapping_file: Path | None = None,
                    qalita: QalitaClient | None = None) -> Report:
    """Run every check of ``integration`` (loaded in ``session``) and log the result.

    ``public_url`` is JIRA_SYNC_PUBLIC_URL (the webhook fix names the URL to give Jira);
    ``mapping_file`` is JIRA_SYNC_MAPPING_FILE (its ``field_defaults`` fill required fields,
    its ``statuses.resolved`` names the category the workflow must reach); ``qalita`` is the
    client to try, by default one from the integration's QALITA URL and token. The remote
    calls come first, the session's read and the log row after. Never raises for what Jira
    or QALITA answer: every failure is a failed check. Adds an integration-log row (action
    ``admin``, decision ``test``, level ``info`` when ok, else ``warning``) to the caller's
    unit of work; no secret appears in the report or the log.
    """
    try:
        secrets: dict[str, str] | None = box.open(integration.secrets_sealed)
    except SecretsUnreadable:
        secrets = None
    checks = _jira_checks(integration, box, secrets, mapping_file)
    qalita_check = _qalita(integration, secrets, qalita)
    checks.append(_webhook(session, integration, secrets, public_url))
    checks.append(qalita_check)
    report = Report(tuple(checks))
    failed = [c.name for c in report.checks if not c.ok and c.level != SKIPPED]
    message = ("Test Connection: every check passed" if not failed
               else f"Test Connection: {'ok' if report.ok else 'failed'}; not passing: "
                    f"{', '.join(failed)}")
    journal.log(session, integration.id, "admin", "test", message,
                level="info" if report.ok else "warning",
                checks={c.name: c.level if not c.ok else "ok" for c in report.checks})
    return report


test_connection.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test, if imported


# -- Jira --------------------------------------------------------------------------------------

def _jira_checks(integration: Integration, box: SecretBox, secrets: dict[str, str] | None,
                 mapping_file: Path | None) -> list[Check]:
    """The Jira checks in order; each failure that leaves a later check nothing to stand on
    turns the rest into skips."""
    client, checks = _credentials(integration, box, secrets)
    if client is None:
        return [*checks, *_skipped(CHECKS[1:6], "credentials")]
    project_key = integration.project_key
    project, check = _project(client, project_key)
    checks.append(check)
    if project is None or project_key is None:
        return [*checks, *_skipped(CHECKS[2:6], "project")]
    issue_type, check = _issue_type(project, integration.issue_type)
    checks.append(check)
    if issue_type is None:
        return [*checks, *_skipped(CHECKS[3:6], "issue_type")]
    try:
        mapping = mapping_config.load_mapping(
            mapping_file, (integration.options or {}).get("mapping")).for_project(project_key)
    except mapping_config.MappingError as exc:
        mapping = exc
    permission = _create_permission(client, project_key)
    checks.append(permission)
    if not permission.ok:
        checks.extend(_skipped(("required_fields",), "create_permission"))
    elif isinstance(mapping, mapping_config.MappingError):
        checks.append(Check("required_fields", False, ERROR, f"the mapping is invalid: {mapping}",
                            "fix the mapping (docs/mapping.md)"))
    else:
        checks.append(_required_fields(client, project_key, issue_type, mapping.field_defaults))
    resolved = "done" if isinstance(mapping, Exception) else mapping.statuses.get("resolved")
    checks.append(_workflow_done(client, project_key, issue_type, resolved))
    return checks


def _credentials(integration: Integration, box: SecretBox,
                 secrets: dict[str, str] | None) -> tuple[JiraClient | None, list[Check]]:
    paused = _paused(integration.jira_paused_at, integration.jira_paused_reason,
                     "the whole integration")

    def failed(detail: str, fix: str) -> tuple[None, list[Check]]:
        return None, [Check("credentials", False, ERROR, detail + paused, fix)]

    if secrets is None:
        return failed("the stored credentials cannot be decrypted with JIRA_SYNC_SECRET_KEY",
                      FIX_UNREADABLE)
    try:
        client = client_for(integration, box, policy=QUICK)
    except UnsupportedAuth as exc:
        return failed(str(exc), "use auth method basic (e-mail and API token) or pat")
    try:
        me = client.myself() or {}
    except AuthError as exc:
        return failed(f"Jira refused the credentials: {exc.reason}", FIX_CREDENTIALS)
    except RemoteError as exc:
        if exc.status == 403:
            return failed(f"Jira refused the credentials: {exc.reason}", FIX_CREDENTIALS)
        return failed(f"Jira at {integration.base_url} is not reachable: {exc.reason}",
                      FIX_UNREACHABLE)
    account = me.get("emailAddress") or me.get("displayName") or me.get("name") or "?"
    return client, [Check("credentials", True, ERROR, f"signed in as {account}{paused}")]


def _project(client: JiraClient, key: str | None) -> tuple[dict[str, Any] | None, Check]:
    if not key:
        return None, Check("project", False, ERROR, "no project key is configured",
                           "set project_key (JIRA_PROJECT_KEY)")
    try:
        project = client.project(key)
    except RemoteError as exc:
        detail = (f"project {key} does not exist or the account cannot browse it"
                  if isinstance(exc, NotFound) or exc.status == 403
                  else f"project {key} cannot be read: {exc.reason}")
        return None, Check("project", False, ERROR, detail, FIX_PROJECT)
    return project, Check("project", True, ERROR, f"{key}: {project.get('name') or key}")


def _issue_type(project: Mapping[str, Any], wanted: str | None) -> tuple[str | None, Check]:
    names = [str(t.get("name")) for t in project.get("issueTypes") or [] if not t.get("subtask")]
    choices = ", ".join(names) or "none"
    if not wanted:
        return None, Check("issue_type", False, ERROR, "no issue type is configured",
                           f"set issue_type (JIRA_ISSUE_TYPE): pick one of {choices}")
    if wanted not in names:
        return None, Check("issue_type", False, ERROR,
                           f"{project.get('key')} has no issue type {wanted!r}",
                           f"the project has no issue type {wanted}: pick one of {choices}")
    return wanted, Check("issue_type", True, ERROR, f"{project.get('key')} has {wanted}")


def _create_permission(client: JiraClient, key: str) -> Check:
    try:
        held = client.my_permissions(key, ("CREATE_ISSUES",))["CREATE_ISSUES"]
    except RemoteError as exc:
        return Check("create_permission", False, ERROR,
                     f"the account's permissions in {key} cannot be read: {exc.reason}",
                     FIX_CREATE)
    if not held:
        return Check("create_permission", False, ERROR,
                     f"the account may not create issues in {key}", FIX_CREATE)
    return Check("create_permission", True, ERROR, f"the account may create issues in {key}")


def _required_fields(client: JiraClient, key: str, issue_type: str,
                     defaults: Mapping[str, Any]) -> Check:
    try:
        chosen = next((t for t in client.create_issue_types(key)
                       if t.get("name") == issue_type), None)
        if chosen is None:
            return Check("required_fields", False, ERROR,
                         f"{issue_type} is not among the issue types the account may create "
                         f"in {key}", FIX_CREATE)
        fields = client.create_fields(key, str(chosen["id"]))
    except RemoteError as exc:
        return Check("required_fields", False, ERROR,
                     f"the create screen of {key} {issue_type} cannot be read: {exc.reason}",
                     "check that the account may create issues in the project")
    # Jira fills a required field that has a default value itself.
    missing = [f for f in fields if f.get("required") and not f.get("hasDefaultValue")
               and f.get("fieldId") not in FIELDS_THE_SYNC_SETS
               and f.get("fieldId") not in defaults]
    if missing:
        named = ", ".join(f"{f.get('name') or f.get('fieldId')} ({f.get('fieldId')})"
                          for f in missing)
        return Check("required_fields", False, ERROR,
                     f"the create screen of {key} {issue_type} requires {named}, which "
                     "jira-sync does not fill",
                     f"the create screen requires {named}: add it to `field_defaults`")
    return Check("required_fields", True, ERROR,
                 f"jira-sync fills every field the create screen of {key} {issue_type} "
                 "requires")


def _workflow_done(client: JiraClient, key: str, issue_type: str, category: str | None) -> Check:
    """Whether the workflow of the issue type holds a status of the category ``resolved`` maps
    to. Jira lists a project's statuses to anyone who can browse it (its transitions only to
    administrators), so this reads statuses: a status no transition leads to still counts."""
    if category is None:
        return Check("workflow_done", True, ERROR,
                     "`resolved` is mapped to no transition: resolved issues keep their status")
    try:
        listing = client.project_statuses(key)
    except RemoteError as exc:
        return Check("workflow_done", False, WARNING,
                     f"the workflow of {key} cannot be read: {exc.reason}", FIX_DONE)
    entry = next((e for e in listing or [] if e.get("name") == issue_type), None)
    if entry is None:
        return Check("workflow_done", False, WARNING,
                     f"Jira lists no workflow statuses for {key} {issue_type}", FIX_DONE)
    reached = [str(s.get("name")) for s in entry.get("statuses") or []
               if (s.get("statusCategory") or {}).get("key") == category]
    if not reached:
        return Check("workflow_done", False, ERROR,
                     f"the workflow of {key} {issue_type} has no status of category "
                     f"{category!r}", FIX_DONE)
    return Check("workflow_done", True, ERROR,
                 f"resolved issues go to {', '.join(reached)} (category {category!r})")


def _skipped(names: tuple[str, ...], cause: str) -> list[Check]:
    return [Check(name, False, SKIPPED, f"not run: `{cause}` failed") for name in names]


def _paused(at: datetime | None, reason: str | None, what: str) -> str:
    if at is None and reason is None:
        return ""
    since = f" since {at.isoformat(timespec='seconds')}" if at else ""
    return (f"; {what} is paused{since} ({reason or 'no reason recorded'}) until a call "
            "succeeds again or the settings change")


# -- webhook and QALITA ------------------------------------------------------------------------

def _webhook(session: Session, integration: Integration, secrets: dict[str, str] | None,
             public_url: str) -> Check:
    last = session.scalar(select(func.max(InboxEvent.received_at)).where(
        InboxEvent.source == JIRA, InboxEvent.integration_id == integration.id))
    if last is not None and last >= utcnow() - WEBHOOK_WINDOW:
        return Check("webhook", True, WARNING,
                     f"last delivery at {last.isoformat(timespec='seconds')}")
    if (secrets or {}).get("webhook_secret"):
        url = f"with URL {public_url.rstrip('/')}{SIGNED_WEBHOOK_PATH}"
    else:
        url = "with the token URL `jira-sync webhook url` gives (no webhook secret is set)"
    before = f" (the last at {last.isoformat(timespec='seconds')})" if last else ""
    return Check("webhook", False, WARNING, f"no delivery in the last 24 h{before}",
                 f"no delivery in the last 24 h: create a webhook in Jira {url} and the issue "
                 "and comment events, or check its secret")


def _qalita(integration: Integration, secrets: dict[str, str] | None,
            qalita: QalitaClient | None) -> Check:
    paused = _paused(integration.qalita_paused_at, integration.qalita_paused_reason,
                     "the inbound direction")
    if qalita is None:
        token = (secrets or {}).get("qalita_api_token")
        if not integration.qalita_api_url or not token:
            missing = "the stored credentials cannot be decrypted" if secrets is None \
                else "no QALITA API URL and token are configured"
            return Check("qalita", False, ERROR, missing + paused, FIX_QALITA)
        qalita = QalitaClient(integration.qalita_api_url, token, policy=QUICK)
    try:
        qalita.list_issues(0, 1)
    except RemoteError as exc:
        return Check("qalita", False, ERROR, f"QALITA answered: {exc.reason}{paused}",
                     FIX_QALITA)
    return Check("qalita", True, ERROR,
                 f"QALITA API at {integration.qalita_api_url} accepts the token{paused}")
