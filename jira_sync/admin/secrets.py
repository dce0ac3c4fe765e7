"""Re-sealing stored credentials under the first secret key, so an old key can be retired.

Each integration is re-sealed in its own transaction, under a lock on its row: a writer of
secrets (the environment bootstrap, a settings change, a token refresh) either commits before
the row is read, and its secrets are the ones re-sealed, or waits for the re-seal and writes
over it, so no secret is lost. One row sealed with no configured key stops only itself.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jira_sync.crypto import SecretBox
from jira_sync.store.models import Integration
from jira_sync.sync import journal


def sealed(session: Session) -> list[tuple[int, str]]:
    """(id, tenant) of every integration holding secrets, soft-deleted ones too: a revived
    integration must still open with the keys of its day."""
    return [(row.id, row.tenant) for row in session.execute(
        select(Integration.id, Integration.tenant)
        .where(Integration.secrets_sealed.is_not(None)).order_by(Integration.id))]


def reseal(session: Session, integration_id: int, box: SecretBox) -> bool:
    """Re-seal one integration's secrets under ``box``'s first key, locking its row until the
    caller's unit of work ends; False when it is gone or holds none. Raises SecretsUnreadable
    when no key of ``box`` opens them (the caller's transaction should then roll back)."""
    integration = session.scalars(select(Integration).where(
        Integration.id == integration_id).with_for_update()).one_or_none()
    if integration is None or not integration.secrets_sealed:
        return False
    integration.secrets_sealed = box.rotate(integration.secrets_sealed)
    journal.log(session, integration_id, "admin", "secrets_rotated",
                "credentials re-sealed under the first key of JIRA_SYNC_SECRET_KEY")
    return True
