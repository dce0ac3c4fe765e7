"""Search: Cloud's token-paged ``search/jql`` (the old ``search`` is gone: 410) and Server's
offset-paged ``search``, both with ``expand=changelog`` for a reconciliation that reads what it
missed. Server's ``validateQuery`` turns value errors into warnings."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from flask import Blueprint, jsonify, request

from jira_sync.simulators.jira.errors import JiraError, bad_request
from jira_sync.simulators.jira.jql import JqlError, Query, parse
from jira_sync.simulators.jira.model import Issue
from jira_sync.simulators.jira.render import FieldSelection
from jira_sync.simulators.jira.simulator import Simulator, json_body

GONE = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at "
        "https://developer.atlassian.com/changelog/#CHANGE-2046")
UNBOUNDED = ("Unbounded JQL queries are not allowed here. Please add a search restriction to "
             "your query.")
BAD_TOKEN = "The provided next page token is invalid or expired."


def _params() -> dict[str, Any]:
    """GET query parameters and POST bodies carry the same names; lists may be comma-joined."""
    if request.method == "POST":
        body = json_body(required=False) or {}
        if not isinstance(body, dict):
            raise bad_request(None, "The request body must be a JSON object.")
        return body
    out: dict[str, Any] = {key: request.args.get(key) for key in request.args}
    for key in ("fields", "properties", "reconcileIssues"):
        if key in request.args:
            out[key] = [part for value in request.args.getlist(key)
                        for part in value.split(",") if part]
    return out


def _query(jql: Any, *, bounded: bool) -> Query:
    if jql is not None and not isinstance(jql, str):
        raise bad_request(None, "The 'jql' parameter must be a string.")
    try:
        query = parse(jql or "")
    except JqlError as exc:
        raise bad_request(None, str(exc)) from None
    if bounded and query.where is None:
        raise bad_request(None, UNBOUNDED)
    return query


def _found(sim: Simulator, query: Query, reconcile: set[str], *,
           validate: bool = True) -> tuple[list[Issue], list[str]]:
    """Values are checked against the live site (an unknown project is a 400, as in Jira)."""
    try:
        return sim.store.search(query, reconcile, validate=validate)
    except JqlError as exc:
        raise bad_request(None, str(exc)) from None


def _expand(params: dict[str, Any], *, cloud: bool) -> set[str]:
    """Cloud's ``expand`` is one comma-separated string, in the body too (the OAS says so);
    Server's POST body takes a list as well."""
    raw = params.get("expand")
    if raw is None:
        return set()
    if isinstance(raw, list) and not cloud:
        raw = ",".join(str(part) for part in raw)
    if not isinstance(raw, str):
        raise bad_request(None, "The 'expand' parameter must be a comma-separated string.")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _validation(params: dict[str, Any]) -> str:
    """Server's ``validateQuery``: ``strict`` (also true, the default), ``warn`` (also false:
    errors come back as warnings) or ``none`` (no checks, no warnings)."""
    raw = params.get("validateQuery", "strict")
    mode = str(raw).lower() if not isinstance(raw, bool) else ("strict" if raw else "warn")
    modes = {"strict": "strict", "true": "strict", "warn": "warn", "false": "warn",
             "none": "none"}
    if mode not in modes:
        raise bad_request(None, f"Invalid validateQuery value '{raw}'. Use strict, warn or none.")
    return modes[mode]


def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(None, f"The '{name}' parameter must be a number.") from None


def _token(offset: int, jql: str) -> str:
    payload = {"o": offset, "q": hashlib.sha1(jql.encode()).hexdigest()[:12]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _offset(token: Any, jql: str) -> int:
    if token is None:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if payload["q"] == hashlib.sha1(jql.encode()).hexdigest()[:12]:
            return int(payload["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise bad_request(None, BAD_TOKEN)


def gone() -> None:
    """Cloud's old offset-paged search (v2 and v3): removed, answered with Jira's 410."""
    raise JiraError(410, [GONE])


def register(bp: Blueprint, sim: Simulator) -> None:
    def search_jql():
        params = _params()
        jql = params.get("jql") or ""
        query = _query(jql, bounded=True)
        offset = _offset(params.get("nextPageToken"), jql)
        fields = params.get("fields")
        size = _int(params, "maxResults", 50)
        size = max(1, min(size, 5000 if not fields or fields == ["id"] else 100))
        try:
            reconcile = {str(int(i)) for i in params.get("reconcileIssues") or []}
        except (TypeError, ValueError):
            raise bad_request(None, "'reconcileIssues' must be a list of issue ids.") from None
        found, _ = _found(sim, query, reconcile)
        page = found[offset:offset + size]
        renderer = sim.renderer()
        properties = params.get("properties") or []
        changelog = "changelog" in _expand(params, cloud=True)
        if fields:
            selection = FieldSelection.parse(fields, "id")
            issues = [renderer.issue(i, selection, properties, changelog=changelog)
                      for i in page]
        else:
            issues = [{"id": i.id, **renderer.expansions(i, changelog=changelog)} for i in page]
        body: dict[str, Any] = {"issues": issues}
        is_last = offset + size >= len(found)
        if not is_last:
            body["nextPageToken"] = _token(offset + size, jql)
        body["isLast"] = is_last
        return jsonify(body)

    def search():
        params = _params()
        query = _query(params.get("jql"), bounded=False)
        start = max(0, _int(params, "startAt", 0))
        size = max(0, min(_int(params, "maxResults", 50), 1000))
        mode = _validation(params)
        found, warnings = _found(sim, query, set(), validate=mode == "strict")
        selection = FieldSelection.parse(params.get("fields"), "*navigable")
        renderer = sim.renderer()
        properties = params.get("properties") or []
        changelog = "changelog" in _expand(params, cloud=False)
        body: dict[str, Any] = {
            "expand": "schema,names", "startAt": start, "maxResults": size,
            "total": len(found),
            "issues": [renderer.issue(i, selection, properties, changelog=changelog)
                       for i in found[start:start + size]]}
        if warnings and mode == "warn":
            body["warningMessages"] = warnings
        return jsonify(body)

    def approximate_count():
        """Cloud's count for a bounded JQL (exact here; Jira says it may lag)."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise bad_request(None, "The request body must be a JSON object with 'jql'.")
        found, _ = _found(sim, _query(body.get("jql"), bounded=True), set())
        return jsonify(count=len(found))

    methods = ["GET", "POST"]
    if sim.cloud:
        bp.add_url_rule("/search/jql", "search_jql", search_jql, methods=methods)
        bp.add_url_rule("/search/approximate-count", "approximate_count", approximate_count,
                        methods=["POST"])
        bp.add_url_rule("/search", "search", gone, methods=methods)
    else:
        bp.add_url_rule("/search", "search", search, methods=methods)
