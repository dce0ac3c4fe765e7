"""A QALITA snapshot -> the Jira issue it should be (CONTRACT §6)."""

from __future__ import annotations

import pytest

from jira_sync.events.qalita_event import Person, RunLink
from jira_sync.mapping import (
    Mapping,
    comment_marker,
    comment_text,
    desired_issue,
    find_comment_marker,
    load_mapping,
    marker_label,
    sanitize_label,
)
from jira_sync.render import (
    SUMMARY_LIMIT,
    TRUNCATION_MARKER,
    BulletList,
    Heading,
    Paragraph,
    Text,
    adf_to_text,
    from_text,
    to_wiki,
    wiki_to_text,
)
from tests.unit.mapping import ISSUE_URL, RUN_URL, snapshot
from tests.unit.render.support import HOSTILE, adf

DEFAULT = Mapping()


def desired(mapping: Mapping = DEFAULT, tenant: str = "default", **changes):
    return desired_issue(mapping, snapshot(**changes), tenant)


# -- the contract's example ------------------------------------------------------------------

def test_contract_example_with_the_default_mapping():
    issue = desired()
    assert issue.summary == "[QALITA] orders: freshness"
    assert issue.labels == ("domain:billing", "qalita", "qalita-id-default-4211",
                            "severity:high")
    assert issue.priority == "High"
    assert issue.components == ()
    assert issue.assignee_email == "ana@example.com"
    assert issue.status_category == "new"
    assert issue.ignored is False
    assert desired() == issue, "the same snapshot always gives the same desired issue"


def test_the_loaded_default_mapping_gives_the_same_issue():
    assert desired(load_mapping().for_project("DATA")) == desired()


# -- summary ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "expected"), [
    ({"rule": None}, "[QALITA] orders: hours_since_update"),
    ({"rule": "  ", "metric": "rows"}, "[QALITA] orders: rows"),
    ({"rule": None, "metric": None}, "Orders table is stale"),
    ({"dataset": None}, "Orders table is stale"),
    ({"dataset": " \t"}, "Orders table is stale"),
    ({"dataset": None, "title": "  Two\nlines\r\n "}, "Two lines"),
    ({"dataset": None, "title": "   "}, "QALITA issue 4211"),
    ({"dataset": "{title}", "rule": "{0}{"}, "[QALITA] {title}: {0}{"),
    ({"dataset": "a\nb", "rule": "c\x00d"}, "[QALITA] a b: c d"),
])
def test_summary_uses_the_template_only_when_its_values_exist(changes, expected):
    assert desired(**changes).summary == expected


def test_a_custom_template_falls_back_when_a_value_it_names_is_missing():
    mapping = Mapping(title_template="{{{severity}}} {title} #{id}")
    assert desired(mapping).summary == "{high} Orders table is stale #4211"
    assert desired(mapping, severity=None).summary == "Orders table is stale"


def test_a_template_built_in_code_with_an_unknown_name_falls_back():
    assert desired(Mapping(title_template="{nope} {title}")).summary == "Orders table is stale"


def test_summary_is_cut_at_255_with_a_visible_marker():
    issue = desired(dataset="d" * 300)
    assert len(issue.summary) == SUMMARY_LIMIT
    assert issue.summary.startswith("[QALITA] ddd") and issue.summary.endswith(TRUNCATION_MARKER)
    assert len(desired(dataset=None, title="😀" * 200).summary.encode("utf-16-le")) <= 2 * 255


# -- labels ----------------------------------------------------------------------------------

def test_marker_label_uses_the_tenant_label_form():
    assert marker_label("Acme Corp", 4211) == "qalita-id-acme-corp-4211"
    assert marker_label("default", 1) == "qalita-id-default-1"
    assert "qalita-id-acme-corp-4211" in desired(tenant="Acme Corp").labels


@pytest.mark.parametrize(("text", "label"), [
    ("data quality", "data-quality"),
    ("  a \t b\n\nc  ", "a-b-c"),
    ("a\u00a0\u2003b", "a-b"),
    ("nul\x00and\x1fbell", "nul-and-bell"),
    ("   ", ""),
    ("", ""),
    ("domain:Billing & Co", "domain:Billing-&-Co"),
    ("x" * 300, "x" * 255),
    ("a" * 254 + "😀", "a" * 254),
])
def test_sanitize_label(text, label):
    assert sanitize_label(text) == label


def test_labels_never_contain_spaces_and_empty_ones_are_dropped():
    mapping = Mapping(labels=("data quality", " "), tag_labels=True)
    issue = desired(mapping, domain="Customer Data", severity="low",
                    tags=("needs review", "finance", "", "finance"))
    assert issue.labels == ("data-quality", "domain:Customer-Data", "finance", "needs-review",
                            "qalita", "qalita-id-default-4211", "severity:low")
    assert all(" " not in label for label in issue.labels)


def test_qalita_and_the_marker_stay_whatever_the_configured_labels():
    mapping = Mapping(labels=(), severity_label=None, domain_label=None)
    assert desired(mapping).labels == ("qalita", "qalita-id-default-4211")


def test_missing_optional_fields_drop_their_labels_and_priority():
    issue = desired(severity=None, domain=None, owner=None, tags=())
    assert issue.labels == ("qalita", "qalita-id-default-4211")
    assert issue.priority is None
    assert issue.assignee_email is None
    assert issue.components == ()


def test_tags_are_labels_only_when_enabled():
    assert "finance" not in desired().labels
    assert "finance" in desired(Mapping(tag_labels=True)).labels


# -- priority, components, assignee ----------------------------------------------------------

@pytest.mark.parametrize(("severity", "priority"), [
    ("critical", "Highest"), ("high", "High"), ("medium", "Medium"), ("low", "Low"),
    ("info", "Lowest"), (None, None)])
def test_default_priorities(severity, priority):
    assert desired(severity=severity).priority == priority


def test_an_unmapped_severity_sends_no_priority():
    mappings = load_mapping(overrides={"priorities": {"info": None, "high": "P1"}})
    assert desired(mappings.default, severity="info").priority is None
    assert desired(mappings.default, severity="high").priority == "P1"


def test_components_are_the_union_of_domain_and_owner_maps():
    mapping = Mapping(components_by_domain={"billing": ["Billing", "Data"]},
                      components_by_owner={"ANA@example.com": "Data platform", "bo@x": "Ops"})
    assert desired(mapping).components == ("Billing", "Data", "Data platform")
    assert desired(mapping, owner=Person("Ana@Example.COM", None)).components == (
        "Billing", "Data", "Data platform")
    assert desired(mapping, domain="sales", owner=None).components == ()
    assert desired(mapping, domain=None, owner=Person("bo@x", None)).components == ("Ops",)


def test_assignee_is_the_owner_email():
    assert desired(owner=Person(None, "Ana")).assignee_email is None
    assert desired(owner=Person(" bo@example.com ", None)).assignee_email == "bo@example.com"


# -- status ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "category"), [
    ("open", "new"), ("active", "indeterminate"), ("resolved", "done")])
def test_status_maps_to_a_category(status, category):
    issue = desired(status=status)
    assert issue.status_category == category
    assert not issue.ignored and "ignored" not in issue.labels


@pytest.mark.parametrize("status", ["muted", "ignored"])
def test_muted_and_ignored_get_the_label_and_no_transition(status):
    issue = desired(status=status)
    assert issue.ignored is True
    assert issue.status_category is None
    assert "ignored" in issue.labels
    custom = desired(Mapping(ignored_label="qalita ignored"), status=status)
    assert "qalita-ignored" in custom.labels and "ignored" not in custom.labels


def test_a_status_without_a_category_makes_no_transition():
    mappings = load_mapping(overrides={"statuses": {"active": None}})
    assert desired(mappings.default, status="active").status_category is None
    assert desired(mappings.default, status="open").status_category == "new"


# -- description -----------------------------------------------------------------------------

def test_description_parts_in_order():
    doc = desired().description
    assert doc.blocks[0] == Paragraph((Text("Markdown text"),))
    assert doc.blocks[1] == Heading(3, (Text("Details"),))
    details = doc.blocks[2]
    assert isinstance(details, BulletList)
    assert doc.blocks[3] == Paragraph((Text("View in QALITA: "), Text(ISSUE_URL, href=ISSUE_URL)))
    assert len(doc.blocks) == 4
    text = adf_to_text(adf(doc))
    assert text == wiki_to_text(to_wiki(doc))
    assert text == (
        "Markdown text\n\n"
        "Details\n\n"
        "- Dataset: orders\n"
        "- Rule: freshness\n"
        "- Metric: hours_since_update\n"
        "- Domain: billing\n"
        "- Severity: high\n"
        "- Owner: Ana <ana@example.com>\n"
        "- Evidence: last load 26 h ago\n"
        "  - observed: 26\n"
        "  - expected: <= 24\n"
        "- Runs:\n"
        f"  - Run #812 ({RUN_URL})\n\n"
        f"View in QALITA: {ISSUE_URL}"
    )


def test_the_qalita_url_is_a_visible_link_in_adf_and_wiki():
    doc = desired().description
    rendered = adf(doc)
    link = {"type": "text", "text": ISSUE_URL,
            "marks": [{"type": "link", "attrs": {"href": ISSUE_URL}}]}
    assert link in list(_walk(rendered))
    wiki = to_wiki(doc)
    assert wiki.endswith(f"View in QALITA: [{ISSUE_URL}|{ISSUE_URL}]")
    assert f"[Run #812|{RUN_URL}]" in wiki


def test_a_bare_issue_gets_a_bare_description():
    issue = desired(description=None, dataset=None, rule=None, metric=None, domain=None,
                    severity=None, owner=None, evidence=None, links=(), url=None)
    assert issue.description.blocks == ()
    assert adf(issue.description) == {"type": "doc", "version": 1, "content": []}
    assert to_wiki(issue.description) == ""


def test_evidence_without_summary_and_with_structured_values():
    doc = desired(description=" ", evidence={"rows": [1, 2], "ok": False, "note": None,
                                             "nested": {"b": 1, "a": "x"}}).description
    text = adf_to_text(adf(doc))
    assert text.startswith("Details\n\n")
    assert ("- Evidence:\n  - rows: [1, 2]\n  - ok: false\n  - note: null\n"
            '  - nested: {"a": "x", "b": 1}\n') in text


def test_only_web_urls_become_links():
    doc = desired(url="javascript:alert(1)",
                  links=(RunLink("x", "file:///etc/passwd"), RunLink("y", "https:no-host"))
                  ).description
    rendered = adf(doc)
    assert not [mark for node in _walk(rendered) for mark in node.get("marks", ())
                if mark["type"] == "link"]
    assert "View in QALITA: javascript:alert(1)" in adf_to_text(rendered)


def test_runs_without_a_url_are_left_out():
    text = adf_to_text(adf(desired(links=(RunLink("Run #1", "  "),)).description))
    assert "Runs" not in text and "Run #1" not in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_render_in_both_formats(hostile):
    issue = desired(title=hostile, description=hostile, dataset=hostile, rule=hostile,
                    domain=hostile, tags=(hostile,), owner=Person(hostile, hostile),
                    evidence={"summary": hostile, hostile: hostile},
                    links=(RunLink(hostile, RUN_URL),), url=ISSUE_URL)
    assert issue.summary.strip() and len(issue.summary) <= SUMMARY_LIMIT
    assert "\n" not in issue.summary
    assert all(label and not any(c.isspace() for c in label) for label in issue.labels)
    # Multi-line values inside list items read back indented differently per format, so
    # each format is checked on its own: the QALITA text first, exactly, and the link last.
    for text in (adf_to_text(adf(issue.description)), wiki_to_text(to_wiki(issue.description))):
        assert text.endswith(f"View in QALITA: {ISSUE_URL}")
        assert "Details\n\n- " in text
        if hostile.strip():
            assert text.startswith(hostile + "\n\nDetails\n\n")


def test_a_huge_description_is_cut_visibly_and_keeps_fitting():
    issue = desired(description="x" * 100_000)
    assert adf_to_text(adf(issue.description)).endswith(TRUNCATION_MARKER)
    assert len(to_wiki(issue.description)) <= 32767


# -- comments --------------------------------------------------------------------------------

def test_comment_text_has_the_prefix_and_the_marker_on_its_first_line():
    text = comment_text(DEFAULT, 991, "Ana", "Looks *fixed*\n\nnow")
    assert text == "QALITA comment by Ana: [qalita-comment:991]\nLooks *fixed*\n\nnow"
    assert comment_marker(991) == "[qalita-comment:991]"
    assert find_comment_marker(text) == 991


@pytest.mark.parametrize(("author", "first_line"), [
    (None, "QALITA comment by QALITA: [qalita-comment:7]"),
    ("  ", "QALITA comment by QALITA: [qalita-comment:7]"),
    ("Ana\nEvil [qalita-comment:1]", "QALITA comment by Ana Evil [qalita-comment:1]: "
                                     "[qalita-comment:7]"),
    ("{author} {0}", "QALITA comment by {author} {0}: [qalita-comment:7]"),
])
def test_hostile_authors_stay_on_the_first_line(author, first_line):
    text = comment_text(DEFAULT, 7, author, "body [qalita-comment:8]")
    assert text.split("\n")[0] == first_line
    assert find_comment_marker(text) == 7


def test_an_empty_prefix_leaves_the_marker_alone():
    mapping = load_mapping(overrides={"comment_prefix": ""}).default
    assert comment_text(mapping, 5, "Ana", "hi") == "[qalita-comment:5]\nhi"


@pytest.mark.parametrize("text", [
    None, "", "no marker", "a comment\n[qalita-comment:3]", "quoting [qalita-comment:3] here",
    "[qalita-comment:abc]", "[qalita-comment:]"])
def test_comments_without_our_marker_are_not_ours(text):
    assert find_comment_marker(text) is None


@pytest.mark.parametrize("body", ["plain", "*bold* [a|b] {code}\n\nmore", "", "\\"])
def test_the_marker_survives_both_formats(body):
    doc = from_text(comment_text(DEFAULT, 123456789, "Bo [x]", body))
    assert find_comment_marker(adf_to_text(adf(doc))) == 123456789
    assert find_comment_marker(wiki_to_text(to_wiki(doc))) == 123456789


def _walk(node):
    yield node
    for child in node.get("content", []):
        yield from _walk(child)
