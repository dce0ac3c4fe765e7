"""The webhook schema against the real captured bodies, and against bodies that are not webhooks."""

import json
from pathlib import Path

import pytest

from jira_sync.events.jira_webhook import InvalidWebhook, parse

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
    ({}, "issue"),
    ({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}}, "issue.id"),
    ({"webhookEvent": 42, "issue": {"id": "1"}}, "webhookEvent"),
    ({"issue": {"id": "1"}, "changelog": {"items": [{"to": "x"}]}}, "changelog.items"),
    ({"issue": {"id": "1", "fields": {"labels": "not-a-list"}}}, "issue.fields.labels"),
    ({"comment": {"id": "5"}}, "issue"),
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
