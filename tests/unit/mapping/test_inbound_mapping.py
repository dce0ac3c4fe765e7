"""Jira values -> what they mean for the QALITA issue (the inbound half of the mapping)."""

from __future__ import annotations

import pytest

from jira_sync.mapping import Mapping, desired_issue, load_mapping
from jira_sync.mapping.inbound import (
    description_text,
    is_managed_label,
    normalize,
    qalita_status,
    same_status,
    text_key,
)
from jira_sync.render import to_adf, to_wiki
from jira_sync.simulators.jira import adf as simulated_adf
from tests.unit.mapping import snapshot

DEFAULT = Mapping()
TEXT = "Orders *table* is stale:\n\n- since 26 h\n- check [the loader]\n\nThanks_ Ana"


@pytest.mark.parametrize("description", [TEXT, "", "one line", "h3. Details\nnot a heading"])
def test_the_written_part_of_a_generated_description_comes_back_in_every_markup(description):
    doc = desired_issue(DEFAULT, snapshot(description=description), "default").description
    expected = normalize(description)
    # Cloud REST v3 (ADF) and Server (wiki) give back the text as written.
    assert normalize(description_text(to_adf(doc))) == expected
    assert normalize(description_text(to_wiki(doc))) == expected


def test_a_webhooks_wiki_rendering_keeps_the_words():
    """A Cloud webhook carries Jira's own wiki rendering of the ADF, which need not escape
    markup characters: the words still compare equal."""
    doc = desired_issue(DEFAULT, snapshot(description=TEXT), "default").description
    webhook = description_text(simulated_adf.to_wiki(to_adf(doc)))
    assert text_key(webhook) == text_key(TEXT)


def test_without_details_the_link_back_to_qalita_is_not_part_of_it():
    doc = desired_issue(DEFAULT, snapshot(description="Stale", dataset=None, rule=None,
                                          metric=None, domain=None, severity=None, owner=None,
                                          evidence=None, links=()), "default").description
    assert description_text(to_wiki(doc)) == "Stale"


def test_a_persons_description_without_the_heading_is_all_theirs():
    assert description_text("Rewritten *by hand*") == "Rewritten by hand"
    assert description_text(None) == ""


@pytest.mark.parametrize(("label", "managed"), [
    ("qalita", True), ("qalita-id-default-4211", True), ("severity:high", True),
    ("domain:billing", True), ("ignored", True), ("finance", False), ("severity", False),
    ("customer-facing", False),
])
def test_labels_jira_sync_manages_are_told_from_peoples(label, managed):
    assert is_managed_label(DEFAULT, label) is managed


def test_managed_labels_follow_the_mapping():
    mapping = load_mapping(overrides={"labels": ["dq"], "severity_label": "sev-{severity}",
                                      "domain_label": None}).default
    assert is_managed_label(mapping, "dq") and is_managed_label(mapping, "sev-low")
    assert not is_managed_label(mapping, "domain:billing")


@pytest.mark.parametrize(("category", "name", "ignored", "expected"), [
    ("new", "To Do", False, "open"),
    ("indeterminate", "In Progress", False, "active"),
    ("done", "Done", False, "resolved"),
    ("done", "Done", True, "ignored"),
    (None, "Mystery", False, None),
])
def test_status_by_category_and_the_ignored_label(category, name, ignored, expected):
    assert qalita_status(DEFAULT, category, name, ignored) == expected


def test_status_names_and_switches():
    mapping = load_mapping(overrides={"inbound_statuses": {"Won't Do": "ignored"},
                                      "inbound": {"ignored": False}}).default
    assert qalita_status(mapping, "done", "Won't Do", False) == "ignored"
    assert qalita_status(mapping, "done", "Done", True) == "resolved"
    off = load_mapping(overrides={"inbound": {"status": False}}).default
    assert qalita_status(off, "done", "Done", False) is None
    assert qalita_status(off, "done", "Done", True) == "ignored"


def test_statuses_that_show_alike_are_alike():
    assert same_status(DEFAULT, "muted", "ignored")
    assert same_status(DEFAULT, "open", "open")
    assert not same_status(DEFAULT, "open", "active")
    assert not same_status(DEFAULT, "ignored", "open")
    merged = load_mapping(overrides={"statuses": {"active": "new"}}).default
    assert same_status(merged, "active", "open")


def test_text_keys_ignore_markup_and_spacing_but_not_words():
    assert text_key("Orders *table*\n is  stale!") == text_key("orders table is stale")
    assert text_key("Orders table is stale") != text_key("Orders table is fresh")
