"""Answers held to the response schemas of Atlassian's Cloud OpenAPI document.

The document declares no nullability, while Jira sends ``null`` for empty values; nulls are
left out before validating. Changelog items may carry ``tmpFromAccountId``/``tmpToAccountId``,
which real Cloud answers and webhooks do carry though ``ChangeDetails`` does not list them.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from tests.support import openapi

REAL_EXTRAS = frozenset({"tmpFromAccountId", "tmpToAccountId"})


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _without_extras(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_extras(v) for k, v in value.items() if k not in REAL_EXTRAS}
    if isinstance(value, list):
        return [_without_extras(v) for v in value]
    return value


def errors(schema: str, body: Any) -> list[str]:
    """Why ``body`` is not a ``schema`` (a name under components/schemas); empty when it is."""
    root = {"$ref": f"#/components/schemas/{schema}",
            "components": openapi.document()["components"]}
    validator = jsonschema.Draft4Validator(root)
    checked = _without_extras(_without_nulls(body))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(checked)]
