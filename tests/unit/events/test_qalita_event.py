"""QALITA events (CONTRACT §4): the documented example, every way a producer can get one wrong."""

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from jira_sync.events.qalita_event import (
    COMMENT_LIMIT,
    DESCRIPTION_LIMIT,
    MAX_EVENT_BYTES,
    TITLE_LIMIT,
    Comment,
    InvalidEvent,
    IssueSnapshot,
    Person,
    QalitaEvent,
    RunLink,
    dump_issue,
    load_issue,
    parse_event,
)

EXAMPLE: dict[str, Any] = {
    "schema": "qalita.issue.v1",
    "event_id": "5f0c2a4e-8a3b-4c36-9a0e-2a1d7f9c1b11",
    "event_type": "issue.created",
    "occurred_at": "2026-11-28T10:15:30Z",
    "tenant": "default",
    "origin": "qalita-rules",
    "issue": {
        "id": 4211,
        "version": 1,
        "title": "Orders table is stale",
        "description": "Markdown text",
        "status": "open",
        "severity": "high",
        "dataset": "orders",
        "rule": "freshness",
        "metric": "hours_since_update",
        "domain": "billing",
        "tags": ["finance"],
        "owner": {"email": "ana@example.com", "name": "Ana"},
        "evidence": {"summary": "last load 26 h ago", "observed": 26, "expected": "<= 24"},
        "links": [{"title": "Run #812", "url": "https://qalita.example.com/runs/812"}],
        "url": "https://qalita.example.com/issues/4211",
        "updated_at": "2026-11-28T10:15:30Z",
    },
    "comment": None,
}

COMMENT = {"id": 991, "body": "text", "author": {"email": "bo@example.com", "name": "Bo"},
           "created_at": "2026-11-28T11:00:00Z"}


def event(**changes: Any) -> dict[str, Any]:
    """The example with top-level keys replaced (None value = key removed)."""
    body = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def with_issue(**changes: Any) -> dict[str, Any]:
    body = event()
    for key, value in changes.items():
        if value is ...:
            body["issue"].pop(key)
        else:
            body["issue"][key] = value
    return body


def rejected(payload: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload)
    exc = info.value
    json.dumps(exc.errors)  # must be storable as JSON as is
    assert str(exc) == exc.reason and exc.reason
    return exc


def test_the_contract_example_parses_with_every_field():
    got = parse_event(EXAMPLE)
    assert got == QalitaEvent(
        event_id="5f0c2a4e-8a3b-4c36-9a0e-2a1d7f9c1b11", event_type="issue.created",
        occurred_at=datetime(2026, 11, 28, 10, 15, 30, tzinfo=UTC), tenant="default",
        origin="qalita-rules",
        issue=IssueSnapshot(
            id=4211, version=1, title="Orders table is stale", description="Markdown text",
            status="open", severity="high", dataset="orders", rule="freshness",
            metric="hours_since_update", domain="billing", tags=("finance",),
            owner=Person(email="ana@example.com", name="Ana"),
            evidence={"summary": "last load 26 h ago", "observed": 26, "expected": "<= 24"},
            links=(RunLink(title="Run #812", url="https://qalita.example.com/runs/812"),),
            url="https://qalita.example.com/issues/4211", updated_at="2026-11-28T10:15:30Z",
        ),
        comment=None,
    )
    assert not got.is_comment


def test_the_minimum_event_parses_with_empty_defaults():
    minimal = {"schema": "qalita.issue.v1", "event_id": "e1", "event_type": "issue.updated",
               "occurred_at": "2026-11-28T10:15:30+02:00",
               "issue": {"id": 7, "version": 0, "title": "t", "status": "muted"}}
    got = parse_event(minimal)
    assert got.tenant == "default" and got.origin is None and got.comment is None
    assert got.occurred_at == datetime(2026, 11, 28, 8, 15, 30, tzinfo=UTC)
    assert got.occurred_at.utcoffset() == timedelta(0)
    issue = got.issue
    assert issue.tags == () and issue.links == () and issue.owner is None
    assert issue.evidence is None and issue.severity is None and issue.description is None


def test_optional_fields_may_be_null():
    nulls = {k: None for k in ("description", "severity", "dataset", "rule", "metric", "domain",
                               "tags", "owner", "evidence", "links", "url", "updated_at")}
    body = event(origin=None)
    body["issue"].update(nulls)
    body["tenant"] = None
    got = parse_event(body)
    assert got.tenant == "default" and got.issue.tags == () and got.issue.links == ()
    assert got.issue.owner is None and got.issue.severity is None


def test_naive_occurred_at_is_taken_as_utc():
    got = parse_event(event(occurred_at="2026-11-28T10:15:30"))
    assert got.occurred_at == datetime(2026, 11, 28, 10, 15, 30, tzinfo=UTC)
    assert got.occurred_at.tzinfo is not None


def test_offset_occurred_at_is_converted_to_utc():
    got = parse_event(event(occurred_at="2026-11-28T05:15:30-05:00"))
    assert got.occurred_at.tzinfo == UTC
    eastern = timezone(timedelta(hours=-5))
    assert got.occurred_at == datetime(2026, 11, 28, 5, 15, 30, tzinfo=eastern)


@pytest.mark.parametrize("field", ["schema", "event_id", "event_type", "occurred_at", "issue"])
def test_missing_top_level_field_is_named(field):
    exc = rejected(event(**{field: None}))
    assert field in exc.errors
    assert field in exc.reason


@pytest.mark.parametrize("field", ["id", "version", "title", "status"])
def test_missing_issue_field_is_named(field):
    exc = rejected(with_issue(**{field: ...}))
    assert field in exc.errors["issue"]
    assert f"issue.{field}" in exc.reason


@pytest.mark.parametrize("field", ["title", "status"])
def test_create_and_update_reject_null_title_and_status(field):
    for kind in ("issue.created", "issue.updated"):
        body = with_issue(**{field: None})
        body["event_type"] = kind
        assert field in rejected(body).errors["issue"]


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_blank_title_is_rejected(title):
    exc = rejected(with_issue(title=title))
    assert "title" in exc.errors["issue"]


def test_issue_deleted_needs_no_title_or_status():
    body = event(event_type="issue.deleted", issue={"id": 4211, "version": 3})
    got = parse_event(body)
    assert got.event_type == "issue.deleted"
    assert got.issue.id == 4211 and got.issue.title is None and got.issue.status is None


@pytest.mark.parametrize(("field", "value"), [
    ("title", 5),
    ("title", ["a"]),
    ("id", "5"),
    ("id", 5.5),
    ("id", True),
    ("version", "1"),
    ("tags", "x"),
    ("tags", [1, 2]),
    ("owner", "ana"),
    ("evidence", "all bad"),
    ("evidence", [1]),
    ("links", {"title": "x"}),
    ("links", [{"title": "no url"}]),
    ("description", 42),
    ("severity", "urgent"),
    ("status", "closed"),
])
def test_wrong_types_and_values_in_issue_are_errors_not_coerced(field, value):
    exc = rejected(with_issue(**{field: value}))
    assert field in exc.errors["issue"]
    assert f"issue.{field}" in exc.reason


@pytest.mark.parametrize(("field", "value"), [
    ("id", 0), ("id", -1), ("version", -1), ("id", 2**63),
])
def test_out_of_range_numbers_are_rejected(field, value):
    assert field in rejected(with_issue(**{field: value})).errors["issue"]


def test_nested_type_errors_name_the_full_path():
    exc = rejected(with_issue(tags=["ok", 3], owner={"email": 5}))
    assert exc.errors["issue"]["tags"] == {"1": ["Not a valid string."]}
    assert "issue.tags.1: Not a valid string." in exc.reason
    assert "issue.owner.email: Not a valid string." in exc.reason


@pytest.mark.parametrize(("field", "value"), [
    ("event_id", ""), ("event_id", "x" * 256), ("event_id", 12),
    ("occurred_at", "yesterday"), ("occurred_at", 1764324930),
    ("occurred_at", "2026-13-01T00:00:00Z"),
    ("schema", "qalita.issue.v2"), ("schema", 1),
    ("tenant", "-bad"), ("tenant", "a b"), ("tenant", "x" * 65), ("tenant", "ok\n"), ("tenant", 3),
    ("origin", 3),
    ("issue", "4211"), ("issue", []),
    ("comment", "hi"),
])
def test_bad_top_level_values_are_rejected(field, value):
    exc = rejected(event(**{field: value}))
    assert field in exc.errors
    assert exc.reason.startswith(f"{field}:") or f"; {field}:" in exc.reason


@pytest.mark.parametrize("field", ["schema", "event_id", "event_type", "occurred_at", "issue"])
def test_required_top_level_fields_may_not_be_null(field):
    body = event()
    body[field] = None
    assert field in rejected(body).errors


@pytest.mark.parametrize("field", ["id", "version"])
def test_issue_id_and_version_may_not_be_null(field):
    assert field in rejected(with_issue(**{field: None})).errors["issue"]


def test_unknown_event_type_lists_the_allowed_ones():
    exc = rejected(event(event_type="issue.exploded"))
    assert "event_type" in exc.errors
    assert "issue.comment_deleted" in exc.reason


def test_wrong_schema_is_rejected():
    exc = rejected(event(schema="qalita.issue.v2"))
    assert "schema" in exc.errors and "qalita.issue.v1" in exc.reason


def test_title_at_the_limit_is_accepted_and_past_it_rejected():
    assert parse_event(with_issue(title="t" * TITLE_LIMIT)).issue.title == "t" * TITLE_LIMIT
    exc = rejected(with_issue(title="t" * (TITLE_LIMIT + 1)))
    assert exc.errors == {"issue": {"title": ["Longer than maximum length 1000."]}}
    assert exc.reason == "issue.title: Longer than maximum length 1000."


def test_description_past_its_limit_is_rejected():
    assert parse_event(with_issue(description="d" * DESCRIPTION_LIMIT)).issue.description
    exc = rejected(with_issue(description="d" * (DESCRIPTION_LIMIT + 1)))
    assert "100000" in exc.reason and "issue.description" in exc.reason


def test_event_over_one_mib_is_rejected_before_anything_else():
    body = with_issue(description="d" * 1_100_000)
    body["event_type"] = "nonsense"  # the size is the reason given, not the other problems
    exc = rejected(body)
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    assert size > MAX_EVENT_BYTES
    assert exc.errors == {"_event": [f"event is {size} bytes; the limit is 1 MiB"]}
    assert exc.reason == f"event is {size} bytes; the limit is 1 MiB"


def test_event_size_counts_utf8_bytes_not_characters():
    # 350,000 three-byte characters: 1.05 MB encoded, far under a million characters.
    body = with_issue(evidence={"blob": "€" * 350_000})
    assert "1 MiB" in rejected(body).reason


def test_non_json_values_are_rejected_not_crashed_on():
    body = event()
    body["issue"]["evidence"] = {"when": datetime(2026, 1, 1)}
    assert "_event" in rejected(body).errors


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_infinity_are_not_json(value):
    assert "_event" in rejected(with_issue(evidence={"observed": value})).errors


@pytest.mark.parametrize("payload", [[], [EXAMPLE], "issue.created", json.dumps(EXAMPLE), None, 5,
                                     b"{}"])
def test_non_object_payloads_are_rejected(payload):
    exc = rejected(payload)
    assert list(exc.errors) == ["_event"]
    assert "JSON object" in exc.reason


def test_unknown_fields_are_ignored_at_every_level():
    body = event(comment=dict(COMMENT, mood="grumpy", author={"name": "Bo", "x": 1}),
                 event_type="issue.comment_created", priority="P1", extra={"a": 1})
    body["issue"].update(assignee="bo", new_field=[1, 2])
    body["issue"]["owner"]["phone"] = "+33"
    body["issue"]["links"][0]["icon"] = "run.svg"
    got = parse_event(body)
    assert got.issue.owner == Person(email="ana@example.com", name="Ana")
    assert got.issue.links == (RunLink("Run #812", "https://qalita.example.com/runs/812"),)
    assert got.comment == Comment(991, "text", Person(None, "Bo"), "2026-11-28T11:00:00Z")


def test_tenant_defaults_when_absent_and_is_kept_when_valid():
    assert parse_event(event(tenant=None)).tenant == "default"
    assert parse_event(event(tenant="acme_eu-1")).tenant == "acme_eu-1"


def test_link_without_title_uses_its_url():
    got = parse_event(with_issue(links=[{"url": "https://q/runs/1"}, {"title": None, "url": "u"}]))
    assert got.issue.links == (RunLink("https://q/runs/1", "https://q/runs/1"), RunLink("u", "u"))


def test_evidence_is_any_json_object():
    evidence = {"nested": {"list": [1, None, True, 2.5]}, "": "empty key"}
    assert parse_event(with_issue(evidence=evidence)).issue.evidence == evidence


@pytest.mark.parametrize("kind", ["issue.comment_created", "issue.comment_updated"])
def test_comment_created_and_updated_carry_the_comment_with_a_body(kind):
    got = parse_event(event(event_type=kind, comment=COMMENT))
    assert got.is_comment
    assert got.comment == Comment(991, "text", Person("bo@example.com", "Bo"),
                                  "2026-11-28T11:00:00Z")
    exc = rejected(event(event_type=kind, comment={"id": 991}))
    assert exc.errors == {"comment": {"body": ["Missing data for required field."]}}
    assert exc.reason == "comment.body: Missing data for required field."


@pytest.mark.parametrize("kind", ["issue.comment_created", "issue.comment_updated",
                                  "issue.comment_deleted"])
def test_comment_events_without_a_comment_are_rejected(kind):
    for body in (event(event_type=kind), event(event_type=kind, comment=None)):
        exc = rejected(body)
        assert "comment" in exc.errors and exc.reason.startswith("comment:")


def test_comment_deleted_needs_only_the_comment_id():
    got = parse_event(event(event_type="issue.comment_deleted", comment={"id": 991},
                            issue={"id": 4211, "version": 2}))
    assert got.is_comment and got.comment == Comment(991, None, None, None)


@pytest.mark.parametrize(("comment", "field"), [
    ({"body": "x"}, "id"), ({"id": "991", "body": "x"}, "id"), ({"id": 0, "body": "x"}, "id"),
    ({"id": 1, "body": 5}, "body"), ({"id": 1, "body": "b" * (COMMENT_LIMIT + 1)}, "body"),
    ({"id": 1, "body": "x", "author": "bo"}, "author"),
])
def test_bad_comments_are_rejected(comment, field):
    exc = rejected(event(event_type="issue.comment_updated", comment=comment))
    assert field in exc.errors["comment"]
    assert f"comment.{field}" in exc.reason


def test_issue_events_ignore_a_stray_comment():
    got = parse_event(event(comment=COMMENT))
    assert not got.is_comment and got.comment is not None


@pytest.mark.parametrize("title", [
    "rtl \u202eevil\u202c text", "emoji 🔥💥 and ZWJ 👩‍💻",
    "<script>alert(1)</script>", "{{jira}} [~accountid:x] *bold*", "\ufeffbom", "line\nbreak",
])
def test_hostile_strings_are_kept_verbatim(title):
    got = parse_event(with_issue(title=title, description=title, tags=[title]))
    assert got.issue.title == title and got.issue.description == title
    assert got.issue.tags == (title,)


def test_all_errors_are_reported_at_once_and_the_reason_is_capped():
    body = event(event_type="x" * 400, event_id="")
    body["issue"].update(id="1", title="t" * 2000, tags="x", owner="ana")
    exc = rejected(body)
    assert set(exc.errors) == {"event_type", "event_id", "issue"}
    assert set(exc.errors["issue"]) == {"id", "title", "tags", "owner"}
    for part in ("event_id:", "event_type:", "issue.id:", "issue.title:", "issue.owner:"):
        assert part in exc.reason


def test_the_reason_is_capped_but_the_errors_are_complete():
    exc = rejected(with_issue(tags=list(range(100))))
    assert len(exc.errors["issue"]["tags"]) == 100
    assert len(exc.reason) == 500 and exc.reason.endswith("…")
    assert exc.reason.startswith("issue.tags.0: Not a valid string.; issue.tags.1:")


def test_invalid_event_is_a_value_error():
    assert issubclass(InvalidEvent, ValueError)


def test_events_are_immutable():
    got = parse_event(EXAMPLE)
    with pytest.raises(AttributeError):
        got.issue.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("payload", [
    EXAMPLE,
    event(event_type="issue.deleted", issue={"id": 1, "version": 9}),
    with_issue(owner={"email": None, "name": "x"}, tags=["a", "b"], links=[{"url": "u"}]),
    with_issue(title="emoji 🔥 \x7f \u202e", evidence={"deep": {"list": [1, {"x": None}]}}),
])
def test_dump_and_load_round_trip_through_json(payload):
    issue = parse_event(payload).issue
    stored = json.loads(json.dumps(dump_issue(issue)))
    assert stored == dump_issue(issue)
    assert load_issue(stored) == issue


def test_dump_is_plain_json():
    dumped = dump_issue(parse_event(EXAMPLE).issue)
    assert dumped["tags"] == ["finance"]
    assert dumped["owner"] == {"email": "ana@example.com", "name": "Ana"}
    assert dumped["links"] == [{"title": "Run #812", "url": "https://qalita.example.com/runs/812"}]
    assert dumped["id"] == 4211 and dumped["version"] == 1


@pytest.mark.parametrize("payload", [
    with_issue(title="null\x00byte"),
    with_issue(evidence={"key\x00": 1}),
    with_issue(tags=["ok", "n\x00"]),
])
def test_nul_anywhere_is_refused_because_no_database_column_can_store_it(payload):
    with pytest.raises(InvalidEvent, match="NUL"):
        parse_event(payload)


def test_a_backslash_u_typed_as_text_is_not_mistaken_for_nul():
    assert parse_event(with_issue(title="literal \\u0000 text")).issue.title == \
        "literal \\u0000 text"
