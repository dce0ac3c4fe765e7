"""Jira's limits are met by cutting with a visible marker, never by a refused write."""

from __future__ import annotations

import random

import pytest

from jira_sync.render import (
    SUMMARY_LIMIT,
    TEXT_LIMIT,
    TRUNCATION_MARKER,
    BulletList,
    CodeBlock,
    Document,
    Heading,
    OrderedList,
    Paragraph,
    Text,
    adf_to_text,
    cap,
    from_text,
    summary,
    to_wiki,
    wiki_to_text,
)
from jira_sync.render.limits import length, truncate
from tests.unit.render.support import adf, fuzz_texts

MARK = len(TRUNCATION_MARKER)


def test_cap_leaves_text_within_the_limit_alone():
    assert cap("x" * 255, 255) == "x" * 255
    assert cap("", 255) == ""


def test_cap_cuts_to_exactly_the_limit_with_the_marker():
    capped = cap("x" * 256, 255)
    assert capped == "x" * (255 - MARK) + TRUNCATION_MARKER
    assert len(capped) == 255


def test_cap_counts_like_jira_and_never_splits_an_emoji():
    capped = cap("😀" * 200, 255)  # 400 UTF-16 units
    assert capped.endswith(TRUNCATION_MARKER)
    assert capped[:-MARK] == "😀" * ((255 - MARK) // 2)
    assert length(capped) <= 255


def test_cap_refuses_a_limit_shorter_than_the_marker():
    with pytest.raises(ValueError):
        cap("x" * 100, MARK - 1)


def test_summary_is_one_line_and_capped():
    one_line = summary("Null rate\nabove threshold\r\nin\torders ")
    assert one_line == "Null rate above threshold in orders"
    long = summary("word " * 100)
    assert len(long) == SUMMARY_LIMIT
    assert long.endswith(TRUNCATION_MARKER)


def test_40000_characters_read_back_as_the_capped_text_through_wiki():
    rng = random.Random(0)
    text = "".join(rng.choice("abcdefghij klmnop\nqrstuvwxyz\n\n") for _ in range(40_000))
    wiki = to_wiki(from_text(text))
    assert len(wiki) == TEXT_LIMIT
    assert wiki_to_text(wiki) == text[:TEXT_LIMIT - MARK] + TRUNCATION_MARKER == cap(text,
                                                                                  TEXT_LIMIT)


def test_40000_characters_read_back_as_the_capped_text_through_adf():
    rng = random.Random(1)
    text = "".join(rng.choice("abcdefghij klmnop\nqrstuvwxyz\n\n") for _ in range(40_000))
    back = adf_to_text(adf(from_text(text)))
    assert back == text[:TEXT_LIMIT - MARK] + TRUNCATION_MARKER == cap(text, TEXT_LIMIT)


def test_hostile_long_texts_stay_within_the_limit_after_escaping():
    text = "".join(fuzz_texts(4000))
    assert length(text) > TEXT_LIMIT
    wiki = to_wiki(from_text(text))
    assert length(wiki) <= TEXT_LIMIT
    back = wiki_to_text(wiki)
    assert back.endswith(TRUNCATION_MARKER) and text.startswith(back[:-MARK])
    rendered = adf(from_text(text))
    back = adf_to_text(rendered)
    assert length(back) <= TEXT_LIMIT
    assert back.endswith(TRUNCATION_MARKER) and text.startswith(back[:-MARK])


@pytest.mark.parametrize("text", ["ab\n\ncd\nef", "\n\n\n\nx\n", "a\n\n\n\n\n"])
def test_a_cut_anywhere_reads_back_as_the_prefix_plus_the_marker(text):
    for keep in range(len(text)):
        doc = truncate(from_text(text), keep)
        assert adf_to_text(adf(doc)) == text[:keep] + TRUNCATION_MARKER, keep
        assert wiki_to_text(to_wiki(doc)) == text[:keep] + TRUNCATION_MARKER, keep
    assert truncate(from_text(text), len(text)) == from_text(text)


def test_structured_documents_are_cut_validly():
    doc = Document([
        Heading(2, [Text("Evidence")]),
        BulletList([[Paragraph([Text("run " * 50, href="https://q.example/run")]),
                     OrderedList([[Paragraph([Text("nested " * 40)])]] * 5)]] * 20),
        CodeBlock("select 1;\n" * 200, language="sql"),
        Paragraph([Text("tail " * 100, strong=True)]),
    ])
    for limit in (200, 1000, 5000, 20000):
        rendered = adf(doc, limit=limit)
        assert length(adf_to_text(rendered)) <= limit
        assert TRUNCATION_MARKER in adf_to_text(rendered)
        wiki = to_wiki(doc, limit=limit)
        assert length(wiki) <= limit
        assert TRUNCATION_MARKER in wiki_to_text(wiki)


def test_a_limit_too_small_for_the_marker_is_refused():
    with pytest.raises(ValueError):
        to_wiki(from_text("x" * 100), limit=MARK - 1)
