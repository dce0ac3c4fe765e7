"""Who is who on both sides: QALITA's e-mail addresses and Jira's users, both ways.

The identity map (``user_identities``) keeps each answer, so a flush asks Jira about a person
once, and asks again about one it could not find only after a while.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from jira_sync.jira.client import JiraClient
from jira_sync.remote import PermanentError
from jira_sync.store.models import UserIdentity
from jira_sync.store.types import utcnow
from jira_sync.store.upsert import insert
from jira_sync.sync.context import SyncContext

# An unresolvable person is looked up again after this long, not at every flush.
IDENTITY_RECHECK = timedelta(hours=12)


def resolve_user(ctx: SyncContext, client: JiraClient, integration_id: int,
                 email: str) -> dict[str, Any] | None:
    """The Jira user behind a QALITA e-mail, through the identity map, then user search.

    Unresolvable is not an error (the issue stays unassigned): no match, several, or a search
    this account may not make all count as unresolved, and are asked again only later.
    """
    key = email.strip().lower()
    with ctx.database.unit_of_work() as session:
        known = session.scalar(select(UserIdentity).where(
            UserIdentity.integration_id == integration_id, UserIdentity.email == key))
        if known is not None and (known.resolved or known.checked_at > utcnow() - IDENTITY_RECHECK):
            if not known.resolved:
                return None
            return {"accountId": known.jira_account_id, "name": known.jira_username}
    try:
        user = client.find_user(key)
    except PermanentError:
        user = None
    values = {"resolved": user is not None, "checked_at": utcnow(),
              "jira_account_id": user and user.get("accountId"),
              "jira_username": user and user.get("name"),
              "display_name": user and user.get("displayName")}
    with ctx.database.unit_of_work() as session:
        session.execute(insert(session, UserIdentity).values(
            integration_id=integration_id, email=key, **values,
        ).on_conflict_do_update(index_elements=["integration_id", "email"], set_=values))
    return user


def email_of(ctx: SyncContext, client: JiraClient, integration_id: int,
             ref: str) -> str | None:
    """The e-mail of the Jira user a changelog names (accountId on Cloud, user name on
    Server): the identity map first, then Jira's user API. None when Jira hides it (Cloud
    users may) or knows no such user: the caller writes nothing rather than a guess."""
    column = UserIdentity.jira_account_id if client.is_cloud else UserIdentity.jira_username
    with ctx.database.unit_of_work() as session:
        known = session.scalar(select(UserIdentity.email).where(
            UserIdentity.integration_id == integration_id, column == ref,
            UserIdentity.resolved.is_(True)))
    if known is not None:
        return known
    try:
        user = client.user(ref)
    except PermanentError:
        user = None
    email = (user or {}).get("emailAddress")
    if not email:
        return None
    key = email.strip().lower()
    values = {"resolved": True, "checked_at": utcnow(),
              "jira_account_id": user.get("accountId"),  # type: ignore[union-attr]
              "jira_username": user.get("name"),  # type: ignore[union-attr]
              "display_name": user.get("displayName")}  # type: ignore[union-attr]
    with ctx.database.unit_of_work() as session:
        session.execute(insert(session, UserIdentity).values(
            integration_id=integration_id, email=key, **values,
        ).on_conflict_do_update(index_elements=["integration_id", "email"], set_=values))
    return key
