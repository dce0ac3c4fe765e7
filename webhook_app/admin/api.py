"""The admin API's plumbing: one declaration per operation gives its route, its validation and
its OpenAPI entry, so the document can never drift from what the views accept and return.

A view receives what it declared (``body``, ``query``, path arguments) already validated and
returns ``(payload, status)``; the payload is dumped through the status's schema. Every
refusal is JSON ``{"error", "reason", "fields"}``: marshmallow's errors become 400 with the
fields named, ``AdminError``s their own status.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import Unauthorized
from werkzeug.routing import IntegerConverter, Map

from jira_sync.admin.errors import AdminError
from jira_sync.admin.schemas import Problem
from webhook_app import context

PREFIX = "/api/v2"
_CONVERTER = re.compile(r"<(?:([a-z]+):)?([a-z_]+)>")
_PROBLEMS = {400: "the request is invalid: `fields` names what", 401: "no valid admin token",
             404: "no such resource", 409: "the request clashes with the current state",
             502: "QALITA or Jira could not be reached or refused",
             503: "not configured (JIRA_SYNC_SECRET_KEY) or the broker unreachable"}

View = Callable[..., tuple[Any, int]]


class Id(IntegerConverter):
    """An integration's id as Postgres stores it (INTEGER): past that, a 404 not a 500. The
    digits are bounded in the pattern too: werkzeug answers 405 for a path whose number only
    its range check refuses."""

    MAXIMUM = 2**31 - 1
    regex = r"\d{1,10}"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=self.MAXIMUM)


class BigId(IntegerConverter):
    """A BIGINT id: a dead letter's, a job's, a QALITA issue's."""

    MAXIMUM = 2**63 - 1
    regex = r"\d{1,19}"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=self.MAXIMUM)


CONVERTERS = {"id": Id, "bigid": BigId}


@dataclass(frozen=True)
class Operation:
    rule: str
    method: str
    summary: str
    tag: str
    body: type[Schema] | None
    query: type[Schema] | None
    responses: dict[int, type[Schema] | None]
    body_required: bool


@dataclass
class AdminApi:
    blueprint: Blueprint = field(default_factory=lambda: Blueprint("admin_api", __name__,
                                                                   url_prefix=PREFIX))
    operations: list[Operation] = field(default_factory=list)

    def route(self, rule: str, method: str, *, summary: str, tag: str,
              responses: dict[int, type[Schema] | None], body: type[Schema] | None = None,
              query: type[Schema] | None = None, partial: bool = False,
              optional_body: bool = False) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            def endpoint(**path: Any) -> ResponseReturnValue:
                if body is not None:
                    sent = request.get_data(cache=True) or not optional_body
                    path["body"] = _load(body, _json_object() if sent else {}, partial=partial)
                if query is not None:
                    path["query"] = _load(query, request.args.to_dict())
                payload, status = view(**path)
                schema = responses.get(status)
                if schema is None:
                    return (jsonify(payload) if payload is not None else ""), status
                return jsonify(schema().dump(payload)), status

            name = f"{view.__module__.rsplit('.', 1)[-1]}.{view.__name__}"
            self.blueprint.add_url_rule(rule, endpoint=name.replace(".", "_"),
                                        view_func=endpoint, methods=[method])
            self.operations.append(Operation(rule, method.lower(), summary, tag, body, query,
                                             responses, not optional_body))
            return view
        return decorator

    def spec(self) -> dict[str, Any]:
        spec = APISpec(title="jira-sync admin API", version="2", openapi_version="3.0.3",
                       plugins=[MarshmallowPlugin()],
                       info={"description": "Operate the QALITA-Jira integration (CONTRACT "
                             "§3). Every operation needs `Authorization: Bearer "
                             "<JIRA_SYNC_ADMIN_TOKEN>`."})
        spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
        spec.components.schema("Problem", schema=Problem)
        for path, (rule, operations) in self._by_path().items():
            spec.path(path=path, operations=operations, parameters=[
                {"in": "path", "name": name, "required": True, "schema": {
                    "type": "integer", "minimum": 1,
                    "maximum": CONVERTERS[converter].MAXIMUM}}
                for converter, name in _CONVERTER.findall(rule)])
        return spec.to_dict()

    def _by_path(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Each OpenAPI path with its Flask rule and its operations."""
        paths: dict[str, tuple[str, dict[str, Any]]] = {}
        for op in self.operations:
            path = PREFIX + _CONVERTER.sub(r"{\2}", op.rule)
            responses: dict[str | int, Any] = {}
            for status, schema in op.responses.items():
                answer: dict[str, Any] = {"description": _describe(status)}
                if schema is not None:
                    answer["content"] = {"application/json": {"schema": schema}}
                responses[status] = answer
            for status, description in _PROBLEMS.items():
                if status in (400, 401, 404, 503) or status in op.responses:
                    responses[status] = {"description": description, "content": {
                        "application/json": {"schema": "Problem"}}}
            entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                                     "security": [{"admin": []}], "responses": responses,
                                     "operationId": f"{op.method}_{path}"}
            if op.query is not None:
                entry["parameters"] = [{"in": "query", "schema": op.query}]
            if op.body is not None:
                entry["requestBody"] = {"required": op.body_required, "content": {
                    "application/json": {"schema": op.body}}}
            paths.setdefault(path, (op.rule, {}))[1][op.method] = entry
        return paths


def _describe(status: int) -> str:
    return {200: "done", 201: "created", 202: "accepted: queued for a worker",
            204: "done, nothing to show"}.get(status, "see the operation")


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError({"_body": ["send a JSON object (Content-Type: "
                                         "application/json)"]})
    return data


def _load(schema: type[Schema], data: dict[str, Any], *, partial: bool = False) -> Any:
    return schema().load(data, partial=partial)


# Under the API's prefix but not the admin API's: each authenticates its own way.
NOT_ADMIN = ("/api/v2/integrations/jira/webhook", "/api/v2/integrations/qalita/events",
             "/api/v2/openapi.json")


def guard() -> None:
    """The token before anything else under ``/api/v2`` is answered, a 404, 405 or 413
    included: those would tell a caller without it which paths and methods exist."""
    path = request.path
    if path.startswith(PREFIX + "/") and not any(
            path == exempt or path.startswith(exempt + "/") for exempt in NOT_ADMIN):
        authorize()


def authorize() -> None:
    """Bearer ``JIRA_SYNC_ADMIN_TOKEN``, compared in constant time; no hint on failure."""
    expected = context.settings().admin_token
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), expected.encode()):
        raise Unauthorized("a valid admin token is required")


def validation_error(exc: ValidationError) -> ResponseReturnValue:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
    fields = {name: _strings(value) for name, value in messages.items()}
    reason = "; ".join(f"{name}: {' '.join(value)}" for name, value in fields.items())
    return jsonify(error="Bad Request", reason=reason, fields=fields), 400


def admin_error(exc: AdminError) -> ResponseReturnValue:
    body: dict[str, Any] = {"error": _TITLES.get(exc.status, "Error"), "reason": exc.reason}
    if exc.fields:
        body["fields"] = exc.fields
    return jsonify(body), exc.status


_TITLES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 502: "Bad Gateway"}


def _strings(value: Any) -> list[str]:
    """marshmallow nests messages (per list item, per key); flattened for a reader."""
    if isinstance(value, dict):
        return [f"{key}: {text}" for key, item in value.items() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [str(value)]


api = AdminApi()


def openapi() -> Response:
    """Served without the token: the document holds nothing secret, and tools load it first."""
    return jsonify(api.spec())
