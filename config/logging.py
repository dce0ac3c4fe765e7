"""Logging for every process: one line per record, secrets masked before anything is written."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


class RedactingFilter(logging.Filter):
    """Replaces known secret values and URL passwords in the final message with '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _URL_PASSWORD.sub(r"\g<scheme>***@", message)
        for secret in self._secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Readiness checks read the schema revision on every probe; that is not news, and
    # `jira-sync db` reports what it did itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)
