"""Encryption of credentials at rest.

Secrets are stored as one Fernet token per integration. A :class:`MultiFernet` over the
comma-separated ``JIRA_SYNC_SECRET_KEY`` lets operators rotate keys: the first key
encrypts, every key decrypts, and :meth:`SecretBox.rotate` re-encrypts with the first.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretsUnreadable(Exception):
    """The stored secrets were encrypted with a key that is no longer configured."""


class SecretBox:
    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise _unreadable() from None

    def rotate(self, token: str) -> str:
        """The same secrets sealed under the first key (``jira-sync secrets rotate``)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise _unreadable() from None


def _unreadable() -> SecretsUnreadable:
    # Deliberately no detail: the token and keys must never reach a log line.
    return SecretsUnreadable("stored credentials cannot be decrypted with JIRA_SYNC_SECRET_KEY "
                             "(was a key removed from the rotation list?)")
