"""The ways an admin action is refused, each with the answer an operator can act on.

The API maps them to HTTP statuses, the CLI to exit codes; the core never knows which.
"""

from __future__ import annotations


class AdminError(Exception):
    """An admin action that cannot be done as asked; ``reason`` says why and what to do."""

    status = 400

    def __init__(self, reason: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}


class Invalid(AdminError):
    """The request names something impossible (a bad field value, a malformed cursor)."""


class NotFound(AdminError):
    status = 404


class Conflict(AdminError):
    """The request clashes with the current state: a tenant taken, a field the environment
    owns, an integration that is disabled."""

    status = 409


class Unavailable(AdminError):
    """A remote the action depends on (QALITA, Jira) could not be reached or refused."""

    status = 502
