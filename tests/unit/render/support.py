"""Shared test material: an ADF validity check and the hostile texts every round trip faces."""

from __future__ import annotations

import random
from typing import Any

from jira_sync.render import Document, to_adf

BLOCK_NODES = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock"}
INLINE_NODES = {"text", "hardBreak"}
MARKS = {"strong", "em", "code", "link"}
# What Jira (and the XML it exports) cannot store; tab, newline and carriage return can be.
REFUSED_CONTROLS = {chr(code) for code in range(0x20)} - set("\t\n\r")


def assert_valid_adf(adf: Any) -> None:
    """The rules of notes §11 that the renderer promises, checked on every node."""
    assert isinstance(adf, dict)
    assert adf["type"] == "doc"
    assert adf["version"] == 1
    assert isinstance(adf["content"], list)
    for node in adf["content"]:
        _block(node)


def _block(node: dict) -> None:
    assert node["type"] in BLOCK_NODES, node
    if node["type"] in ("bulletList", "orderedList"):
        assert node["content"], "a list needs at least one item"
        for item in node["content"]:
            assert item["type"] == "listItem"
            assert item["content"] and item["content"][0]["type"] == "paragraph"
            for child in item["content"]:
                assert child["type"] != "heading"
                _block(child)
        return
    if node["type"] == "heading":
        assert node["attrs"]["level"] in range(1, 7)
    if node["type"] == "codeBlock":
        assert all(child["type"] == "text" and "marks" not in child for child in node["content"])
    assert isinstance(node["content"], list)
    for child in node["content"]:
        _inline(child)


def _inline(node: dict) -> None:
    assert node["type"] in INLINE_NODES, node
    if node["type"] == "hardBreak":
        assert set(node) == {"type"}
        return
    assert isinstance(node["text"], str) and node["text"], "never an empty text node"
    assert not REFUSED_CONTROLS & set(node["text"])
    marks = node.get("marks", [])
    assert "marks" not in node or marks, "no empty marks list"
    for mark in marks:
        assert mark["type"] in MARKS
        if mark["type"] == "link":
            assert isinstance(mark["attrs"]["href"], str) and mark["attrs"]["href"]


def adf(doc: Document, **kwargs: Any) -> dict:
    """to_adf, checked: every ADF rendered in these tests goes through here."""
    rendered = to_adf(doc, **kwargs)
    assert_valid_adf(rendered)
    return rendered


HOSTILE = [
    "",
    " ",
    "  \t  ",
    "\n",
    "\n\n",
    "\n\n\n",
    "\n\n\n\n\n",
    "a\n",
    "\na",
    "\n\na\n\n",
    "a\n\n\nb",
    "a\n\n\n\n\n\nb\n\n\n",
    "😀",
    "\U0001d518\U0001d52b\U0001d526 👍🏽 🇫🇷 \U0010fffd e\u0301",
    "*bold* _it_ {code} [a|b] h1. x",
    "**not bold** __nor this__ `code` [link](http://x) # heading",
    "\\",
    "\\\\",
    "\\\\\\",
    "a\\\\b\\",
    "-- ---",
    "----",
    "{{x}}",
    "!image.png!",
    "!image.png|thumbnail!",
    "#1 at line start\n#2\n  # indented",
    "h1. x\nh6. y\nbq. z\n h2. indented",
    "* a\n** b\n# c\n- d\n*# e",
    "||a||b||\n|c|d|",
    "{code}x{code}",
    "{code:java}\n{code}\n{noformat}x{noformat}",
    "{quote}q{quote} {color:red}r{color} {panel:title=p}x{panel} {anchor:a}",
    "[~admin] [^file.txt] [http://x|y] [mailto:a@b.c]",
    "(y) (n) (i) (x) (/) (!) (?) (on) (off) (flag) :) :( ;) :P :D",
    "&amp; &#92; &bsol; &lt;b&gt; & &;",
    "a\\!b \\* \\\\* \\h1.",
    "C:\\Users\\me\\*.txt",
    "x{*}y{*}z {_}w{_}",
    "??cite?? ?? ?",
    "+ins+ ^sup^ ~sub~ -del- *a*b*",
    "customer_id a_b_c snake_case_ _lead 2024-01-01 a-b- -a-b",
    "http://example.com/a_b-c*d?x=1&y=[2]|3",
    "\t\ttabbed\t",
    "\x00",
    "".join(map(chr, range(32))),
    "\x7f\x80\x9f",
    "\u2400\u2401\u241f\u2409\u240a\u240d",
    "\u2400\ufe0e \u2400\ufe0e\ufe0e \ufe0e",
    "\x00\ufe0e \x01\ufe0f \x02\ufe0f\ufe0e \u2400\ufe0f \u2409\ufe0f",
    "\u200b{code} {\u200bcode}",
    "\u2028\u2029\x85\x0b\x0c",
    "\r\n",
    "a\r\nb\r\n\r\nc\r",
    "\r",
    "\ufeff",
    "trailing spaces   \n  leading",
    ":::",
    "h1.",
    "bq.",
    " *x* ",
]

_FUZZ_TOKENS = [
    "a", "Z", "0", "é", " ", "  ", "\t", "\n", "\n\n", "\r", "\r\n", "\x00", "\x01", "\x1b",
    "\x1f", "\x7f", "*", "_", "-", "+", "^", "~", "?", "??", "{", "}", "{{", "}}", "[", "]",
    "|", "!", "#", "\\", "\\\\", "&", ";", ":", "(", ")", "h1. ", "h", "1", ".", "bq. ",
    "😀", "\U0001d518", "\u2400", "\u240d", "\ufe0e", "\ufe0f", "\u200b", "{code}", "{noformat}",
    "&#92;", "&amp;", "--", "----", "[a|b]", "!x.png!", "(y)", ":)", "@", "\u2028", "\x85",
    "\ufeff", "http://x.y/a_b", "* ", "# ", "- ", "||", "{*}", "{color:red}",
]


def fuzz_texts(count: int = 400) -> list[str]:
    """Hostile strings: random sequences of markup, controls and astral characters."""
    rng = random.Random(0)
    return ["".join(rng.choice(_FUZZ_TOKENS) for _ in range(rng.randrange(0, 40)))
            for _ in range(count)]
