"""Disabling holds an integration's work; enabling, or changing its settings, releases it.

A disabled integration still takes its events and deliveries into its links (stored, 2xx),
but its flushes stop before any remote call and leave the links due (``sync.pauses``). So
enabling needs no replay and no wait for a sweep: the flushes of every due link are all
there is to release. The same holds for a pause after a refused token, which a settings
change (a new token, most likely) lifts at once rather than at the next probe.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from jira_sync.store.models import Integration
from jira_sync.sync import pauses
from jira_sync.sync.journal import log
from jira_sync.sync.state import Due


def set_enabled(session: Session, integration: Integration, enabled: bool) -> list[Due]:
    """Enable or disable ``integration`` (loaded in ``session``, the caller's unit of work),
    leaving an ``admin`` log row; returns the flushes to send once it commits
    (``broker.send_flushes``): on enabling, those of every link that came due while it was
    disabled, in each direction not paused. Setting the flag it already has changes nothing
    and returns []."""
    if integration.enabled == enabled:
        return []
    integration.enabled = enabled
    if not enabled:
        log(session, integration.id, "admin", "disabled", "integration disabled: events and "
            "deliveries are stored and held; nothing is written to Jira or QALITA")
        return []
    dues = pauses.release(session, integration)
    log(session, integration.id, "admin", "enabled",
        f"integration enabled: {len({due.link_id for due in dues})} held link(s) released",
        flushes=len(dues))
    return dues


def settings_changed(session: Session, integration: Integration) -> list[Due]:
    """Lift both pauses of ``integration`` after its settings changed (the admin API's PUT
    calls it in the same unit of work): the change may well be the fix, and if it is not,
    the next refused call pauses it again. Returns the flushes of the work the pauses held,
    to send once the unit of work commits; [] when nothing was paused (or the integration is
    disabled: enabling releases it then)."""
    return pauses.resume(session, integration, (pauses.JIRA, pauses.QALITA),
                         "the integration's settings changed")
