"""QALITA text goes to Jira and comes back exactly, in either format."""

from __future__ import annotations

import pytest

from jira_sync.render import adf_to_text, from_text, to_wiki, wiki_to_text
from tests.unit.render.support import HOSTILE, REFUSED_CONTROLS, adf, fuzz_texts


@pytest.mark.parametrize("text", HOSTILE)
def test_adf_round_trip_is_exact(text):
    assert adf_to_text(adf(from_text(text))) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_wiki_round_trip_is_exact(text):
    assert wiki_to_text(to_wiki(from_text(text))) == text


def test_fuzzed_texts_round_trip_exactly_in_both_formats():
    for text in fuzz_texts():
        assert adf_to_text(adf(from_text(text))) == text, repr(text)
        wiki = to_wiki(from_text(text))
        assert not REFUSED_CONTROLS & set(wiki), repr(text)
        assert wiki_to_text(wiki) == text, repr(text)


def test_paragraphs_split_on_blank_lines_and_lines_become_breaks():
    doc = from_text("one\ntwo\n\nthree")
    assert adf(doc)["content"] == [
        {"type": "paragraph", "content": [{"type": "text", "text": "one"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "two"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "three"}]},
    ]
    assert to_wiki(doc) == "one\ntwo\n\nthree"


def test_extra_blank_lines_are_kept_as_empty_paragraphs_and_breaks():
    assert adf(from_text("a\n\n\n\nb\n\n\nc"))["content"] == [
        {"type": "paragraph", "content": [{"type": "text", "text": "a"}]},
        {"type": "paragraph", "content": []},
        {"type": "paragraph", "content": [{"type": "text", "text": "b"}]},
        {"type": "paragraph", "content": [{"type": "hardBreak"}, {"type": "text", "text": "c"}]},
    ]


def test_the_empty_text_is_one_empty_paragraph():
    assert adf(from_text("")) == {"type": "doc", "version": 1,
                                  "content": [{"type": "paragraph", "content": []}]}
    assert to_wiki(from_text("")) == ""


def test_controls_jira_refuses_travel_as_visible_pictures():
    rendered = adf(from_text("a\x00b\x1bc\td"))
    assert rendered["content"][0]["content"][0]["text"] == "a\u2400b\u241bc\td"
    assert to_wiki(from_text("a\x00b")) == "a\u2400b"
