"""Logging for every process: one line per record, secrets masked before anything is written.

``JIRA_SYNC_LOG_FORMAT=json`` makes each line one JSON object, for log shippers that index
fields; it carries what the running task bound (``bind``): the Celery task id, the tenant,
the QALITA issue and the Jira key, so one issue's story can be searched across processes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
# The fields a JSON line may carry beyond the record's own, in the order they are written.
CONTEXT_FIELDS = ("task_id", "tenant", "qalita_issue_id", "jira_key")

_context: ContextVar[dict[str, Any] | None] = ContextVar("jira_sync_log_context", default=None)


def bind(**fields: Any) -> None:
    """Add ``fields`` (among ``CONTEXT_FIELDS``; None removes one) to every record logged
    from here on in this context, until ``clear_context``. A worker clears it after each
    task, so a pool process never lends one task's issue to the next."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = {**(_context.get() or {}), **fields}
    _context.set({key: value for key, value in merged.items() if value is not None})


def clear_context() -> None:
    _context.set(None)


class RedactingFormatter(logging.Formatter):
    """Masks known secret values and URL passwords in the whole formatted record.

    The whole record, not just the message: a secret can sit in an exception's text and
    so in the traceback.
    """

    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\g<scheme>***@", text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(RedactingFormatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``process``,
    ``message``, the bound context fields that are known, and ``exception`` with the
    traceback. Each value is masked before it is encoded: JSON escapes would otherwise hide
    a secret holding a quote or backslash from the mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(secrets, fmt="%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            **(_context.get() or {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps({key: self.redact(value) if isinstance(value, str) else value
                           for key, value in line.items()}, default=str)


def configure(level: str, secrets: Iterable[str] = (), *, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets) if log_format == "json"
                         else RedactingFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Readiness checks read the schema revision on every probe; that is not news, and
    # `jira-sync db` reports what it did itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)
