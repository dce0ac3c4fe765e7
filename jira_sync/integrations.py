"""Integrations: the tenant-to-Jira-site records and the environment bootstrap of one of them."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from config.settings import JiraBootstrap
from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.mapping import tenant_label
from jira_sync.store.models import Integration
from jira_sync.store.upsert import insert
from jira_sync.sync import pauses


class TenantLabelCollision(ValueError):
    """Two tenants would share one marker label, which would let them adopt each other's issues."""


def serving(session: Session, tenant: str) -> Integration | None:
    """The integration that serves ``tenant``, if any (one per tenant), enabled or not: a
    disabled one still takes its tenant's events into its links, whose flushes it holds
    (``sync.pauses``), so enabling it needs only those flushes. A deleted one serves none."""
    return session.scalar(select(Integration).where(
        Integration.tenant == tenant, Integration.deleted_at.is_(None)))


# The integration fields each optional bootstrap variable sets (CONTRACT §2), by field.
OPTIONAL_ENV_FIELDS = ("email", "cloud_id", "oauth_client_id", "project_key", "issue_type",
                       "qalita_api_url")
# JIRA_OAUTH_REFRESH_TOKEN only seeds (CONTRACT §2): refresh tokens rotate, the stored one wins.
SEEDED_SECRETS = frozenset({"oauth_refresh_token"})


def default_name(base_url: str) -> str:
    """``Jira <host>``, within the column's 200 characters (a host name may have 253)."""
    return f"Jira {urlsplit(base_url).hostname}"[:200]


def env_fields(bootstrap: JiraBootstrap) -> list[str]:
    """The fields the environment sets, which the admin API may then not change."""
    owned = {"tenant", "base_url", "deployment", "auth_method"}
    owned.update(name for name in OPTIONAL_ENV_FIELDS if getattr(bootstrap, name) is not None)
    owned.update(name for name in bootstrap.secrets if name not in SEEDED_SECRETS)
    if bootstrap.ip_allowlist is not None:
        owned.add("ip_allowlist")
    return sorted(owned)


def apply_environment(session: Session, bootstrap: JiraBootstrap | None,
                      box: SecretBox) -> Integration | None:
    """What every service process does at start: upsert the integration the environment
    describes, and hand every other one back to the admin API (the environment no longer
    describes it, so its fields become editable and it may be deleted)."""
    others = update(Integration).where(Integration.env_fields.is_not(None))
    if bootstrap is not None:
        others = others.where(Integration.tenant != bootstrap.tenant)
    session.execute(others.values(env_fields=None))
    return None if bootstrap is None else upsert_from_env(session, bootstrap, box)


def upsert_from_env(session: Session, bootstrap: JiraBootstrap, box: SecretBox) -> Integration:
    """Create or refresh the integration the ``JIRA_*`` variables describe.

    Safe when web, worker and beat run it at the same moment: the insert collapses on the
    tenant's unique key, then the row is locked and the environment's values written over it.
    Settings the environment does not carry (made through the admin API, or set by a variable
    since removed) are kept.
    """
    label = tenant_label(bootstrap.tenant)
    clash = session.scalar(select(Integration.tenant).where(
        Integration.tenant_label == label, Integration.tenant != bootstrap.tenant))
    if clash is not None:
        raise TenantLabelCollision(
            f"JIRA_SYNC_TENANT: {bootstrap.tenant!r} has the label form {label!r}, "
            f"already used by tenant {clash!r}")
    fields = {
        "deployment": bootstrap.deployment,
        "base_url": bootstrap.base_url,
        "auth_method": bootstrap.auth,
        **{name: getattr(bootstrap, name) for name in OPTIONAL_ENV_FIELDS
           if getattr(bootstrap, name) is not None},
    }
    # No conflict target: a concurrent insert of the same tenant can also meet the label's
    # unique index first, which with ``(tenant)`` as the only target raised an error.
    session.execute(insert(session, Integration).values(
        tenant=bootstrap.tenant, tenant_label=label, enabled=True, options={},
        name=default_name(bootstrap.base_url), source="env",
        secrets_sealed=box.seal(bootstrap.secrets), **fields,
    ).on_conflict_do_nothing())
    integration = session.scalars(select(Integration).where(
        Integration.tenant == bootstrap.tenant).with_for_update()).one_or_none()
    if integration is None:
        # Only the label can have clashed, with a tenant created since the check.
        raise TenantLabelCollision(
            f"JIRA_SYNC_TENANT: {bootstrap.tenant!r} has the label form {label!r}, "
            "already used by another tenant")
    before = {key: getattr(integration, key) for key in fields}
    for key, value in fields.items():
        setattr(integration, key, value)
    integration.source, integration.deleted_at = "env", None
    integration.env_fields = env_fields(bootstrap)
    if bootstrap.ip_allowlist is not None:
        integration.ip_allowlist = list(bootstrap.ip_allowlist)
    try:
        secrets = box.open(integration.secrets_sealed)
    except SecretsUnreadable:
        secrets = {}  # Sealed with a retired key: only what the environment gives survives.
    stored = dict(secrets)
    secrets.update({name: value for name, value in bootstrap.secrets.items()
                    if name not in SEEDED_SECRETS or name not in secrets})
    integration.secrets_sealed = box.seal(secrets)
    if before != fields or stored != secrets:
        # The environment is where this integration's settings change: the fix for a
        # refused token lifts its pause here, as a PUT does for the admin API's (the held
        # flushes go with the next sweep).
        pauses.resume(session, integration, (pauses.JIRA, pauses.QALITA),
                      "the environment's settings changed")
    return integration
