"""Wiki markup: user text is escaped so Jira shows it literally, and Jira's markup reads back."""

from __future__ import annotations

import json
from pathlib import Path

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
    from_text,
    to_wiki,
    wiki_to_text,
)

WEBHOOKS = Path(__file__).resolve().parents[2] / "fixtures" / "jira" / "webhooks"


@pytest.mark.parametrize(("text", "wiki"), [
    ("*bold* _it_ {code} [a|b] h1. x", r"\*bold\* \_it\_ \{code\} \[a\|b\] h1. x"),
    ("+ins+ ^sup^ ~sub~ -del- ??cite??", r"\+ins\+ \^sup\^ \~sub\~ \-del\- \?\?cite\?\?"),
    ("!image.png!", r"\!image.png\!"),
    ("-- ---", r"\-\- \-\-\-"),
    ("#1 at line start\n  #2 too, not #3", "\\#1 at line start\n  \\#2 too, not #3"),
    ("h1. x\nbq. y\nh7. z", "h1\\. x\nbq\\. y\nh7. z"),
    ("* a\n- b", "\\* a\n\\- b"),
    ("a\\b \\\\", "a&#92;b &#92;&#92;"),
    ("&amp;", r"\&amp;"),
    ("(y) (/) :) ;) :D (yes) a:b", r"\(y) \(/) \:) \;) \:D (yes) a:b"),
    ("customer_id 2024-01-01 a*b", "customer_id 2024-01-01 a*b"),
    ("_lead trail_ a_ _b", r"\_lead trail\_ a\_ \_b"),
])
def test_user_markup_is_escaped(text, wiki):
    assert to_wiki(from_text(text)) == wiki


def test_marks_links_headings_and_lists():
    doc = Document([
        Heading(2, [Text("Rule: "), Text("freshness", code=True)]),
        Paragraph([Text("Dataset:", strong=True), Text(" orders "), Text("late", em=True)]),
        Paragraph([Text("QALITA", href="https://q.example/i/1?a=1|2 [x]")]),
        BulletList([[Paragraph([Text("one")]), OrderedList([[Paragraph([Text("1.1")])]])],
                    [BulletList([[Paragraph([Text("deep")])]])]]),
    ])
    assert to_wiki(doc) == (
        "h2. Rule: {{freshness}}\n\n"
        "*Dataset:* orders _late_\n\n"
        "[QALITA|https://q.example/i/1?a=1%7C2%20%5Bx%5D]\n\n"
        "* one\n*# 1.1\n* \n** deep"
    )


def test_marks_keep_whitespace_outside_and_use_braces_inside_words():
    doc = Document([Paragraph([Text("a"), Text(" b ", strong=True), Text("c"),
                               Text("d", em=True), Text("e"), Text(" ", strong=True)])])
    wiki = to_wiki(doc)
    assert wiki == "a *b* c{_}d{_}e "
    assert wiki_to_text(wiki) == "a b cde "


def test_a_heading_stays_on_one_line():
    assert to_wiki(Document([Heading(1, [Text("a"), HardBreak(), Text("b")])])) == "h1. a b"


@pytest.mark.parametrize("code", [
    "select 1", "", "a {code} b", "{code:java}", "{\u200bcode} {\u200b\u200bcode}",
    "*not* [markup] \\", "\n\nlead and trail\n\n", "\r\nx\r", "\x00",
])
def test_code_blocks_are_verbatim_and_cannot_be_closed_early(code):
    wiki = to_wiki(Document([CodeBlock(code, language="sql")]))
    assert wiki.startswith("{code:sql}\n") and wiki.endswith("\n{code}")
    assert wiki.count("{code") == 2
    assert wiki_to_text(wiki) == code


def test_an_unsafe_language_is_left_out():
    assert to_wiki(Document([CodeBlock("x", language="a}b")])) == "{code}\nx\n{code}"


@pytest.mark.parametrize(("wiki", "text"), [
    ("It is important\\! I\u2019m on it\\!", "It is important! I\u2019m on it!"),
    ("h2. Title\nbody", "Title\nbody"),
    ("* one\n** sub\n* two\n# a\n# b\n#* c\n# d", "- one\n  - sub\n- two\n1. a\n2. b\n  - c\n3. d"),
    ("*bold* _it_ {{mono}} -del- +ins+ ^sup^ ~sub~ ??cite?? x{*}y{*}z",
     "bold it mono del ins sup sub cite xyz"),
    ("[Example|http://example.com] [http://x.y] [mailto:a@b.c] [~jdoe] [^log.txt]",
     "Example (http://example.com) http://x.y a@b.c @jdoe log.txt"),
    ("!screen.png|thumbnail! and !http://x/y.gif!", "screen.png and http://x/y.gif"),
    ("{code:sql}\r\nselect 1\r\n{code}\r\nafter", "select 1\r\r\nafter"),
    ("{noformat}\n*raw*\n{noformat}", "*raw*"),
    ("{quote}quoted{quote} {color:red}red{color}", "quoted red"),
    ("line\\\\break &amp; &lt;tag&gt; &nbsp;", "line\nbreak & <tag> \xa0"),
    ("C:\\Users\\me a - b - c 2*3*4 snake_case_name",
     "C:\\Users\\me a - b - c 2*3*4 snake_case_name"),
    ("||h1||h2||\n|a|b|", "||h1||h2||\n|a|b|"),
])
def test_markup_written_in_jira_reads_as_plain_text(wiki, text):
    assert wiki_to_text(wiki) == text


def test_none_and_empty_read_as_empty():
    assert wiki_to_text(None) == ""
    assert wiki_to_text("") == ""


def _webhook_texts() -> list[tuple[str, str]]:
    texts = []
    for path in sorted(WEBHOOKS.glob("*.json")):
        body = json.loads(path.read_text())
        fields = (body.get("issue") or {}).get("fields") or {}
        candidates = [fields.get("description"), (body.get("comment") or {}).get("body")]
        for item in (body.get("changelog") or {}).get("items") or []:
            candidates += [item.get("fromString"), item.get("toString")]
        texts += [(path.name, value) for value in candidates if isinstance(value, str)]
    return texts


def test_real_webhook_bodies_read_without_error():
    texts = _webhook_texts()
    assert len(texts) >= 8
    for name, wiki in texts:
        text = wiki_to_text(wiki)
        assert text.strip() or not wiki.strip(), name
        assert "\\!" not in text, name


def test_the_escaped_comment_of_the_captured_webhook_is_unescaped():
    body = json.loads((WEBHOOKS / "cloud-2019_comment_deleted__zulip.json").read_text())
    assert wiki_to_text(body["comment"]["body"]) == (
        "This is a very important issue! I\u2019m on it!")
