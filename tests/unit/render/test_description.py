"""The description the sync builds for a QALITA issue, in both formats and back."""

from __future__ import annotations

from jira_sync.render import (
    BulletList,
    Document,
    HardBreak,
    Paragraph,
    Text,
    adf_to_text,
    from_text,
    to_wiki,
    wiki_to_text,
)
from tests.unit.render.support import adf

ISSUE_URL = "https://qalita.example/issues/42"
RUNS = ["https://qalita.example/runs/1", "https://qalita.example/runs/2"]


def description() -> Document:
    user_text = from_text("Orders arrive *late* since 2024-05-01.\n\nSee #12.")
    return Document([
        Paragraph([Text("Dataset: ", strong=True), Text("orders")]),
        Paragraph([Text("Rule: ", strong=True), Text("freshness")]),
        *user_text.blocks,
        Paragraph([Text("Evidence: "), Text("max_lag", code=True), Text(" = 3 days"),
                   HardBreak(), Text("threshold = 1 day")]),
        Paragraph([Text("Runs:")]),
        BulletList([[Paragraph([Text(url, href=url)])] for url in RUNS]),
        Paragraph([Text("Owner: Ada Lovelace")]),
        Paragraph([Text("Open in QALITA", href=ISSUE_URL)]),
    ])


def test_adf_carries_link_marks():
    rendered = adf(description())
    links = [mark["attrs"]["href"]
             for node in _walk(rendered) for mark in node.get("marks", [])
             if mark["type"] == "link"]
    assert links == [*RUNS, ISSUE_URL]
    assert {"type": "text", "text": "Open in QALITA",
            "marks": [{"type": "link", "attrs": {"href": ISSUE_URL}}]} in list(_walk(rendered))


def test_wiki_uses_title_and_url_links_and_escapes_user_text():
    wiki = to_wiki(description())
    assert wiki == (
        "*Dataset:* orders\n\n"
        "*Rule:* freshness\n\n"
        "Orders arrive \\*late\\* since 2024-05-01.\n\n"
        "See #12.\n\n"
        "Evidence: {{max_lag}} = 3 days\nthreshold = 1 day\n\n"
        "Runs:\n\n"
        f"* [{RUNS[0]}|{RUNS[0]}]\n* [{RUNS[1]}|{RUNS[1]}]\n\n"
        "Owner: Ada Lovelace\n\n"
        f"[Open in QALITA|{ISSUE_URL}]"
    )


def test_both_formats_read_back_the_same_text():
    expected = (
        "Dataset: orders\n\nRule: freshness\n\n"
        "Orders arrive *late* since 2024-05-01.\n\nSee #12.\n\n"
        "Evidence: max_lag = 3 days\nthreshold = 1 day\n\n"
        f"Runs:\n\n- {RUNS[0]}\n- {RUNS[1]}\n\n"
        "Owner: Ada Lovelace\n\n"
        f"Open in QALITA ({ISSUE_URL})"
    )
    assert adf_to_text(adf(description())) == expected
    assert wiki_to_text(to_wiki(description())) == expected


def _walk(node):
    yield node
    for child in node.get("content", []):
        yield from _walk(child)
