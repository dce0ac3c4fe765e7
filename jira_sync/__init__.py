"""jira-sync: keeps QALITA data-quality issues and Jira issues in step, both ways."""

from jira_sync.publish import publish_qalita_event

__all__ = ["publish_qalita_event"]
