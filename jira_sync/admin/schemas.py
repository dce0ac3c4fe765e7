"""The admin API's bodies, validated once here for the API and the CLI, and the source of the
OpenAPI document, so what is documented is what is checked.

Every check reuses the one the environment's variables go through (``config.settings``,
``jira_sync.mapping``), so a value accepted in ``JIRA_BASE_URL`` is accepted in ``base_url``
and the other way round.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from config.settings import (
    AUTH_METHODS,
    DEPLOYMENTS,
    SECRET_VARIABLES,
    TENANT_RE,
    SettingsError,
    http_url,
    networks,
)
from jira_sync.mapping import MappingError, load_mapping

# Write-only: stored sealed, shown only as ``<name>_set``.
SECRET_FIELDS = tuple(SECRET_VARIABLES)
# Plain settings that may be cleared with null.
OPTIONAL_FIELDS = ("email", "cloud_id", "oauth_client_id", "project_key", "issue_type",
                   "qalita_api_url")
LINK_STATES = ("pending", "linked", "blocked", "failed", "closed", "tombstoned", "severing",
               "severed")
LEVELS = ("debug", "info", "warning", "error")


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE = "must not contain NUL or half of a UTF-16 surrogate pair"


class Text(fields.String):
    """A string the database can store: Postgres refuses NUL, and UTF-8 cannot encode half
    of a surrogate pair (which JSON can carry), so both are a 400 here rather than a 500."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if _UNSTORABLE.search(text):
            raise ValidationError(UNSTORABLE)
        return text


def _storable(value: Any) -> bool:
    """Whether every string in a JSON value (keys included) can be stored."""
    if isinstance(value, str):
        return not _UNSTORABLE.search(value)
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


class HttpUrl(Text):
    """An http(s) URL as users paste it, checked like the ``*_URL`` variables."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return http_url(text, attr or "url")
        except SettingsError:
            raise ValidationError("expected an http(s) URL with a host, such as "
                                  "https://acme.atlassian.net") from None


def _text(maximum: int, **kwargs: Any) -> fields.String:
    return Text(validate=validate.Length(min=1, max=maximum), **kwargs)


class IntegrationWrite(Schema):
    """``POST`` (``tenant`` and ``base_url`` required) and ``PUT`` (only the fields sent)."""

    class Meta:
        unknown = RAISE

    tenant = Text(validate=validate.Regexp(
        TENANT_RE, error="a slug of at most 64 letters, digits, '-' and '_'"))
    name = _text(200)
    enabled = fields.Boolean(truthy={True}, falsy={False})
    base_url = HttpUrl(validate=validate.Length(max=2048))
    deployment = Text(validate=validate.OneOf(DEPLOYMENTS))
    auth_method = Text(validate=validate.OneOf(AUTH_METHODS))
    email = _text(320, allow_none=True)
    cloud_id = _text(64, allow_none=True)
    oauth_client_id = _text(200, allow_none=True)
    project_key = Text(allow_none=True, validate=validate.Regexp(
        r"^[A-Za-z][A-Za-z0-9_]{0,63}$", error="a Jira project key, such as DATA"))
    issue_type = _text(64, allow_none=True)
    qalita_api_url = HttpUrl(allow_none=True, validate=validate.Length(max=2048))
    mapping = fields.Dict(keys=Text(), allow_none=True,
                          metadata={"description": "overrides of the mapping file, as JSON "
                                    "(docs/mapping.md)"})
    ip_allowlist = fields.List(Text(validate=validate.Length(min=1, max=64)),
                               allow_none=True, validate=validate.Length(max=256),
                               metadata={"description": "CIDRs that may deliver webhooks; "
                                         "null lets any address deliver"})
    api_token = _text(4096, allow_none=True, load_only=True)
    pat = _text(4096, allow_none=True, load_only=True)
    oauth_client_secret = _text(4096, allow_none=True, load_only=True)
    oauth_refresh_token = _text(4096, allow_none=True, load_only=True)
    webhook_secret = _text(4096, allow_none=True, load_only=True)
    qalita_api_token = _text(4096, allow_none=True, load_only=True)

    @validates("mapping")
    def _mapping(self, value: dict[str, Any] | None, **_: Any) -> None:
        if value is None:
            return
        if not _storable(value):
            raise ValidationError(UNSTORABLE)
        try:
            load_mapping(None, value)
        except MappingError as exc:
            raise ValidationError(str(exc)) from None

    @validates("ip_allowlist")
    def _allowlist(self, value: list[str] | None, **_: Any) -> None:
        if value is None:
            return
        try:
            networks(",".join(value), "ip_allowlist")
        except SettingsError as exc:
            raise ValidationError(str(exc).removeprefix("ip_allowlist: ")) from None


class IntegrationCreate(IntegrationWrite):
    tenant = Text(required=True, validate=validate.Regexp(
        TENANT_RE, error="a slug of at most 64 letters, digits, '-' and '_'"))
    base_url = HttpUrl(required=True, validate=validate.Length(max=2048))


class IntegrationView(Schema):
    """An integration as the API shows it: secrets only as ``<name>_set``."""

    id = fields.Integer()
    tenant = Text()
    name = Text()
    enabled = fields.Boolean()
    deployment = Text()
    base_url = Text()
    auth_method = Text()
    email = Text(allow_none=True)
    cloud_id = Text(allow_none=True)
    oauth_client_id = Text(allow_none=True)
    project_key = Text(allow_none=True)
    issue_type = Text(allow_none=True)
    qalita_api_url = Text(allow_none=True)
    mapping = fields.Dict(allow_none=True)
    ip_allowlist = fields.List(Text(), allow_none=True)
    api_token_set = fields.Boolean()
    pat_set = fields.Boolean()
    oauth_client_secret_set = fields.Boolean()
    oauth_refresh_token_set = fields.Boolean()
    webhook_secret_set = fields.Boolean()
    qalita_api_token_set = fields.Boolean()
    webhook_url_set = fields.Boolean(metadata={"description": "a token webhook URL exists"})
    env_fields = fields.List(Text(), metadata={
        "description": "fields the environment sets: a PUT of one is refused (409)"})
    source = Text()
    paused = fields.Dict(keys=Text(), values=Text(), metadata={
        "description": "why a direction is paused: jira (both directions), qalita (inbound)"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class IntegrationCreated(IntegrationView):
    webhook_url = Text(metadata={"description": "the token URL, shown this once"})


class WebhookToken(Schema):
    webhook_url = Text(metadata={"description": "the new token URL, shown this once; "
                                          "the previous one stops working"})


class PageQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(validate=validate.Range(min=1, max=500))
    cursor = Text(validate=validate.Length(max=200))


class DeleteQuery(Schema):
    class Meta:
        unknown = RAISE

    sever = fields.Boolean(load_default=False)


def page_of(item: type[Schema]) -> type[Schema]:
    """The ``{"items", "next_cursor"}`` envelope of a list of ``item``."""
    return Schema.from_dict({"items": fields.List(fields.Nested(item)),
                             "next_cursor": Text(allow_none=True)},
                            name=f"{item.__name__}Page")


class Problem(Schema):
    """Every error: ``fields`` names what was wrong in the request, when something was."""

    error = Text()
    reason = Text()
    fields_ = fields.Dict(data_key="fields", keys=Text(),
                          values=fields.List(Text()))


class LogQuery(PageQuery):
    qalita_issue_id = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1))
    jira_key = Text(validate=validate.Regexp(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$",
                                                      error="a Jira issue key, such as DATA-12"))
    level = Text(validate=validate.OneOf(LEVELS))
    decision = Text(validate=validate.Length(min=1, max=32))
    since = fields.AwareDateTime(default_timezone=UTC, metadata={
        "description": "ISO 8601; a time without an offset is UTC"})


class LogEntryView(Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    level = Text()
    action = Text()
    decision = Text()
    message = Text()
    details = fields.Dict()
    link_id = fields.Integer(allow_none=True)
    qalita_issue_id = fields.Integer(allow_none=True)
    jira_key = Text(allow_none=True)


class OverviewView(Schema):
    id = fields.Integer()
    tenant = Text()
    enabled = fields.Boolean()
    paused = fields.Dict(keys=Text(), values=Text())
    links_by_state = fields.Dict(keys=Text(), values=fields.Integer())
    dead_letters_open = fields.Integer()
    inbox_backlog = fields.Integer(metadata={"description": "stored events and deliveries not "
                                             "yet processed"})
    last_webhook_at = fields.DateTime(allow_none=True)
    last_jira_write_at = fields.DateTime(allow_none=True)
    rate_limited_last_hour = fields.Integer(metadata={"description": "Jira 429 answers"})


DEAD_LETTER_STATES = ("open", "replaying", "resolved", "discarded")


class DeadLetterQuery(PageQuery):
    kind = Text(validate=validate.Length(min=1, max=32))
    since = fields.AwareDateTime(default_timezone=UTC)
    state = Text(validate=validate.OneOf(DEAD_LETTER_STATES))


class DeadLetterLink(Schema):
    id = fields.Integer()
    qalita_issue_id = fields.Integer()
    jira_key = Text(allow_none=True)
    state = Text()


class DeadLetterView(Schema):
    id = fields.Integer()
    integration_id = fields.Integer(allow_none=True)
    kind = Text()
    reason = Text()
    state = Text(metadata={"enum": list(DEAD_LETTER_STATES)})
    replay_count = fields.Integer()
    created_at = Text()
    replayed_at = Text(allow_none=True)
    resolved_at = Text(allow_none=True)
    discarded_at = Text(allow_none=True)
    payload = fields.Raw(allow_none=True)
    request = fields.Raw(allow_none=True)
    response = fields.Raw(allow_none=True)
    link = fields.Nested(DeadLetterLink, allow_none=True)


class BulkReplay(Schema):
    """Which open letters to replay; none given: every open letter."""

    class Meta:
        unknown = RAISE

    integration_id = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    kind = Text(allow_none=True, validate=validate.Length(min=1, max=32))
    since = fields.AwareDateTime(allow_none=True, default_timezone=UTC)


class JobView(Schema):
    id = fields.Integer()
    kind = Text()
    state = Text()
    total = fields.Integer()
    done = fields.Integer()
    failed = fields.Integer()
    error = Text(allow_none=True)
    params = fields.Dict()
    created_at = Text()
    finished_at = Text(allow_none=True)


class CheckView(Schema):
    name = Text()
    ok = fields.Boolean()
    level = Text(metadata={"enum": ["error", "warning", "skipped"]})
    detail = Text()
    fix = Text(allow_none=True)


class ConnectionReport(Schema):
    ok = fields.Boolean(metadata={"description": "no error-level check failed"})
    checks = fields.List(fields.Nested(CheckView))


class TenantQuery(Schema):
    class Meta:
        unknown = RAISE

    tenant = Text(load_default="default", validate=validate.Regexp(
        TENANT_RE, error="a slug of at most 64 letters, digits, '-' and '_'"))


class TenantBody(Schema):
    """Create External Issue's optional body: the tenant may come here or in the query."""

    class Meta:
        unknown = RAISE

    tenant = Text(validate=validate.Regexp(
        TENANT_RE, error="a slug of at most 64 letters, digits, '-' and '_'"))


class LinkQuery(PageQuery):
    state = Text(validate=validate.OneOf(LINK_STATES))
    project = Text(validate=validate.Length(min=1, max=64))
    qalita_issue_id = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1))
    jira_key = Text(validate=validate.Length(min=1, max=64))


class LinkView(Schema):
    id = fields.Integer()
    tenant = Text()
    qalita_issue_id = fields.Integer()
    jira_issue_id = Text(allow_none=True)
    jira_key = Text(allow_none=True)
    jira_url = Text(allow_none=True, metadata={"description": "<base_url>/browse/<key>"})
    project = Text(allow_none=True)
    state = Text(metadata={"enum": list(LINK_STATES)})
    last_sync = Text(allow_none=True)
    last_error = Text(allow_none=True)
    next_attempt_at = Text(allow_none=True)
    created_at = Text()
