"""The webhook schema against the real captured bodies, and against bodies that are not webhooks."""

import json
from pathlib import Path

import pytest

from jira_sync.events.jira_webhook import InvalidWebhook, parse, parse_issue

SAMPLES = sorted((Path(__file__).parents[2] / "fixtures" / "jira" / "webhooks").glob("*.json"))


def load(name: str) -> dict:
    return json.loads(next(p for p in SAMPLES if p.name.startswith(name)).read_text())


def test_there_are_samples_to_check():
    assert len(SAMPLES) == 10


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_every_captured_body_parses(sample):
    webhook = parse(json.loads(sample.read_text()))
    assert webhook.issue is not None and webhook.issue.id


def test_cloud_status_change():
    webhook = parse(load("cloud-2017_issue_updated_status"))
    assert webhook.changelog_id is not None and webhook.issue.status_id
    assert webhook.event == "jira:issue_updated"
    assert webhook.event_type_name == "issue_generic"
    assert webhook.issue.status_category == "indeterminate"
    (change,) = webhook.changelog
    assert (change.field_id, change.from_string, change.to_string) == (
        "status", "To Do", "In Progress")
    assert webhook.timestamp.year == 2017


def test_cloud_created_with_changelog_keys_on_field_id():
    webhook = parse(load("cloud-2026_issue_created_with_changelog"))
    assert webhook.event == "jira:issue_created"
    assert "customfield_10071" in [c.field_id for c in webhook.changelog]
    assert webhook.user.account_id.startswith("712020:")


def test_cloud_comment_events_carry_no_user():
    webhook = parse(load("cloud-2018_comment_created"))
    assert webhook.event == "comment_created" and webhook.user is None
    assert webhook.comment.id == "10021" and isinstance(webhook.comment.body, str)


def test_server_payloads_name_users_and_lack_field_ids():
    webhook = parse(load("server-2016_issue_updated_status_resolution"))
    assert [c.field_id for c in webhook.changelog] == ["resolution", "status"]
    assert webhook.issue.status_category == "done"
    assert webhook.user.name == "admin" and webhook.user.account_id is None


@pytest.mark.parametrize(("body", "reason"), [
    ([], "JSON object"),
    ("text", "JSON object"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}}, "issue.id"),
    ({"webhookEvent": 42, "issue": {"id": "1"}}, "webhookEvent"),
    ({"issue": {"id": "1"}, "changelog": {"items": [{"to": "x"}]}}, "changelog.items"),
    ({"issue": {"id": "1", "fields": {"labels": "not-a-list"}}}, "issue.fields.labels"),
    ({"issue": {"id": "1"}, "changelog": {"id": "12x", "items": []}}, "changelog.id"),
    ({"issue": {"id": ""}}, "issue.id"),
    ({"issue": {"id": "1/../../myself?"}}, "issue.id"),
    ({"issue": {"id": "1", "key": "A-1?x=1"}}, "issue.key"),
    ({"issue": {"id": "1"}, "comment": {"id": "x/y"}}, "comment.id"),
    ({"issue": {"id": "1"}, "timestamp": 10**20}, "timestamp"),
    ({"issue": {"id": "1"}, "timestamp": -5}, "timestamp"),
])
def test_bodies_that_are_not_webhooks_say_why(body, reason):
    with pytest.raises(InvalidWebhook) as caught:
        parse(body)
    assert reason in str(caught.value)


def test_hostile_strings_pass_through_untouched():
    hostile = "'; DROP TABLE issues; -- \u202e\x00 <script>alert(1)</script> 🐛" * 10
    webhook = parse({"webhookEvent": "jira:issue_updated",
                     "issue": {"id": "1", "fields": {"summary": hostile, "labels": [hostile]}}})
    assert webhook.issue.summary == hostile and webhook.issue.labels == (hostile,)


def test_unknown_fields_are_ignored():
    webhook = parse({"webhookEvent": "jira:issue_deleted", "brandNew": {"x": 1},
                     "issue": {"id": "7", "self": "https://x", "fields": {"newField": [1]}}})
    assert webhook.issue.id == "7"


def test_bodies_without_an_issue_parse_for_the_sync_to_ignore():
    """Jira sends other events (projects, users, sprints) to the same URL: not invalid, only
    not about an issue."""
    assert parse({}).issue is None
    webhook = parse({"webhookEvent": "project_created", "project": {"id": "1"}})
    assert webhook.event == "project_created" and webhook.issue is None


def test_older_payloads_name_the_key_field_in_english():
    webhook = parse({"issue": {"id": "1"}, "changelog": {"id": "7", "items": [
        {"field": "Key", "fromString": "DATA-1", "toString": "OPS-1"}]}})
    assert webhook.changelog[0].field_id == "issuekey" and webhook.changelog_id == 7


def test_a_missing_field_is_told_from_an_empty_one():
    webhook = parse({"issue": {"id": "1", "fields": {"summary": "s", "assignee": None}}})
    assert webhook.issue.present == {"summary", "assignee"}
    assert webhook.issue.assignee is None and webhook.issue.labels is None


def test_rest_reads_with_their_changelog():
    issue, histories = parse_issue({
        "id": "10001", "key": "DATA-1",
        "fields": {"description": {"type": "doc", "version": 1, "content": []}},
        "changelog": {"histories": [
            {"id": "10101", "created": "2026-11-28T10:15:30.000+0000", "items": [
                {"field": "labels", "fieldId": "labels", "fromString": "a", "toString": "a b"}]}]}})
    assert isinstance(issue.description, dict)
    assert [(h.id, h.created.isoformat(), h.items[0].to_string) for h in histories] == [
        (10101, "2026-11-28T10:15:30+00:00", "a b")]
