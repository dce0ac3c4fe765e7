"""The web process's share of the environment bootstrap (CONTRACT §2).

``jira-sync web`` must start while the database is down, so the integration upsert runs in a
background thread that retries until the database is reachable and migrated.
"""

from __future__ import annotations

import logging
import threading
import time

from config.settings import Settings
from jira_sync.crypto import SecretBox
from jira_sync.integrations import TenantLabelCollision, apply_environment
from jira_sync.readiness import database_problem
from jira_sync.store.db import Database

logger = logging.getLogger("webhook_app.bootstrap")
RETRY_SECONDS = 2.0


def start(settings: Settings, database: Database) -> None:
    # Also without JIRA_BASE_URL: an integration the environment described before is then
    # handed back to the admin API.
    threading.Thread(target=_run, args=(settings, database), name="bootstrap",
                     daemon=True).start()


def _run(settings: Settings, database: Database) -> None:
    box = SecretBox(settings.require_secret_keys())
    waiting_logged = False
    while True:
        problem = database_problem(database)
        if problem is None:
            try:
                with database.unit_of_work() as session:
                    apply_environment(session, settings.jira, box)
            except TenantLabelCollision as exc:
                # A configuration error: retrying cannot fix it (worker and beat refuse to start).
                logger.error("bootstrap: %s", exc)
                return
            except Exception as exc:  # Logged and retried: the web keeps serving regardless.
                problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            else:
                if settings.jira is not None:
                    logger.info("bootstrap: integration of tenant %r is up to date",
                                settings.jira.tenant)
                return
        if not waiting_logged:
            logger.warning("bootstrap: waiting for the database (%s); retrying every %.0fs",
                           problem, RETRY_SECONDS)
            waiting_logged = True
        time.sleep(RETRY_SECONDS)
