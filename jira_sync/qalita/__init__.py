"""The QALITA side: the one place that knows QALITA's REST API (CONTRACT §5)."""

from jira_sync.qalita.client import UPDATABLE_FIELDS, QalitaClient

__all__ = ["UPDATABLE_FIELDS", "QalitaClient"]
