"""Integrations: the tenant-to-Jira-site records and the environment bootstrap of one of them."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import JiraBootstrap
from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.mapping import tenant_label
from jira_sync.store.models import Integration
from jira_sync.store.upsert import insert


class TenantLabelCollision(ValueError):
    """Two tenants would share one marker label, which would let them adopt each other's issues."""


def serving(session: Session, tenant: str) -> Integration | None:
    """The enabled integration that serves ``tenant``, if any (one per tenant)."""
    return session.scalar(select(Integration).where(
        Integration.tenant == tenant, Integration.enabled.is_(True)))


def upsert_from_env(session: Session, bootstrap: JiraBootstrap, box: SecretBox) -> Integration:
    """Create or refresh the integration the ``JIRA_*`` variables describe.

    Safe when web, worker and beat run it at the same moment: the insert collapses on the
    tenant's unique key, then the row is locked and the environment's values written over it.
    Settings the environment does not carry (made through the admin API) are kept.
    """
    label = tenant_label(bootstrap.tenant)
    clash = session.scalar(select(Integration.tenant).where(
        Integration.tenant_label == label, Integration.tenant != bootstrap.tenant))
    if clash is not None:
        raise TenantLabelCollision(
            f"JIRA_SYNC_TENANT: {bootstrap.tenant!r} has the label form {label!r}, "
            f"already used by tenant {clash!r}")
    fields = {
        "name": f"Jira {urlsplit(bootstrap.base_url).hostname}",
        "source": "env",
        "deployment": bootstrap.deployment,
        "base_url": bootstrap.base_url,
        "auth_method": bootstrap.auth,
        "email": bootstrap.email,
        "cloud_id": bootstrap.cloud_id,
        "oauth_client_id": bootstrap.oauth_client_id,
        "project_key": bootstrap.project_key,
        "issue_type": bootstrap.issue_type,
        "qalita_api_url": bootstrap.qalita_api_url,
    }
    # No conflict target: a concurrent insert of the same tenant can also meet the label's
    # unique index first, which with ``(tenant)`` as the only target raised an error.
    session.execute(insert(session, Integration).values(
        tenant=bootstrap.tenant, tenant_label=label, enabled=True, options={},
        secrets_sealed=box.seal(bootstrap.secrets), **fields,
    ).on_conflict_do_nothing())
    integration = session.scalars(select(Integration).where(
        Integration.tenant == bootstrap.tenant).with_for_update()).one_or_none()
    if integration is None:
        # Only the label can have clashed, with a tenant created since the check.
        raise TenantLabelCollision(
            f"JIRA_SYNC_TENANT: {bootstrap.tenant!r} has the label form {label!r}, "
            "already used by another tenant")
    for key, value in fields.items():
        setattr(integration, key, value)
    if bootstrap.ip_allowlist is not None:
        integration.ip_allowlist = list(bootstrap.ip_allowlist)
    try:
        secrets = box.open(integration.secrets_sealed)
    except SecretsUnreadable:
        secrets = {}  # Sealed with a retired key: only what the environment gives survives.
    secrets.update(bootstrap.secrets)
    integration.secrets_sealed = box.seal(secrets)
    return integration
