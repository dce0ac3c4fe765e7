"""QALITA's plain text in and out of the model, and the characters Jira cannot store.

QALITA descriptions and comments are markdown-ish text typed by people. They are carried as
literal text, never interpreted (a ``*`` stays a star), so that what Jira shows and what comes
back is exactly what was written: ``adf_to_text(to_adf(from_text(s)))`` and
``wiki_to_text(to_wiki(from_text(s)))`` both give ``s`` back.
"""

from __future__ import annotations

import re

from jira_sync.render.model import Document, HardBreak, Inline, Paragraph, Text


def from_text(text: str) -> Document:
    """One paragraph per ``\\n\\n``-separated chunk, single newlines as line breaks.

    Splitting on exactly two newlines keeps any run of blank lines, and leading or trailing
    ones, representable: extra newlines become empty paragraphs or line breaks at the start
    of one, which the readers turn back into the same newlines.
    """
    return Document(tuple(Paragraph(_lines(chunk)) for chunk in text.split("\n\n")))


def _lines(chunk: str) -> tuple[Inline, ...]:
    parts: list[Inline] = []
    for index, line in enumerate(chunk.split("\n")):
        if index:
            parts.append(HardBreak())
        if line:
            parts.append(Text(line))
    return tuple(parts)


def link_text(title: str, href: str) -> str:
    """How both readers print a link: the URL alone when it is also the title, else both."""
    if not title.strip() or title == href:
        return href
    return f"{title} ({href})"


# Jira stores text in databases and XML exports that refuse the C0 control characters other
# than tab, newline and carriage return (Postgres rejects NUL outright). Those are sent as
# their Unicode control pictures (U+2400 + code, visible in Jira). A variation selector after
# a picture (invisible) keeps reading back exact: U+FE0E marks a picture the user typed, and
# U+FE0F marks a control whose next character is itself a variation selector.
_CONTROLS = "".join(chr(code) for code in range(0x20) if chr(code) not in "\t\n\r")
_PICTURES = range(0x2400, 0x2420)
_TYPED, _BEFORE_SELECTOR = "\ufe0e", "\ufe0f"
_TO_ENCODE = re.compile(f"([{re.escape(_CONTROLS)}])(?=([\ufe0e\ufe0f])?)|[\u2400-\u241f]")
_TO_DECODE = re.compile("([\u2400-\u241f])([\ufe0e\ufe0f]?)")


def encode_controls(text: str) -> str:
    """``text`` with the control characters Jira refuses replaced by visible pictures."""
    def encode(match: re.Match[str]) -> str:
        control, selector = match.groups()
        if control is None:
            return match.group() + _TYPED
        return chr(_PICTURES.start + ord(control)) + (_BEFORE_SELECTOR if selector else "")

    return _TO_ENCODE.sub(encode, text)


def decode_controls(text: str) -> str:
    """The inverse of :func:`encode_controls`."""
    def decode(match: re.Match[str]) -> str:
        picture, selector = match.groups()
        control = chr(ord(picture) - _PICTURES.start)
        if selector == _TYPED:
            return picture
        return control if control in _CONTROLS else match.group()

    return _TO_DECODE.sub(decode, text)
