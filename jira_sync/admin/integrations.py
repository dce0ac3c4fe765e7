"""Integrations as operators manage them: create, change, disable, delete, a new webhook URL.

The environment's integration is shared with the bootstrap (CONTRACT §2): the fields it sets
are its own (``env_fields``), so the API refuses to change them rather than have the next
start silently undo the change. Secrets are write-only: sealed on the way in, reported only
as ``<name>_set``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync import deliveries
from jira_sync.admin import holds
from jira_sync.admin.errors import Conflict, Invalid, NotFound
from jira_sync.admin.paging import Page, page
from jira_sync.admin.schemas import OPTIONAL_FIELDS, SECRET_FIELDS
from jira_sync.crypto import SecretBox, SecretsUnreadable
from jira_sync.integrations import default_name
from jira_sync.mapping import tenant_label
from jira_sync.store.models import Integration
from jira_sync.store.types import utcnow
from jira_sync.sync.journal import log
from jira_sync.sync.state import Due

# What each auth method cannot work without.
AUTH_NEEDS = {
    "basic": ("email", "api_token"),
    "pat": ("pat",),
    "oauth2": ("oauth_client_id", "oauth_client_secret", "oauth_refresh_token"),
}
# Fields that may not be null once the integration exists.
REQUIRED_FIELDS = ("name", "enabled", "base_url", "deployment", "auth_method")


def get(session: Session, integration_id: int, *, lock: bool = False) -> Integration:
    """The integration, unless it does not exist or was deleted."""
    integration = session.get(Integration, integration_id, with_for_update=lock)
    if integration is None or integration.deleted_at is not None:
        raise NotFound(f"no integration {integration_id}")
    return integration


def by_tenant(session: Session, tenant: str, *, deleted: bool = False,
              lock: bool = False) -> Integration:
    """The tenant's integration (the CLI and the issue paths address them by tenant);
    ``deleted`` includes a soft-deleted one, whose links stay readable; ``lock`` holds its
    row for a change (its secrets are read and sealed again whole)."""
    query = select(Integration).where(Integration.tenant == tenant)
    if not deleted:
        query = query.where(Integration.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    integration = session.scalar(query)
    if integration is None:
        raise NotFound(f"no integration for tenant {tenant!r}")
    return integration


def list_integrations(session: Session, box: SecretBox, *, limit: int | None = None,
                      cursor: str | None = None) -> Page:
    return page(session, select(Integration).where(Integration.deleted_at.is_(None)),
                Integration.id, lambda row: view(row, box), limit=limit, cursor=cursor)


def view(integration: Integration, box: SecretBox) -> dict[str, Any]:
    """The integration as the API shows it; no secret, only whether each is set."""
    stored = _secrets(integration, box)
    return {
        "id": integration.id, "tenant": integration.tenant, "name": integration.name,
        "enabled": integration.enabled, "deployment": integration.deployment,
        "base_url": integration.base_url, "auth_method": integration.auth_method,
        **{name: getattr(integration, name) for name in OPTIONAL_FIELDS},
        "mapping": (integration.options or {}).get("mapping"),
        "ip_allowlist": integration.ip_allowlist,
        **{f"{name}_set": bool(stored.get(name)) for name in SECRET_FIELDS},
        "webhook_url_set": integration.webhook_token_hash is not None,
        "env_fields": list(integration.env_fields or []),
        "source": integration.source, "paused": paused(integration),
        "created_at": integration.created_at, "updated_at": integration.updated_at,
    }


def paused(integration: Integration) -> dict[str, str]:
    """Why a side is paused: ``jira`` stops both directions, ``qalita`` the inbound one."""
    return {side: reason for side, reason in (("jira", integration.jira_paused_reason),
                                               ("qalita", integration.qalita_paused_reason))
            if reason}


def create(session: Session, data: Mapping[str, Any], box: SecretBox, *,
           public_url: str) -> tuple[Integration, str, list[Due]]:
    """A new integration, or a deleted one of the same tenant revived with ``data``; returns
    it with its webhook token URL (shown this once: only the token's hash is kept) and, for
    a revived one, the flushes of the work its links held meanwhile."""
    missing = [name for name in ("tenant", "base_url") if data.get(name) is None]
    if missing:
        raise Invalid(f"{', '.join(missing)}: required",
                      {name: ["required to create an integration"] for name in missing})
    tenant = data["tenant"]
    label = tenant_label(tenant)
    found = session.scalars(select(Integration).where(
        (Integration.tenant == tenant) | (Integration.tenant_label == label))
        .with_for_update()).all()
    revived = None
    for existing in found:
        if existing.tenant != tenant:
            raise Conflict(f"tenant {tenant!r} has the marker label form {label!r}, already "
                           f"used by tenant {existing.tenant!r}", {"tenant": ["label taken"]})
        if existing.deleted_at is None:
            raise Conflict(f"tenant {tenant!r} already has integration {existing.id}: change "
                           "it with PUT", {"tenant": ["taken"]})
        revived = existing
    integration = revived or Integration(tenant=tenant, tenant_label=label, options={},
                                         source="api")
    # A revived integration starts from what is posted; only its links and history remain.
    defaults = {"name": default_name(data["base_url"]), "enabled": True,
                "deployment": "cloud",
                "auth_method": "pat" if data.get("pat") and not data.get("email") else "basic",
                **{name: None for name in (*OPTIONAL_FIELDS, "mapping", "ip_allowlist")}}
    integration.deleted_at = None
    settings = {**defaults, **data}
    enabled = settings.pop("enabled")
    if revived is None:
        integration.enabled = enabled
    _apply(integration, settings, box, replace_secrets=True)
    session.add(integration)
    session.flush()
    log(session, integration.id, "admin", "revived" if revived else "created",
        f"integration of tenant {tenant!r} {'revived' if revived else 'created'}",
        fields=sorted(data))
    # Revived with new settings: a pause of the old ones no longer stands.
    dues = [*holds.settings_changed(session, integration),
            *holds.set_enabled(session, integration, enabled)] if revived else []
    return integration, deliveries.token_url(
        public_url, deliveries.new_token(session, integration)), dues


def update(session: Session, integration: Integration, data: Mapping[str, Any],
           box: SecretBox) -> tuple[list[str], list[Due]]:
    """Change only the fields in ``data`` (null clears an optional one); returns the names of
    the fields that changed and the flushes to send once committed: enabling releases what
    was held, and any other change lifts a pause (it may well be the fix)."""
    owned = sorted(set(data) & set(integration.env_fields or []))
    if owned:
        raise Conflict(f"{', '.join(owned)}: set by the environment (JIRA_* variables); "
                       "change the variable and restart, or remove it to manage the field "
                       "here", {name: ["set by the environment"] for name in owned})
    if "tenant" in data and data["tenant"] != integration.tenant:
        raise Conflict("tenant: cannot change (it is in the marker label of every linked "
                       "Jira issue); create an integration for the new tenant instead",
                       {"tenant": ["cannot change"]})
    cleared = [name for name in REQUIRED_FIELDS if name in data and data[name] is None]
    if cleared:
        raise Invalid(f"{', '.join(cleared)}: cannot be null",
                      {name: ["cannot be null"] for name in cleared})
    settings = {name: value for name, value in data.items() if name != "enabled"}
    before = view(integration, box)
    _apply(integration, settings, box, replace_secrets=False)
    after = view(integration, box)
    changed = sorted(name for name in settings if name in SECRET_FIELDS
                     or before.get(name) != after.get(name))
    dues: list[Due] = []
    if changed:
        log(session, integration.id, "admin", "settings_changed",
            f"changed: {', '.join(changed)}", fields=changed)
        dues += holds.settings_changed(session, integration)
    if "enabled" in data and data["enabled"] != integration.enabled:
        changed.append("enabled")
        dues += holds.set_enabled(session, integration, data["enabled"])
    return changed, dues


def delete(session: Session, integration: Integration) -> None:
    """Soft: the integration stops, its links and history stay, a POST revives it
    (``links.sever_all`` first when its links are to be severed too)."""
    if integration.env_fields:
        raise Conflict("the environment describes this integration (JIRA_BASE_URL and "
                       "its variables): remove them and restart instead")
    holds.set_enabled(session, integration, False)
    integration.deleted_at = utcnow()
    log(session, integration.id, "admin", "deleted",
        f"integration of tenant {integration.tenant!r} deleted")


def new_webhook_token(session: Session, integration: Integration, *, public_url: str) -> str:
    """A new token URL, shown this once; the one before stops working at once."""
    url = deliveries.token_url(public_url, deliveries.new_token(session, integration))
    log(session, integration.id, "admin", "webhook_token", "new webhook URL made; the "
        "previous one no longer works")
    return url


def _apply(integration: Integration, data: Mapping[str, Any], box: SecretBox, *,
           replace_secrets: bool) -> None:
    for name in ("name", "base_url", "deployment", "auth_method",
                 *OPTIONAL_FIELDS, "ip_allowlist"):
        if name in data:
            setattr(integration, name, data[name])
    if "mapping" in data:
        options = dict(integration.options or {})
        options.pop("mapping", None)
        if data["mapping"] is not None:
            options["mapping"] = data["mapping"]
        integration.options = options
    secrets = {} if replace_secrets else _secrets(integration, box)
    for name in SECRET_FIELDS:
        if name in data:
            secrets.pop(name, None)
            if data[name] is not None:
                secrets[name] = data[name]
    missing = [name for name in AUTH_NEEDS[integration.auth_method]
               if not (secrets.get(name) or getattr(integration, name, None))]
    if missing:
        raise Invalid(f"{', '.join(missing)}: required when auth_method is "
                      f"{integration.auth_method}",
                      {name: [f"required when auth_method is {integration.auth_method}"]
                       for name in missing})
    integration.secrets_sealed = box.seal(secrets)


def _secrets(integration: Integration, box: SecretBox) -> dict[str, str]:
    try:
        return box.open(integration.secrets_sealed)
    except SecretsUnreadable:
        return {}  # Sealed under a retired key: as good as unset; a PUT can set them again.
