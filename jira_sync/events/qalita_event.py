"""QALITA issue events (CONTRACT §4) -> typed objects.

The queue is at-least-once and an invalid event is a dead letter, never retried, so parsing
is strict about what the sync relies on (ids, versions, types, limits) and says exactly why it
refused, while anything QALITA may add later is ignored. Values are never coerced: a producer
sending ``"5"`` for an id has a bug that should surface, not be papered over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

SCHEMA = "qalita.issue.v1"
EVENT_TYPES = ("issue.created", "issue.updated", "issue.deleted", "issue.comment_created",
               "issue.comment_updated", "issue.comment_deleted")
STATUSES = ("open", "active", "resolved", "muted", "ignored")
SEVERITIES = ("info", "low", "medium", "high", "critical")
MAX_EVENT_BYTES = 1024 * 1024
TITLE_LIMIT = 1000
DESCRIPTION_LIMIT = 100_000
COMMENT_LIMIT = 100_000

_REASON_LIMIT = 500
_MAX_ID = 2**63 - 1  # ids and versions land in BIGINT columns
_MISSING = "Missing data for required field."


class InvalidEvent(ValueError):
    """Why an event is a dead letter: ``errors`` for machines, ``reason`` for people."""

    def __init__(self, errors: dict[str, Any]) -> None:
        self.errors = _jsonable(errors)
        self.reason = _flatten(self.errors)
        if len(self.reason) > _REASON_LIMIT:
            self.reason = self.reason[: _REASON_LIMIT - 1] + "…"
        super().__init__(self.reason)


@dataclass(frozen=True)
class Person:
    email: str | None
    name: str | None


@dataclass(frozen=True)
class RunLink:
    title: str
    url: str


@dataclass(frozen=True)
class IssueSnapshot:
    id: int
    version: int
    title: str | None
    description: str | None
    status: str | None
    severity: str | None
    dataset: str | None
    rule: str | None
    metric: str | None
    domain: str | None
    tags: tuple[str, ...]
    owner: Person | None
    evidence: dict[str, Any] | None
    links: tuple[RunLink, ...]
    url: str | None
    updated_at: str | None


@dataclass(frozen=True)
class Comment:
    id: int
    body: str | None
    author: Person | None
    created_at: str | None
    # Not in CONTRACT §4, but QALITA may echo what a writer gave (``jira:<comment id>`` for
    # the comments jira-sync posted): a help in telling them apart, never relied on.
    external_id: str | None = None


@dataclass(frozen=True)
class QalitaEvent:
    event_id: str
    event_type: str
    occurred_at: datetime  # always aware, in UTC
    tenant: str
    origin: str | None
    issue: IssueSnapshot
    comment: Comment | None

    @property
    def is_comment(self) -> bool:
        return self.event_type.startswith("issue.comment_")


class _StrictInt(fields.Integer):
    # bool is an int subclass; marshmallow 3 lets True through as 1.
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _id(**kwargs: Any) -> fields.Field:
    return _StrictInt(strict=True, validate=validate.Range(min=1, max=_MAX_ID), **kwargs)


def _text(**kwargs: Any) -> fields.Field:
    return fields.String(allow_none=True, load_default=None, **kwargs)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _PersonSchema(_Lenient):
    email = _text()
    name = _text()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Person:
        return Person(**data)


class _LinkSchema(_Lenient):
    title = _text()
    url = fields.String(required=True, validate=validate.Length(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RunLink:
        return RunLink(title=data["title"] or data["url"], url=data["url"])


class _IssueSchema(_Lenient):
    id = _id(required=True)
    version = _StrictInt(strict=True, required=True, validate=validate.Range(min=0, max=_MAX_ID))
    title = _text(validate=validate.Length(max=TITLE_LIMIT))
    description = _text(validate=validate.Length(max=DESCRIPTION_LIMIT))
    status = _text(validate=validate.OneOf(STATUSES))
    severity = _text(validate=validate.OneOf(SEVERITIES))
    dataset = _text()
    rule = _text()
    metric = _text()
    domain = _text()
    url = _text()
    updated_at = _text()
    tags = fields.List(fields.String(), allow_none=True, load_default=None)
    owner = fields.Nested(_PersonSchema, allow_none=True, load_default=None)
    evidence = fields.Dict(allow_none=True, load_default=None)
    links = fields.List(fields.Nested(_LinkSchema), allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> IssueSnapshot:
        return IssueSnapshot(**{**data, "tags": tuple(data["tags"] or ()),
                                "links": tuple(data["links"] or ())})


class _CommentSchema(_Lenient):
    id = _id(required=True)
    body = _text(validate=validate.Length(max=COMMENT_LIMIT))
    author = fields.Nested(_PersonSchema, allow_none=True, load_default=None)
    created_at = _text()
    external_id = _text(validate=validate.Length(max=255))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Comment:
        return Comment(**data)


class _EventSchema(_Lenient):
    schema_ = fields.String(data_key="schema", required=True, validate=validate.Equal(SCHEMA))
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    event_type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    tenant = _text(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z"))
    origin = _text()
    issue = fields.Nested(_IssueSchema, required=True)
    comment = fields.Nested(_CommentSchema, allow_none=True, load_default=None)

    @validates_schema
    def fits_its_type(self, data: dict[str, Any], **_: Any) -> None:
        # What a field needs depends on the event type, so it is checked once the fields are.
        kind, issue, comment = data["event_type"], data["issue"], data["comment"]
        errors: dict[str, dict[str, list[str]]] = {}
        if kind in ("issue.created", "issue.updated"):
            if issue.title is None or not issue.title.strip():
                problem = _MISSING if issue.title is None else "Must not be blank."
                errors.setdefault("issue", {})["title"] = [problem]
            if issue.status is None:
                errors.setdefault("issue", {})["status"] = [_MISSING]
        if kind.startswith("issue.comment_"):
            if comment is None:
                errors["comment"] = {"_schema": [f"{kind} events must carry the comment."]}
            elif comment.body is None and kind != "issue.comment_deleted":
                errors["comment"] = {"body": [_MISSING]}
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> QalitaEvent:
        data.pop("schema_")
        return QalitaEvent(**{**data, "occurred_at": data["occurred_at"].astimezone(UTC),
                              "tenant": data["tenant"] or "default"})


_EVENT = _EventSchema()


def parse_event(payload: Any) -> QalitaEvent:
    """The typed event, or :class:`InvalidEvent` with every reason it cannot be synced."""
    if not isinstance(payload, dict):
        raise InvalidEvent({"_event": [f"an event must be a JSON object, not {_kind(payload)}"]})
    try:
        # NaN and Infinity parse from the wire but no JSON column will store them.
        encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(encoded.encode())
    except (TypeError, ValueError) as exc:
        raise InvalidEvent({"_event": [f"an event must be plain JSON: {exc}"]}) from None
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent({"_event": [f"event is {size} bytes; the limit is 1 MiB"]})
    if _has_nul(payload):
        # Postgres cannot store NUL in text or JSON, and no QALITA text legitimately holds one.
        raise InvalidEvent({"_event": ["an event must not contain NUL characters (\\u0000)"]})
    try:
        return _EVENT.load(payload)
    except ValidationError as exc:
        raise InvalidEvent(exc.normalized_messages()) from None


_ISSUE = _IssueSchema()


def parse_issue(payload: Any) -> IssueSnapshot:
    """An issue as QALITA's API returns it (CONTRACT §5), validated like an event's."""
    if not isinstance(payload, dict):
        raise InvalidEvent({"issue": [f"an issue must be a JSON object, not {_kind(payload)}"]})
    try:
        return _ISSUE.load(payload)
    except ValidationError as exc:
        raise InvalidEvent({"issue": exc.normalized_messages()}) from None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def dump_issue(snapshot: IssueSnapshot) -> dict[str, Any]:
    """The snapshot as JSON, so the desired state survives in the database between attempts."""
    owner = snapshot.owner
    return {
        **{k: v for k, v in vars(snapshot).items() if k not in ("tags", "owner", "links")},
        "tags": list(snapshot.tags),
        "owner": None if owner is None else {"email": owner.email, "name": owner.name},
        "links": [{"title": link.title, "url": link.url} for link in snapshot.links],
    }


def load_issue(data: dict[str, Any]) -> IssueSnapshot:
    """Back from :func:`dump_issue`; the input was validated when the event arrived."""
    owner = data.get("owner")
    return IssueSnapshot(**{
        **data,
        "tags": tuple(data.get("tags") or ()),
        "owner": None if owner is None else Person(owner.get("email"), owner.get("name")),
        "links": tuple(RunLink(link["title"], link["url"]) for link in data.get("links") or ()),
    })


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _jsonable(messages: Any) -> Any:
    # List errors are keyed by int index; JSON (and the dead-letter column) wants strings.
    if isinstance(messages, dict):
        return {str(k): _jsonable(v) for k, v in messages.items()}
    return messages


def _flatten(messages: Any, path: tuple[str, ...] = ()) -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, (*path, k)) for k, v in messages.items())
    where = ".".join(p for p in path if p not in ("_schema", "_event"))
    text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
    return f"{where}: {text}" if where else text
