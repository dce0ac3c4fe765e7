"""Logging for every process: one line per record, secrets masked before anything is written."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


class RedactingFormatter(logging.Formatter):
    """Masks known secret values and URL passwords in the whole formatted record.

    The whole record, not just the message: a secret can sit in an exception's text and
    so in the traceback.
    """

    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = _URL_PASSWORD.sub(r"\g<scheme>***@", super().format(record))
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def configure(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Readiness checks read the schema revision on every probe; that is not news, and
    # `jira-sync db` reports what it did itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)
