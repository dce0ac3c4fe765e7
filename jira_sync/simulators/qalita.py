"""A QALITA API simulator (CONTRACT §5) for tests, the demo and benchmarks.

The real backend is licensed and cannot run in CI, so this stands in for it: it keeps issues
and comments, records every API call (with the ``X-Qalita-Origin`` header that tells our
writes from a user's), and answers the way QALITA's FastAPI backend does (bare JSON arrays,
``{"detail": ...}`` errors, 204 for an issue that is gone). Like QALITA, it applies a PUT's
``assignee_email`` to the issue's ``owner`` and its ``labels`` to the issue's ``tags``, and
publishes one CONTRACT §4 event per change made through the API, with the writer's
``X-Qalita-Origin`` as the event's origin: that echo is what the service's loop prevention
must cope with. A write that restates what QALITA holds changes nothing and publishes
nothing, and each recorded write says whether it changed anything, so tests can catch the
service sending needless writes. Under ``/_sim/`` (no auth) a test plays a QALITA user: each
change there publishes the matching event, and ``/_sim/faults`` makes the next calls fail like
a struggling server, an SSO proxy or a revoked token would (``DELETE`` ends them).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from jira_sync.publish import EventPublisher

log = logging.getLogger(__name__)

SCHEMA = "qalita.issue.v1"
SIM_ORIGIN = "qalita-sim"
STATUSES = ("open", "active", "resolved", "muted", "ignored")
SEVERITIES = ("info", "low", "medium", "high", "critical")
DEFAULT_AUTHOR = {"email": "ana@example.com", "name": "Ana"}
DEFAULT_PAGE_LIMIT = 10_000  # QALITA's v2 lists return up to 10,000 rows unless asked
# QALITA's user directory: an owner set by e-mail alone gets the name known for it. The same
# people as the Jira simulator's users; owners and comment authors set through /_sim add to it.
KNOWN_PEOPLE = {"ana@example.com": "Ana", "bo@example.com": "Bo"}
READS = ("GET", "HEAD", "OPTIONS")


@dataclass
class QalitaSimulatorConfig:
    token: str = "qalita-tok"
    # When set, changes publish QALITA events (CONTRACT §4) there.
    broker_url: str | None = None
    tenant: str = "default"
    # Changes made through the API publish events too, as QALITA's own do, with the writer's
    # X-Qalita-Origin as the event's origin: this is how loop prevention is tested. Off only
    # for a test that wants the /_sim events alone on the queue.
    publish_api_writes: bool = True


class _Reject(Exception):
    """An answer other than success, in QALITA's error shape."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _now(timespec: str = "seconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


# Validation, in FastAPI's 422 shape: a check returns what is wrong with a value, or None.

Check = Callable[[Any], str | None]


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "str type expected"


def _integer(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return None if ok else "value is not a positive integer"


def _strings(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    return None if ok else "value is not a valid list of strings"


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "value is not a valid dict"


def _objects(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(item, dict) for item in value)
    return None if ok else "value is not a valid list of objects"


def _one_of(values: tuple[str, ...]) -> Check:
    permitted = ", ".join(repr(value) for value in values)
    return lambda value: None if value in values else \
        f"value is not a valid enumeration member; permitted: {permitted}"


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _put_only(field: str) -> Check:
    """A PUT key sent to /_sim, where issues are written as they are stored: under ``field``."""
    return lambda value: f"not a field of QALITA issues (a PUT key only); set {field!r}"


ISSUE_TEXT: dict[str, Check] = {
    "status": _one_of(STATUSES), "title": _string, "description": _optional(_string),
}
# CONTRACT §5: the PUT keys, two of which stand for issue fields of another name and shape.
API_UPDATABLE: dict[str, Check] = {
    **ISSUE_TEXT, "assignee_email": _optional(_string), "labels": _strings,
}
# What a QALITA user may change; other keys are stored as given, so tests can send oddities.
USER_EDITABLE: dict[str, Check] = {
    **ISSUE_TEXT, "severity": _optional(_one_of(SEVERITIES)),
    "dataset": _optional(_string), "rule": _optional(_string), "metric": _optional(_string),
    "domain": _optional(_string), "url": _optional(_string), "tags": _strings,
    "owner": _optional(_object), "evidence": _optional(_object), "links": _objects,
    "assignee_email": _put_only("owner"), "labels": _put_only("tags"),
}


def _validate(body: Any, checks: Mapping[str, Check], *, extra_allowed: bool,
              required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Reject(422, [{"loc": ["body"], "msg": "value is not a valid dict",
                             "type": "type_error.dict"}])
    problems = [{"loc": ["body", key], "msg": "field required", "type": "value_error.missing"}
                for key in required if key not in body]
    for key, value in body.items():
        check = checks.get(key)
        if check is None:
            if not extra_allowed:
                problems.append({"loc": ["body", key], "msg": "extra fields not permitted",
                                 "type": "value_error.extra"})
        elif (message := check(value)) is not None:
            problems.append({"loc": ["body", key], "msg": message, "type": "value_error"})
    if problems:
        raise _Reject(422, problems)
    return body


def _json_body() -> Any:
    return request.get_json(silent=True)


# State.

class _Store:
    """Issues, comments, the people QALITA knows, recorded calls and pending faults, behind
    one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.deleted: set[int] = set()
        self.comments: dict[int, dict[int, dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.names: dict[str, str] = dict(KNOWN_PEOPLE)
        self.next_issue_id = 1
        self.next_comment_id = 1

    def live_issue(self, issue_id: int) -> dict[str, Any]:
        if issue_id in self.deleted or issue_id not in self.issues:
            raise _Reject(404, "Issue not found")
        return self.issues[issue_id]

    def comment(self, issue_id: int, comment_id: int) -> dict[str, Any]:
        self.live_issue(issue_id)
        found = self.comments.get(issue_id, {}).get(comment_id)
        if found is None:
            raise _Reject(404, "Comment not found")
        return found

    def learn(self, person: Any) -> None:
        """Remember the name of an owner or author a user set, for a later owner set by
        e-mail alone."""
        if isinstance(person, dict) and isinstance(person.get("email"), str) \
                and isinstance(person.get("name"), str):
            self.names[person["email"].casefold()] = person["name"]

    def edit_comment(self, issue_id: int, comment_id: int,
                     body: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """Edit a comment; returns copies of it and of its issue, for the event, and whether
        the body changed (the same body leaves it untouched)."""
        with self.lock:
            comment = self.comment(issue_id, comment_id)
            changed = comment["body"] != body
            if changed:
                comment.update(body=body, updated_at=_now())
            return dict(comment), dict(self.issues[issue_id]), changed

    def delete_comment(self, issue_id: int,
                       comment_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.lock:
            comment = self.comments[issue_id].pop(self.comment(issue_id, comment_id)["id"])
            return comment, dict(self.issues[issue_id])

    def put_issue(self, fields: dict[str, Any], url_root: str) -> tuple[dict[str, Any], bool]:
        """Create or replace; returns the issue and whether it is new (or back from deletion)."""
        issue_id = fields.get("id") or self.next_issue_id
        self.next_issue_id = max(self.next_issue_id, issue_id + 1)
        previous = self.issues.get(issue_id)
        created = previous is None or issue_id in self.deleted
        now = _now()
        issue = {
            "id": issue_id, "version": 1, "title": f"Issue {issue_id}", "description": "",
            "status": "open", "severity": "medium", "dataset": None, "rule": None,
            "metric": None, "domain": None, "tags": [], "owner": None, "evidence": None,
            "links": [], "url": f"{url_root}issues/{issue_id}",
            "created_at": previous["created_at"] if previous else now,
            **fields, "updated_at": now,
        }
        if "version" not in fields and previous is not None:
            issue["version"] = previous["version"] + 1
        self.issues[issue_id] = issue
        self.deleted.discard(issue_id)
        self.comments.setdefault(issue_id, {})
        self.learn(issue["owner"])
        return issue, created

    def change_issue(self, issue_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """A user's change: always a new version, even when it restates every value, so a
        test can make QALITA publish an event again."""
        issue = self.live_issue(issue_id)
        issue.update(changes)
        issue["version"] += 1
        issue["updated_at"] = _now()
        self.learn(changes.get("owner"))
        return issue

    def write_issue(self, issue_id: int,
                    body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Apply a CONTRACT §5 PUT; returns a copy of the issue and whether anything changed.

        Only the values that differ are applied: a PUT restating what QALITA holds makes no
        new version, as QALITA saves nothing for it.
        """
        with self.lock:
            issue = self.live_issue(issue_id)
            changes = {key: value for key, value in self._issue_fields(issue, body).items()
                       if issue.get(key) != value}
            if changes:
                issue.update(changes, version=issue["version"] + 1, updated_at=_now())
            return dict(issue), bool(changes)

    def _issue_fields(self, issue: Mapping[str, Any],
                      body: Mapping[str, Any]) -> dict[str, Any]:
        """A PUT body as the issue fields it sets: ``assignee_email`` is the owner and
        ``labels`` the tags."""
        fields = {key: value for key, value in body.items() if key in ISSUE_TEXT}
        if "labels" in body:
            fields["tags"] = list(body["labels"])
        if "assignee_email" in body:
            fields["owner"] = self._owner(issue.get("owner"), body["assignee_email"])
        return fields

    def _owner(self, current: Any, email: str | None) -> dict[str, Any] | None:
        """The owner an e-mail makes: none for null, the current one (name kept) for the same
        e-mail, else that e-mail with the name known for it, if any."""
        if email is None:
            return None
        if isinstance(current, dict) and current.get("email") == email:
            return current
        return {"email": email, "name": self.names.get(email.casefold())}

    def add_comment(self, issue_id: int, body: str, *, external_id: str | None,
                    author: dict[str, Any], origin: str | None) -> dict[str, Any]:
        self.live_issue(issue_id)
        now = _now()
        comment = {"id": self.next_comment_id, "issue_id": issue_id, "body": body,
                   "external_id": external_id, "author_name": author.get("name"),
                   "author": author, "origin": origin, "created_at": now, "updated_at": now}
        self.next_comment_id += 1
        self.comments[issue_id][comment["id"]] = comment
        self.learn(author)
        return comment

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.full_issue(issue_id) for issue_id in sorted(self.issues)]

    def full_issue(self, issue_id: int) -> dict[str, Any]:
        if issue_id not in self.issues:
            raise _Reject(404, "Issue not found")
        comments = sorted(self.comments.get(issue_id, {}).values(), key=lambda c: c["id"])
        return {**self.issues[issue_id], "deleted": issue_id in self.deleted,
                "comments": [dict(comment) for comment in comments]}

    def take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for fault in self.faults:
            if fault["method"] not in (None, method) or not _path_matches(fault["path"], path):
                continue
            fault["count"] -= 1
            if fault["count"] <= 0:
                self.faults.remove(fault)
            return dict(fault)
        return None


def _path_matches(pattern: str | None, path: str) -> bool:
    """Exact, or a prefix when the pattern ends with ``*``."""
    if pattern is None:
        return True
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


FAULT_CHECKS: dict[str, Check] = {
    "status": lambda v: None if isinstance(v, int) and 100 <= v <= 599 else
    "value is not a valid HTTP status",
    "count": _integer, "body": lambda v: None, "content_type": _optional(_string),
    "retry_after": _optional(lambda v: None if isinstance(v, int | float) and v >= 0 else
                             "value is not a non-negative number"),
    "method": _optional(_string), "path": _optional(_string),
    "applied": lambda v: None if isinstance(v, bool) else "value is not a valid boolean",
}


def _fault_response(fault: dict[str, Any]) -> Response:
    status, body, content_type = fault["status"], fault["body"], fault["content_type"]
    if body is None and status != 204:
        body = {"detail": _phrase(status)}
    if body is None:
        response = Response(status=status)
    elif isinstance(body, str):
        response = Response(body, status=status,
                            content_type=content_type or "text/plain; charset=utf-8")
    else:
        response = Response(json.dumps(body), status=status,
                            content_type=content_type or "application/json")
    if fault["retry_after"] is not None:
        response.headers["Retry-After"] = str(fault["retry_after"])
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# The app.

def make_app(config: QalitaSimulatorConfig) -> Flask:
    """The WSGI app, with its own empty state."""
    app = Flask(__name__)
    app.json.sort_keys = False
    store = _Store()
    expected_auth = f"Bearer {config.token}"
    publisher = app.extensions["qalita_publisher"] = \
        EventPublisher(config.broker_url) if config.broker_url is not None else None

    def publish(event_type: str, issue: dict[str, Any], comment: dict[str, Any] | None,
                origin: str) -> tuple[dict[str, Any], bool]:
        """Publish one CONTRACT §4 event when a broker is configured; returns it and whether
        it went out."""
        event = {
            "schema": SCHEMA, "event_id": str(uuid.uuid4()), "event_type": event_type,
            "occurred_at": _now(), "tenant": config.tenant, "origin": origin,
            "issue": dict(issue),
            "comment": None if comment is None else {
                key: comment[key] for key in ("id", "body", "author", "created_at",
                                              "external_id")},
        }
        if publisher is None:
            return event, False
        publisher.publish(event)
        return event, True

    def sim_change(event_type: str, issue: dict[str, Any],
                   comment: dict[str, Any] | None = None, status: int = 200) -> Response:
        try:
            event, published = publish(event_type, issue, comment, SIM_ORIGIN)
        except Exception as exc:  # The change stands; the caller learns the event did not go.
            log.warning("QALITA simulator could not publish %s: %s", event_type, exc)
            response = jsonify(event=None, published=False, error=str(exc))
            response.status_code = 502
            return response
        response = jsonify(event=event, published=published)
        response.status_code = status
        return response

    def api_write(event_type: str, issue: dict[str, Any],
                  comment: dict[str, Any] | None = None, *, changed: bool = True) -> None:
        """Note for the call record whether the write changed anything and, if it did,
        publish QALITA's own event for it, when configured."""
        g.changed = changed
        if not changed or not config.publish_api_writes:
            return
        origin = request.headers.get("X-Qalita-Origin") or "qalita-api"
        try:
            publish(event_type, issue, comment, origin)
        except Exception as exc:  # QALITA saves the change whether or not its event goes out.
            log.warning("QALITA simulator could not publish %s: %s", event_type, exc)

    @app.errorhandler(_Reject)
    def rejected(error: _Reject) -> Response:
        response = jsonify(detail=error.detail)
        response.status_code = error.status
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        response = jsonify(detail=_phrase(error.code or 500))
        response.status_code = error.code or 500
        return response

    def is_api() -> bool:
        return not request.path.startswith("/_sim/")

    @app.before_request
    def faults_and_auth() -> Response | None:
        if not is_api():
            return None
        with store.lock:
            g.fault = store.take_fault(request.method, request.path)
        if g.fault is not None and not g.fault["applied"]:
            return _fault_response(g.fault)
        if request.headers.get("Authorization") != expected_auth:
            raise _Reject(401, "Not authenticated")
        return None

    @app.after_request
    def record(response: Response) -> Response:
        if not is_api():
            return response
        fault = g.get("fault")
        if fault is not None and fault["applied"]:
            response = _fault_response(fault)
        entry = {
            "method": request.method, "path": request.path, "query": request.args.to_dict(),
            "status": response.status_code, "json": _json_body(),
            "origin": request.headers.get("X-Qalita-Origin"),
            "authenticated": request.headers.get("Authorization") == expected_auth,
            "fault": fault is not None, "time": _now("milliseconds"),
            # A write that failed, or never reached its handler, changed nothing.
            "changed": None if request.method in READS else g.get("changed", False),
        }
        with store.lock:
            store.calls.append(entry)
        return response

    # CONTRACT §5.

    @app.get("/api/v2/issues")
    def list_issues() -> Response:
        bounds = {}
        for name, default in (("offset", 0), ("limit", DEFAULT_PAGE_LIMIT)):
            raw = request.args.get(name, str(default))
            if not raw.isdigit():
                raise _Reject(422, [{"loc": ["query", name], "msg": "value is not a valid "
                                     "non-negative integer", "type": "type_error.integer"}])
            bounds[name] = int(raw)
        with store.lock:
            live = [store.issues[i] for i in sorted(store.issues) if i not in store.deleted]
            page = live[bounds["offset"]:bounds["offset"] + bounds["limit"]]
            return jsonify([dict(issue) for issue in page])

    @app.get("/api/v2/issues/<int:issue_id>")
    def get_issue(issue_id: int) -> Response:
        with store.lock:
            if issue_id in store.deleted:
                return Response(status=204)
            return jsonify(dict(store.live_issue(issue_id)))

    @app.put("/api/v2/issues/<int:issue_id>")
    def update_issue(issue_id: int) -> Response:
        body = _validate(_json_body(), API_UPDATABLE, extra_allowed=False)
        issue, changed = store.write_issue(issue_id, body)
        api_write("issue.updated", issue, changed=changed)
        return jsonify(issue)

    @app.post("/api/v2/issues/<int:issue_id>/comments")
    def add_comment(issue_id: int) -> tuple[Response, int]:
        # QALITA does not deduplicate on external_id: a repeated POST is a second comment.
        body = _validate(_json_body(), {
            "body": _string, "external_id": _optional(_string),
            "author_name": _optional(_string)}, extra_allowed=True, required=("body",))
        with store.lock:
            comment = dict(store.add_comment(
                issue_id, body["body"], external_id=body.get("external_id"),
                author={"email": None, "name": body.get("author_name")},
                origin=request.headers.get("X-Qalita-Origin")))
            issue = dict(store.issues[issue_id])
        api_write("issue.comment_created", issue, comment)
        return jsonify(comment), 201

    @app.put("/api/v2/issues/<int:issue_id>/comments/<int:comment_id>")
    def edit_comment(issue_id: int, comment_id: int) -> Response:
        body = _validate(_json_body(), {"body": _string}, extra_allowed=False,
                         required=("body",))
        comment, issue, changed = store.edit_comment(issue_id, comment_id, body["body"])
        api_write("issue.comment_updated", issue, comment, changed=changed)
        return jsonify(comment)

    @app.delete("/api/v2/issues/<int:issue_id>/comments/<int:comment_id>")
    def delete_comment(issue_id: int, comment_id: int) -> Response:
        comment, issue = store.delete_comment(issue_id, comment_id)
        api_write("issue.comment_deleted", issue, comment)
        return Response(status=204)

    # Inspection and control.

    def matching_calls() -> list[dict[str, Any]]:
        """The recorded calls the query's ``method`` and ``path`` pick (never changed once
        recorded, so not copied: benchmarks poll the count of thousands)."""
        method, path = request.args.get("method"), request.args.get("path")
        method = method.upper() if method else None
        with store.lock:
            return [call for call in store.calls
                    if method in (None, call["method"]) and _path_matches(path, call["path"])]

    @app.get("/_sim/calls")
    def calls() -> Response:
        return jsonify(matching_calls())

    @app.get("/_sim/calls/count")
    def calls_count() -> Response:
        return jsonify(count=len(matching_calls()))

    @app.post("/_sim/reset")
    def reset() -> Response:
        with store.lock:
            store.reset()
        return jsonify(detail="reset")

    @app.get("/_sim/issues")
    def sim_issues() -> Response:
        with store.lock:
            return jsonify(store.snapshot())

    @app.get("/_sim/issues/<int:issue_id>")
    def sim_issue(issue_id: int) -> Response:
        with store.lock:
            return jsonify(store.full_issue(issue_id))

    @app.post("/_sim/issues")
    def sim_put_issue() -> Response:
        fields = _validate(_json_body(), {**USER_EDITABLE, "id": _integer, "version": _integer},
                           extra_allowed=True)
        # A round-tripped /_sim/issues entry carries the simulator's own view keys.
        fields = {k: v for k, v in fields.items() if k not in ("comments", "deleted")}
        with store.lock:
            issue, created = store.put_issue(fields, request.url_root)
            issue = dict(issue)
        if created:
            return sim_change("issue.created", issue, status=201)
        return sim_change("issue.updated", issue)

    @app.patch("/_sim/issues/<int:issue_id>")
    def sim_patch_issue(issue_id: int) -> Response:
        changes = _validate(_json_body(), USER_EDITABLE, extra_allowed=True)
        if "id" in changes or "version" in changes:
            raise _Reject(422, [{"loc": ["body", "id" if "id" in changes else "version"],
                                 "msg": "cannot be changed", "type": "value_error"}])
        with store.lock:
            issue = dict(store.change_issue(issue_id, changes))
        return sim_change("issue.updated", issue)

    @app.delete("/_sim/issues/<int:issue_id>")
    def sim_delete_issue(issue_id: int) -> Response:
        with store.lock:
            issue = store.change_issue(issue_id, {})  # a newer version, so it is not stale
            store.deleted.add(issue_id)
            issue = dict(issue)
        return sim_change("issue.deleted", issue)

    @app.post("/_sim/issues/<int:issue_id>/comments")
    def sim_add_comment(issue_id: int) -> Response:
        body = _validate(_json_body(), {"body": _string, "author": _object},
                         extra_allowed=False, required=("body",))
        with store.lock:
            comment = dict(store.add_comment(
                issue_id, body["body"], external_id=None,
                author=body.get("author") or dict(DEFAULT_AUTHOR), origin=SIM_ORIGIN))
            issue = dict(store.issues[issue_id])
        return sim_change("issue.comment_created", issue, comment, status=201)

    @app.put("/_sim/issues/<int:issue_id>/comments/<int:comment_id>")
    def sim_edit_comment(issue_id: int, comment_id: int) -> Response:
        body = _validate(_json_body(), {"body": _string}, extra_allowed=False,
                         required=("body",))
        # A user's edit publishes even when the body is the same, as a /_sim PATCH does.
        comment, issue, _changed = store.edit_comment(issue_id, comment_id, body["body"])
        return sim_change("issue.comment_updated", issue, comment)

    @app.delete("/_sim/issues/<int:issue_id>/comments/<int:comment_id>")
    def sim_delete_comment(issue_id: int, comment_id: int) -> Response:
        comment, issue = store.delete_comment(issue_id, comment_id)
        return sim_change("issue.comment_deleted", issue, comment)

    @app.post("/_sim/faults")
    def add_fault() -> tuple[Response, int]:
        spec = _validate(_json_body(), FAULT_CHECKS, extra_allowed=False, required=("status",))
        fault = {"count": 1, "body": None, "content_type": None, "retry_after": None,
                 "method": None, "path": None, "applied": False, **spec}
        if fault["method"]:
            fault["method"] = fault["method"].upper()
        with store.lock:
            store.faults.append(fault)
            return jsonify([dict(pending) for pending in store.faults]), 201

    @app.get("/_sim/faults")
    def pending_faults() -> Response:
        with store.lock:
            return jsonify([dict(pending) for pending in store.faults])

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        """Drop the pending faults (a token refused with a large ``count`` accepted again)."""
        with store.lock:
            store.faults.clear()
            return jsonify([])

    return app


# Serving.

def serve(config: QalitaSimulatorConfig, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Serve until SIGTERM or SIGINT, then exit (status 0).

    gunicorn, one process of threads (the simulator's state is that process's memory), with
    keep-alive as QALITA's own server has: werkzeug's development server closes every
    connection, which cost each call a connection set-up on both sides.
    """
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": 1, "threads": 16,
                               "worker_class": "gthread", "graceful_timeout": 5,
                               "accesslog": None, "errorlog": "-", "loglevel": "warning",
                               "proc_name": "qalita-simulator"}.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return make_app(config)

    log.info("QALITA simulator listening on http://%s:%s", host, port)
    Server().run()


def _close(app: Flask) -> None:
    publisher = app.extensions["qalita_publisher"]
    if publisher is not None:
        publisher.close()


class running_qalita_simulator:
    """The simulator on a background thread for one test: ``with ... as sim: sim.base_url``."""

    def __init__(self, config: QalitaSimulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or QalitaSimulatorConfig()
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> running_qalita_simulator:
        self._app = make_app(self.config)
        self._server = make_server(self._host, self._port, self._app, threaded=True)
        self.base_url = f"http://{self._host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        _close(self._app)
