"""How a request proves who it is. One small interface, so OAuth 2.0 (3LO) can plug in later
without touching the operations: it will refresh its token in ``on_unauthorized``."""

from __future__ import annotations

import base64
from typing import Protocol


class Auth(Protocol):
    # The OAuth app the calls are made as: its hourly points quota covers them. API tokens
    # and PATs are exempt (None).
    app: str | None

    def headers(self) -> dict[str, str]: ...

    def on_unauthorized(self) -> bool:
        """Called after a 401; True when new credentials are worth one more try."""
        ...


class BasicAuth:
    """Jira Cloud e-mail + API token (also Server/DC user + password)."""

    app = None

    def __init__(self, email: str, token: str) -> None:
        raw = f"{email}:{token}".encode()
        self._header = f"Basic {base64.b64encode(raw).decode()}"
        self.email = email

    def __repr__(self) -> str:
        return f"BasicAuth({self.email!r}, <token hidden>)"

    def headers(self) -> dict[str, str]:
        return {"Authorization": self._header}

    def on_unauthorized(self) -> bool:
        return False


class BearerAuth:
    """Server/DC personal access token."""

    app = None

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __repr__(self) -> str:
        return "BearerAuth(<token hidden>)"

    def headers(self) -> dict[str, str]:
        return {"Authorization": self._header}

    def on_unauthorized(self) -> bool:
        return False
