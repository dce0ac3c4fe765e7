"""ADF: what the renderer emits, and how the reader copes with what people write in Jira."""

from __future__ import annotations

import pytest

from jira_sync.render import (
    BulletList,
    CodeBlock,
    Document,
    HardBreak,
    Heading,
    OrderedList,
    Paragraph,
    Text,
    adf_to_text,
)
from tests.unit.render.support import adf


def _content(*blocks):
    return adf(Document(blocks))["content"]


def test_marks_render_as_adf_marks_and_code_takes_only_link():
    (paragraph,) = _content(Paragraph([
        Text("b", strong=True), Text("i", em=True), Text("bi", strong=True, em=True),
        Text("c", code=True, strong=True, href="https://x"),
    ]))
    assert [node["marks"] for node in paragraph["content"]] == [
        [{"type": "strong"}], [{"type": "em"}], [{"type": "strong"}, {"type": "em"}],
        [{"type": "code"}, {"type": "link", "attrs": {"href": "https://x"}}],
    ]


def test_empty_text_is_never_sent_and_newlines_become_breaks():
    (paragraph,) = _content(Paragraph([Text(""), Text("a\nb", em=True), Text(""), HardBreak()]))
    assert paragraph["content"] == [
        {"type": "text", "text": "a", "marks": [{"type": "em"}]}, {"type": "hardBreak"},
        {"type": "text", "text": "b", "marks": [{"type": "em"}]}, {"type": "hardBreak"},
    ]


def test_headings_and_code_blocks():
    heading, code, bare = _content(Heading(3, [Text("Rule")]), CodeBlock("select 1", "sql"),
                                   CodeBlock(""))
    assert heading == {"type": "heading", "attrs": {"level": 3},
                       "content": [{"type": "text", "text": "Rule"}]}
    assert code == {"type": "codeBlock", "attrs": {"language": "sql"},
                    "content": [{"type": "text", "text": "select 1"}]}
    assert bare == {"type": "codeBlock", "content": []}


def test_list_items_always_start_with_a_paragraph():
    (bullets,) = _content(BulletList([
        [Paragraph([Text("one")])],
        [OrderedList([[Paragraph([Text("nested")])]])],
        [],
        [Heading(1, [Text("heading in an item")])],
    ]))
    first_children = [item["content"][0] for item in bullets["content"]]
    assert all(child["type"] == "paragraph" for child in first_children)
    assert bullets["content"][1]["content"][1]["type"] == "orderedList"
    assert first_children[3]["content"] == [{"type": "text", "text": "heading in an item"}]


def test_a_list_without_items_is_left_out():
    assert _content(BulletList([]), Paragraph([Text("x")])) == [
        {"type": "paragraph", "content": [{"type": "text", "text": "x"}]}]


def test_heading_levels_are_checked():
    with pytest.raises(ValueError):
        Heading(7, [Text("x")])


def test_rendered_lists_read_back_as_text_lines():
    doc = Document([
        Paragraph([Text("Runs:")]),
        OrderedList([[Paragraph([Text("first")]),
                      BulletList([[Paragraph([Text("detail")])]])],
                     [Paragraph([Text("second")])]]),
    ])
    assert adf_to_text(adf(doc)) == "Runs:\n\n1. first\n   - detail\n2. second"


# A comment as Jira Cloud's editor stores it, with nodes the renderer never emits.
FOREIGN = {
    "type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "mention", "attrs": {"id": "5b10a2844c20165700ede21g", "text": "@Ada"}},
            {"type": "text", "text": " please look "},
            {"type": "emoji", "attrs": {"shortName": ":eyes:", "text": "👀"}},
            {"type": "text", "text": " "},
            {"type": "inlineCard", "attrs": {"url": "https://q.example/issues/7"}},
            {"type": "text", "text": " see "},
            {"type": "text", "text": "the run", "marks": [
                {"type": "strong"}, {"type": "link", "attrs": {"href": "https://q.example/r/1"}}]},
            {"type": "text", "text": " log", "marks": [
                {"type": "link", "attrs": {"href": "https://q.example/r/1"}}]},
            {"type": "text", "text": " by "},
            {"type": "date", "attrs": {"timestamp": "1700000000000"}},
            {"type": "text", "text": " "},
            {"type": "status", "attrs": {"text": "BLOCKED", "color": "red"}},
            {"type": "mention", "attrs": {"id": "abc"}},
        ]},
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Panel text"}]}]},
        {"type": "table", "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "rule"}]}]},
                {"type": "tableHeader", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "rate"}]}]}]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "nulls"}]}]},
                {"type": "tableCell", "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "3%"}]}]}]}]},
        {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
            {"type": "media", "attrs": {"id": "abc-123", "type": "file", "collection": "x"}}]},
        {"type": "rule"},
        {"type": "blockquote", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "quoted"}]}]},
        {"type": "orderedList", "attrs": {"order": 3}, "content": [
            {"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "three"}]}]}]},
        {"type": "someFutureNode", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "still readable"}]}]},
        {"type": "codeBlock", "content": [{"type": "text", "text": "select *\nfrom t"}]},
    ],
}


def test_foreign_nodes_read_as_sensible_text():
    assert adf_to_text(FOREIGN) == (
        "@Ada please look 👀 https://q.example/issues/7 see the run log (https://q.example/r/1)"
        " by 2023-11-14 BLOCKED@abc"
        "\n\nPanel text"
        "\n\nrule | rate\nnulls | 3%"
        "\n\n[attachment]"
        "\n\n----"
        "\n\nquoted"
        "\n\n3. three"
        "\n\nstill readable"
        "\n\nselect *\nfrom t"
    )


@pytest.mark.parametrize("value", [
    None, "text", {}, {"type": "doc"}, {"type": "doc", "content": "nope"},
    {"type": "doc", "content": [None, 3, {"type": "paragraph", "content": [{"type": "text"}]}]},
    {"type": "doc", "content": [{"type": "mention", "attrs": "x"},
                                {"type": "date", "attrs": {"timestamp": "soon"}},
                                {"type": "orderedList", "attrs": {"order": "2"}, "content": [{}]},
                                {"type": "text", "text": "x", "marks": [None, {"type": "link"}]}]},
])
def test_malformed_documents_never_raise(value):
    assert isinstance(adf_to_text(value), str)
