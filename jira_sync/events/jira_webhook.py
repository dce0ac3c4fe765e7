"""Jira webhook bodies -> typed objects.

Only the fields the inbound sync uses are typed; everything else is ignored, because Jira
adds fields over time and differs between Cloud and Server (see the captured samples in
tests/fixtures/jira/webhooks). Bodies use the REST v2 representation even on Cloud, so
descriptions and comment bodies are wiki strings. A webhook is a hint, not the truth: the
sync re-reads the issue when it matters, so a sparse body is accepted as long as it names
what it is about.
"""

from __future__ import annotations

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
)


class InvalidWebhook(ValueError):
    """The body is not a Jira webhook we can act on; the message says which part and why."""


@dataclass(frozen=True)
class JiraUser:
    account_id: str | None
    name: str | None
    display_name: str | None
    email: str | None

    @property
    def ref(self) -> str | None:
        """How the user is named in a changelog: the accountId on Cloud, the name on Server."""
        return self.account_id or self.name


@dataclass(frozen=True)
class ChangeItem:
    field_id: str  # fieldId when Jira sends it (newer payloads), else the lower-cased name
    field: str
    from_value: str | None
    from_string: str | None
    to_value: str | None
    to_string: str | None


@dataclass(frozen=True)
class JiraComment:
    id: str
    body: Any  # wiki string in webhooks, ADF from Cloud's REST v3
    author: JiraUser | None
    update_author: JiraUser | None
    created: str | None
    updated: str | None


@dataclass(frozen=True)
class IssueSnapshot:
    id: str
    key: str | None
    project_key: str | None
    summary: str | None
    # A wiki string in webhook bodies (REST v2 even on Cloud), ADF from Cloud's REST v3.
    description: Any
    status: str | None
    status_id: str | None
    status_category: str | None  # "new", "indeterminate" or "done"
    labels: tuple[str, ...] | None
    assignee: JiraUser | None
    updated: str | None
    # Which fields the body carried at all: a missing field is not an empty one.
    present: frozenset[str] = frozenset()
    # The issue's comments when read with them; complete when Jira listed them all.
    comments: tuple[JiraComment, ...] = ()
    comments_complete: bool = False


@dataclass(frozen=True)
class History:
    """One entry of an issue's changelog, as REST reads give it."""

    id: int
    created: datetime | None
    items: tuple[ChangeItem, ...]


@dataclass(frozen=True)
class JiraWebhook:
    event: str | None  # webhookEvent; absent only in hand-trimmed bodies
    event_type_name: str | None
    timestamp: datetime | None
    user: JiraUser | None  # the actor; comment events from Cloud may omit it
    issue: IssueSnapshot | None
    changelog: tuple[ChangeItem, ...]
    comment: JiraComment | None
    changelog_id: int | None = None  # orders changes to one issue (ids grow)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class UserSchema(_Lenient):
    accountId = fields.String(allow_none=True)
    key = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    displayName = fields.String(allow_none=True)
    emailAddress = fields.String(allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> JiraUser:
        return JiraUser(data.get("accountId"), data.get("name") or data.get("key"),
                        data.get("displayName"), data.get("emailAddress"))


class _Named(_Lenient):
    name = fields.String(allow_none=True)
    key = fields.String(allow_none=True)


class _StatusCategory(_Lenient):
    key = fields.String(allow_none=True)


class _Status(_Lenient):
    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    statusCategory = fields.Nested(_StatusCategory, allow_none=True)


class _CommentPage(_Lenient):
    comments = fields.List(fields.Nested(lambda: CommentSchema()), load_default=list)
    total = fields.Integer(allow_none=True)


class _IssueFields(_Lenient):
    comment = fields.Nested(_CommentPage, allow_none=True)
    summary = fields.String(allow_none=True)
    # v2 representation: a wiki string (an ADF dict would mean a v3 body; kept as None).
    description = fields.Raw(allow_none=True)
    status = fields.Nested(_Status, allow_none=True)
    labels = fields.List(fields.String(), allow_none=True)
    assignee = fields.Nested(UserSchema, allow_none=True)
    project = fields.Nested(_Named, allow_none=True)
    updated = fields.String(allow_none=True)


class IssueSchema(_Lenient):
    # Ids end up in REST paths: only Jira's shapes get through.
    id = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{1,18}$"))
    key = fields.String(allow_none=True,
                        validate=validate.Regexp(r"^[A-Za-z][A-Za-z0-9_]{0,254}-[0-9]{1,18}$"))
    fields = fields.Nested(_IssueFields, load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> IssueSnapshot:
        f = data["fields"]
        page = f.get("comment") or {}
        status = f.get("status") or {}
        labels = f.get("labels")
        description = f.get("description")
        return IssueSnapshot(
            id=data["id"], key=data.get("key"),
            project_key=(f.get("project") or {}).get("key"),
            summary=f.get("summary"),
            description=description if isinstance(description, str | dict) else None,
            status=status.get("name"), status_id=status.get("id"),
            status_category=(status.get("statusCategory") or {}).get("key"),
            labels=tuple(labels) if labels is not None else None,
            assignee=f.get("assignee"), updated=f.get("updated"),
            present=frozenset(f), comments=tuple(page.get("comments") or ()),
            comments_complete=page.get("total") is not None
            and page["total"] <= len(page.get("comments") or ()),
        )


class ChangeItemSchema(_Lenient):
    field = fields.String(required=True)
    fieldId = fields.String(allow_none=True)
    # Jira sends ids as strings, but older payloads have numbers here and there.
    from_ = fields.Raw(data_key="from", allow_none=True)
    fromString = fields.String(allow_none=True)
    to = fields.Raw(allow_none=True)
    toString = fields.String(allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ChangeItem:
        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        return ChangeItem(
            field_id=data.get("fieldId") or _FIELD_IDS.get(data["field"].lower(),
                                                          data["field"].lower()),
            field=data["field"],
            from_value=text(data.get("from_")), from_string=data.get("fromString"),
            to_value=text(data.get("to")), to_string=data.get("toString"),
        )


# Older payloads name system fields in English only.
_FIELD_IDS = {"key": "issuekey"}
_ID = validate.Regexp(r"^[0-9]{1,18}$")


class _Changelog(_Lenient):
    id = fields.String(allow_none=True, validate=_ID)
    items = fields.List(fields.Nested(ChangeItemSchema), load_default=list)


class CommentSchema(_Lenient):
    id = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{1,18}$"))
    body = fields.Raw(allow_none=True)
    author = fields.Nested(UserSchema, allow_none=True)
    updateAuthor = fields.Nested(UserSchema, allow_none=True)
    created = fields.String(allow_none=True)
    updated = fields.String(allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> JiraComment:
        body = data.get("body")
        return JiraComment(
            id=data["id"], body=body if isinstance(body, str | dict) else None,
            author=data.get("author"), update_author=data.get("updateAuthor"),
            created=data.get("created"), updated=data.get("updated"),
        )


class WebhookSchema(_Lenient):
    webhookEvent = fields.String(allow_none=True)
    issue_event_type_name = fields.String(allow_none=True)
    # Epoch milliseconds; the range keeps datetime conversion from overflowing.
    timestamp = fields.Integer(allow_none=True, strict=False,
                               validate=validate.Range(min=0, max=253_402_300_799_000))
    user = fields.Nested(UserSchema, allow_none=True)
    issue = fields.Nested(IssueSchema, allow_none=True)
    changelog = fields.Nested(_Changelog, allow_none=True)
    comment = fields.Nested(CommentSchema, allow_none=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> JiraWebhook:
        stamp = data.get("timestamp")
        changelog = data.get("changelog") or {}
        event = data.get("webhookEvent")
        if event is None and changelog.get("items") and data.get("issue"):
            event = "jira:issue_updated"  # a hand-trimmed body: what else has a changelog
        return JiraWebhook(
            event=event, event_type_name=data.get("issue_event_type_name"),
            timestamp=datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None,
            user=data.get("user"), issue=data.get("issue"),
            changelog=tuple(changelog.get("items", [])), comment=data.get("comment"),
            changelog_id=int(changelog["id"]) if changelog.get("id") else None,
        )


_SCHEMA = WebhookSchema()


def parse(body: Any) -> JiraWebhook:
    """The typed webhook, or :class:`InvalidWebhook` saying which fields are wrong."""
    return _load(_SCHEMA, body, "a webhook body")


def _load(schema: Schema, body: Any, what: str) -> Any:
    if not isinstance(body, dict):
        raise InvalidWebhook(f"{what} must be a JSON object, not {type(body).__name__}")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidWebhook(_flatten(exc.messages)) from None


def _flatten(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}.") for k, v in messages.items())
    if isinstance(messages, list):
        return f"{prefix.rstrip('.')}: {' '.join(str(m) for m in messages)}"
    return f"{prefix.rstrip('.')}: {messages}"


class HistorySchema(_Lenient):
    id = fields.String(required=True, validate=_ID)
    created = fields.String(allow_none=True)
    items = fields.List(fields.Nested(ChangeItemSchema), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> History:
        return History(int(data["id"]), jira_time(data.get("created")), tuple(data["items"]))


class _IssueRead(IssueSchema):
    """An issue read through REST with ``expand=changelog``."""

    changelog = fields.Nested(Schema.from_dict(
        {"histories": fields.List(fields.Nested(HistorySchema), load_default=list)},
        name="Changelog")(unknown=EXCLUDE), load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> tuple[IssueSnapshot, tuple[History, ...]]:
        histories = tuple((data.pop("changelog") or {}).get("histories", []))
        return IssueSchema.make(self, data), histories


_ISSUE_READ = _IssueRead()


def parse_issue(body: Any) -> tuple[IssueSnapshot, tuple[History, ...]]:
    """An issue from a REST read (search, bulk fetch), with its changelog when expanded."""
    return _load(_ISSUE_READ, body, "an issue")


def jira_time(text: str | None) -> datetime | None:
    """Jira's ``2026-11-28T10:15:30.000+0000`` (or ISO 8601); None when unreadable."""
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, layout).astimezone(UTC)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
