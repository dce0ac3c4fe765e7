"""JQL built from user-controlled values, always quoted.

Every literal is a quoted string: project keys can be reserved words (``DO``, ``INT``) and
labels or keys come from users. Inside quotes only ``"`` and ``\\`` need escaping for the
exact-match operators used here (``=``, ``in``); text search (``~``) is never used.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def label_is(label: str) -> str:
    return f"labels = {quote(label)}"


def keys_in(keys: Iterable[str]) -> str:
    return f"key in ({', '.join(quote(k) for k in keys)})"


def updated_since(project_key: str, since: datetime) -> str:
    """Issues of a project updated since ``since`` (minute precision, as JQL has).

    Jira reads the time in the searching account's profile time zone: give ``since`` in
    that zone. The key breaks ties so paging is stable.
    """
    stamp = quote(since.strftime("%Y-%m-%d %H:%M"))
    return (f"project = {quote(project_key)} AND updated >= {stamp} "
            "ORDER BY updated ASC, key ASC")
