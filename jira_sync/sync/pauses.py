"""Holds on a whole integration: disabled, deleted, or refused by Jira or QALITA.

A refusal of the credentials (a Jira 401, a Jira 403 that ``myself`` confirms, a QALITA
401) fails every link the same way, so dead-lettering each one would bury the cause under
a letter per link and need a replay of each once the token is fixed. Instead the integration
pauses: a Jira refusal stops both directions (the inbound flush reads Jira too), a QALITA
one only the inbound direction. Held work parks without counting an attempt: the link stays
due, and the flushes are sent again when the hold ends (``release``): on enabling, on a
settings change, or when beat's probe (``probe``) sees the refused call succeed.

A flush checks ``stopped`` before any remote call, so a held integration costs no call but
the probe's; the sweep and reconciliation leave held integrations out (``running``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from jira_sync.remote import AuthError, RemoteError
from jira_sync.store.models import Integration, IssueLink
from jira_sync.store.types import utcnow
from jira_sync.sync.journal import log
from jira_sync.sync.state import BLOCKED, FAILED, FINAL_STATES, SEVERING, Due

if TYPE_CHECKING:  # the context reads integrations, which lift pauses
    from jira_sync.sync.context import SyncContext

logger = logging.getLogger("jira_sync.pauses")
JIRA, QALITA = "jira", "qalita"
# The columns that pause each side; a Jira pause holds both directions.
PAUSE_COLUMNS = {JIRA: ("jira_paused_at", "jira_paused_reason"),
                 QALITA: ("qalita_paused_at", "qalita_paused_reason")}
# QALITA's client names every call it makes this way (jira_sync/qalita/client.py).
QALITA_CALL_PREFIX = "QALITA "
# How long a ``myself`` that answered stands for the token's validity: long enough for every
# link of one refused bulk create, short enough that a token revoked since is soon found.
MYSELF_TRUSTED_SECONDS = 10.0


def stopped(integration: Integration, *, inbound: bool) -> str | None:
    """Why the integration's flushes of that direction must not call out now, or None."""
    if integration.deleted_at is not None:
        return "the integration is deleted"
    if not integration.enabled:
        return "the integration is disabled"
    if integration.jira_paused_at is not None:
        return f"paused after Jira refused the credentials: {integration.jira_paused_reason}"
    if inbound and integration.qalita_paused_at is not None:
        return ("the inbound direction is paused after QALITA refused the token: "
                f"{integration.qalita_paused_reason}")
    return None


def running(*, inbound: bool) -> Select[tuple[int]]:
    """The ids of the integrations whose flushes of that direction run (``stopped``'s
    complement, as SQL for the sweeps)."""
    query = select(Integration.id).where(Integration.deleted_at.is_(None),
                                         Integration.enabled.is_(True),
                                         Integration.jira_paused_at.is_(None))
    if inbound:
        query = query.where(Integration.qalita_paused_at.is_(None))
    return query


def refusal(ctx: SyncContext, integration: Integration, error: RemoteError, *,
            inbound: bool) -> str | None:
    """The side (``JIRA`` or ``QALITA``) whose refusal of the credentials ``error`` is, or
    None when it concerns only the link at hand (a 403 for one project, issue or transition).

    Jira answers 403 both for a revoked token (Server/DC, OAuth scopes) and for what the
    account may not do in one place, so a 403 counts as a refusal only when ``myself``
    fails too; a confirmation that cannot be had (``myself`` unreachable) leaves it the
    link's. Called outside any transaction: it may call Jira.
    """
    if error.reason.startswith(QALITA_CALL_PREFIX):
        return QALITA if inbound and isinstance(error, AuthError) else None
    if isinstance(error, AuthError):
        return JIRA
    if error.status != 403:
        return None
    with ctx.database.unit_of_work() as session:
        if session.scalar(select(Integration.jira_paused_at).where(
                Integration.id == integration.id)) is not None:
            return JIRA  # another link's refusal was confirmed meanwhile: no ``myself``
    answered = ctx.myself_answered.get(integration.id)
    if answered is not None and time.monotonic() - answered < MYSELF_TRUSTED_SECONDS:
        return None
    try:
        ctx.client(integration).myself()
    except RemoteError as confirmed:
        refused = isinstance(confirmed, AuthError) or confirmed.status == 403
        return JIRA if refused else None
    ctx.myself_answered[integration.id] = time.monotonic()
    return None


def pause(session: Session, integration_id: int, side: str, reason: str) -> None:
    """Pause the integration's ``side``; only the refusal that starts a pause is logged."""
    at, why = PAUSE_COLUMNS[side]
    paused = session.execute(update(Integration).where(
        Integration.id == integration_id, getattr(Integration, at).is_(None)).values(
        {at: utcnow(), why: reason[:2000],
         # Not a settings change: caches keyed on it (clients, webhook secrets) stay.
         Integration.updated_at: Integration.updated_at})
        .execution_options(synchronize_session=False)).rowcount
    if paused:
        held = "both directions" if side == JIRA else "the inbound direction (Jira to QALITA)"
        log(session, integration_id, "pause", "paused",
            f"{'Jira' if side == JIRA else 'QALITA'} refused the credentials; {held} of the "
            f"integration paused until a call succeeds or the settings change: {reason}",
            level="error", side=side)


def resume(session: Session, integration: Integration, sides: tuple[str, ...],
           why: str) -> list[Due]:
    """Lift the pauses of ``sides`` (those set), and return the flushes of the work they
    held; [] when none was paused."""
    lifted = [side for side in sides if getattr(integration, PAUSE_COLUMNS[side][0])]
    if not lifted:
        return []
    for side in lifted:
        at, reason = PAUSE_COLUMNS[side]
        setattr(integration, at, None)
        setattr(integration, reason, None)
    log(session, integration.id, "pause", "resumed",
        f"{' and '.join('Jira' if s == JIRA else 'QALITA' for s in lifted)} pause lifted: "
        f"{why}", sides=lifted)
    return release(session, integration)


def release(session: Session, integration: Integration) -> list[Due]:
    """The flushes of every due link of the integration, in the directions that now run.

    Held flushes left their links due (``due_at``, a parked ``next_attempt_at``,
    ``inbound_due_at``). As in the sweep, blocked and failed links wait for a new change or
    a replay, and a severing link still has its last flush.
    """
    now = utcnow()
    outbound = stopped(integration, inbound=False) is None
    inbound = stopped(integration, inbound=True) is None
    if not (outbound or inbound):
        return []
    dues: list[Due] = []
    for link_id, state, due_at, wake, inbound_due in session.execute(select(
            IssueLink.id, IssueLink.state, IssueLink.due_at, IssueLink.next_attempt_at,
            IssueLink.inbound_due_at).where(
            IssueLink.integration_id == integration.id,
            or_(IssueLink.due_at.is_not(None), IssueLink.next_attempt_at.is_not(None),
                IssueLink.inbound_due_at.is_not(None))).order_by(IssueLink.id)):
        at = due_at or wake
        if outbound and at is not None and (
                state == SEVERING or state not in (*FINAL_STATES, BLOCKED, FAILED)):
            dues.append(Due(link_id, max(at, now)))
        if inbound and inbound_due is not None and state not in FINAL_STATES:
            dues.append(Due(link_id, max(inbound_due, now), inbound=True))
    return dues


@dataclass(frozen=True)
class _Paused:
    integration: Integration
    sides: tuple[str, ...]


def any_paused(session: Session) -> bool:
    """Whether a live integration is paused now (one indexed-free read of a small table)."""
    return session.scalar(select(Integration.id).where(
        Integration.deleted_at.is_(None), Integration.enabled.is_(True),
        or_(Integration.jira_paused_at.is_not(None),
            Integration.qalita_paused_at.is_not(None))).limit(1)) is not None


def probe(ctx: SyncContext) -> list[Due]:
    """Try each paused side once with a cheap read (Jira's ``myself``, a one-issue page of
    QALITA's issues); a side that answers resumes and its held work is returned to flush.
    A refusal again leaves it paused, quietly: the pause's log row already says why."""
    with ctx.database.unit_of_work() as session:
        found = []
        for integration in session.scalars(select(Integration).where(
                Integration.deleted_at.is_(None), Integration.enabled.is_(True),
                or_(Integration.jira_paused_at.is_not(None),
                    Integration.qalita_paused_at.is_not(None))).order_by(Integration.id)):
            sides = tuple(side for side in (JIRA, QALITA)
                          if getattr(integration, PAUSE_COLUMNS[side][0]) is not None)
            session.expunge(integration)
            found.append(_Paused(integration, sides))
    dues: list[Due] = []
    for paused in found:
        answered = tuple(side for side in paused.sides if _answers(ctx, paused.integration,
                                                                    side))
        if answered:
            with ctx.database.unit_of_work() as session:
                integration = session.get(Integration, paused.integration.id,
                                          with_for_update=True)
                if integration is not None:
                    dues += resume(session, integration, answered, "the probe's call succeeded")
    return dues


def _answers(ctx: SyncContext, integration: Integration, side: str) -> bool:
    try:
        if side == JIRA:
            ctx.client(integration).myself()
        else:
            qalita = ctx.qalita(integration)
            if qalita is not None:  # unset since the pause: nothing to be refused
                qalita.list_issues(0, 1)
    except RemoteError as exc:
        logger.debug("integration %s: %s still refused (%s)", integration.id, side, exc.reason)
        return False
    except Exception as exc:  # A broken setting: still paused, and the others are probed.
        logger.warning("integration %s: probing %s failed: %s", integration.id, side,
                       type(exc).__name__)
        return False
    return True
