"""INSERT ... ON CONFLICT for the two backends we run on (Postgres and SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert(bind: Session | str, table: Any) -> Any:
    """A dialect insert for ``table`` that offers ``on_conflict_do_nothing/do_update``, for
    the session's database or the dialect named."""
    dialect = bind if isinstance(bind, str) else bind.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upsert is not supported on {dialect}")
