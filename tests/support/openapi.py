"""Atlassian's Jira Cloud v3 OpenAPI document as a checker: which operations exist, and
whether a request body fits the operation's request schema."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

DOCUMENT = Path(__file__).parents[1] / "fixtures" / "jira" / "jira-cloud-openapi-v3.json"


@cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Path templates as regexes; literal templates first so /issue/bulk beats /issue/{id}."""
    templates = sorted(document()["paths"], key=lambda t: (t.count("{"), -len(t)))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"), t)
            for t in templates]


def operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The OpenAPI template and operation a concrete request path and method hit, if any."""
    for pattern, template in _templates():
        if pattern.match(path):
            # The most specific template decides: a literal path (/issue/bulk) that lacks the
            # method does not fall through to a parameter (/issue/{issueIdOrKey}).
            found = document()["paths"][template].get(method.lower())
            return (template, found) if found is not None else None
    return None


def body_errors(method: str, path: str, body: Any) -> list[str]:
    """Why ``body`` does not fit the operation's JSON request schema (empty when it does)."""
    found = operation(method, path)
    if found is None:
        return [f"no operation {method} {path}"]
    content = (found[1].get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if schema is None:
        return [] if body is None else [f"{method} {path} takes no JSON body"]
    root = {**schema, "components": document()["components"]}
    validator = jsonschema.Draft4Validator(root)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(body)]
