"""Schemas for what arrives from outside (QALITA events, Jira webhooks) -> typed objects."""
