"""Keyset paging for every admin list: newest first, an opaque cursor, stable under inserts.

An offset would skip or repeat rows while the sync keeps writing; a cursor holding the last
id seen does neither. It is opaque (base64 of JSON) so its form can change without breaking
clients that only pass it back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from jira_sync.admin.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode()


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        before = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["before"]
    except (UnicodeError, binascii.Error, ValueError, TypeError, KeyError):
        before = None
    if isinstance(before, bool) or not isinstance(before, int):
        raise Invalid("cursor: not a cursor this API gave out (pass next_cursor as it came)",
                      {"cursor": ["not a cursor this API gave out"]})
    return before


def page(session: Session, query: Select[Any], key: InstrumentedAttribute[Any],
         render: Callable[[Any], dict[str, Any]], *, limit: int | None = None,
         cursor: str | None = None) -> Page:
    """One page of ``query``'s rows, ordered by ``key`` (an integer id) descending."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit: between 1 and {MAX_LIMIT}",
                      {"limit": [f"must be between 1 and {MAX_LIMIT}"]})
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(key < before)
    rows = list(session.scalars(query.order_by(key.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([render(row) for row in rows],
                encode_cursor(getattr(rows[-1], key.key)) if more else None)
