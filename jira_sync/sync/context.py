"""What a sync process keeps between tasks: the database, clients, mappings and caches.

One context per process (a worker child builds its own after the fork). Caches are keyed by
the integration's ``updated_at`` so an admin change takes effect at the next task, not at a
restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from config.settings import Settings, SyncTimings
from jira_sync import integrations
from jira_sync.crypto import SecretBox
from jira_sync.jira.client import JiraClient, JiraSite
from jira_sync.jira.connect import FIELDS_THE_SYNC_SETS, auth_for
from jira_sync.jira.limiter import RateLimiter
from jira_sync.jira.workflow import WorkflowGraph
from jira_sync.mapping import MappingSet, load_mapping
from jira_sync.qalita import QalitaClient
from jira_sync.store.db import Database
from jira_sync.store.models import Integration

# How long what a project's create screen requires is trusted before it is read again.
CREATE_META_TTL_SECONDS = 600.0
# How long intake trusts which integration serves a tenant: one query less per event, and an
# integration created, deleted or revived takes effect within this (enabling and disabling
# act at the flush, which reads the integration each time).
SERVING_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class RequiredField:
    field_id: str
    name: str


@dataclass
class SyncContext:
    database: Database
    box: SecretBox
    debounce_seconds: float
    timings: SyncTimings = field(default_factory=SyncTimings)
    mapping_file: Path | None = None
    limiter: RateLimiter | None = None
    graph: WorkflowGraph = field(default_factory=WorkflowGraph)
    _clients: dict[int, tuple[datetime, JiraClient]] = field(default_factory=dict)
    _mappings: dict[int, tuple[datetime, MappingSet]] = field(default_factory=dict)
    _create_meta: dict[tuple[int, str, str], tuple[float, list[RequiredField]]] = \
        field(default_factory=dict)
    _serving: dict[str, tuple[float, Integration | None]] = field(default_factory=dict)
    _qalita: dict[int, tuple[datetime, QalitaClient | None]] = field(default_factory=dict)
    # Integration id -> when Jira's ``myself`` last answered a 403's confirmation
    # (``pauses.refusal``): the other links of a bulk create refused alike are not asked again.
    myself_answered: dict[int, float] = field(default_factory=dict)
    # Status id -> category per integration, learned from what Jira shows (webhook bodies,
    # transitions), asked of Jira only for a status never seen.
    _categories: dict[int, dict[str, str]] = field(default_factory=dict)

    def serving(self, session: Session, tenant: str) -> Integration | None:
        """The integration serving ``tenant`` (``integrations.serving``; a detached, read-only
        copy), or None."""
        cached = self._serving.get(tenant)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        integration = integrations.serving(session, tenant)
        if integration is not None:
            session.expunge(integration)
        self._serving[tenant] = (time.monotonic() + SERVING_TTL_SECONDS, integration)
        return integration

    @classmethod
    def from_settings(cls, settings: Settings, database: Database,
                      limiter: RateLimiter | None = None) -> SyncContext:
        """The context a service process builds once (worker after the fork, web lazily)."""
        return cls(database=database, box=SecretBox(settings.require_secret_keys()),
                   debounce_seconds=settings.debounce_seconds, timings=settings.sync,
                   mapping_file=settings.mapping_file, limiter=limiter)

    def client(self, integration: Integration) -> JiraClient:
        cached = self._clients.get(integration.id)
        if cached is None or cached[0] != integration.updated_at:
            site = JiraSite(integration.base_url, integration.deployment)
            client = JiraClient(site, auth_for(integration, self.box), limiter=self.limiter,
                                rate_limit=self.timings.jira_rate_limit)
            cached = self._clients[integration.id] = (integration.updated_at, client)
        return cached[1]

    def qalita(self, integration: Integration) -> QalitaClient | None:
        """The QALITA API this integration writes back to; None when not configured."""
        cached = self._qalita.get(integration.id)
        if cached is None or cached[0] != integration.updated_at:
            token = self.box.open(integration.secrets_sealed).get("qalita_api_token")
            client = None
            if integration.qalita_api_url and token:
                client = QalitaClient(integration.qalita_api_url, token)
            cached = self._qalita[integration.id] = (integration.updated_at, client)
        return cached[1]

    def learn_category(self, integration_id: int, status_id: str | None,
                       category: str | None) -> None:
        if status_id and category:
            self._categories.setdefault(integration_id, {})[status_id] = category

    def status_category(self, integration_id: int, status_id: str | None) -> str | None:
        return self._categories.get(integration_id, {}).get(status_id or "")

    def mappings(self, integration: Integration) -> MappingSet:
        cached = self._mappings.get(integration.id)
        if cached is None or cached[0] != integration.updated_at:
            overrides: Any = (integration.options or {}).get("mapping")
            cached = self._mappings[integration.id] = (
                integration.updated_at, load_mapping(self.mapping_file, overrides))
        return cached[1]

    def required_fields(self, client: JiraClient, integration_id: int, project_key: str,
                        issue_type: str) -> list[RequiredField]:
        """Fields the create screen requires that jira-sync does not fill itself."""
        key = (integration_id, project_key, issue_type)
        cached = self._create_meta.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        types = client.create_issue_types(project_key)
        chosen = next((t for t in types if t.get("name") == issue_type
                       or t.get("id") == issue_type), None)
        required: list[RequiredField] = []
        if chosen is not None:
            required = [RequiredField(f["fieldId"], f.get("name") or f["fieldId"])
                        for f in client.create_fields(project_key, chosen["id"])
                        if f.get("required") and not f.get("hasDefaultValue")
                        and f.get("fieldId") not in FIELDS_THE_SYNC_SETS]
        self._create_meta[key] = (time.monotonic() + CREATE_META_TTL_SECONDS, required)
        return required
