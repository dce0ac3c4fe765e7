"""Jira's length limits, met by cutting text visibly rather than having the write refused.

Jira refuses a summary over 255 characters and a multi-line text over 32,767 (notes §2.1).
Jira counts characters as Java does, in UTF-16 code units, so an emoji counts two here too.
What is cut ends with a marker, so nobody mistakes a truncated text for the whole of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from jira_sync.render.model import (
    Block,
    CodeBlock,
    Document,
    HardBreak,
    Heading,
    Inline,
    Paragraph,
    Text,
)

SUMMARY_LIMIT = 255
TEXT_LIMIT = 32767
TRUNCATION_MARKER = "… (truncated by jira sync)"

_Rendered = TypeVar("_Rendered")


def length(text: str) -> int:
    """Characters as Jira counts them: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cap(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit``, else its longest prefix that leaves room for the
    marker, plus the marker. Never splits an emoji."""
    if length(text) <= limit:
        return text
    room = limit - length(TRUNCATION_MARKER)
    if room < 0:
        raise ValueError(f"a limit of {limit} leaves no room for the truncation marker")
    end = 0
    for char in text:
        room -= 2 if ord(char) > 0xFFFF else 1
        if room < 0:
            break
        end += 1
    return text[:end] + TRUNCATION_MARKER


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def summary(text: str) -> str:
    """A Jira summary: one line (line breaks and other controls become a space), capped."""
    return cap(_LINE_BREAKS.sub(" ", text).strip(), SUMMARY_LIMIT)


def fit(doc: Document, render: Callable[[Document], _Rendered],
        measure: Callable[[_Rendered], int], limit: int) -> _Rendered:
    """``render(doc)``, or if that measures over ``limit``, the rendering of the longest
    :func:`truncate`-d document that fits.

    The limit is checked on the rendered form because that is what Jira counts, and escapes
    or structure make it longer than the text; a binary search over how much text to keep
    finds the cut without guessing that overhead.
    """
    rendered = render(doc)
    if measure(rendered) <= limit:
        return rendered
    best = render(truncate(doc, 0))
    if measure(best) > limit:
        raise ValueError(f"a limit of {limit} cannot hold even the truncation marker")
    low, high = 0, limit  # every kept character adds at least one to the measure
    while low < high:
        middle = (low + high + 1) // 2
        candidate = render(truncate(doc, middle))
        if measure(candidate) <= limit:
            low, best = middle, candidate
        else:
            high = middle - 1
    return best


def truncate(doc: Document, keep: int) -> Document:
    """``doc`` cut after ``keep`` characters of text, with the marker where it was cut.

    Characters are counted as the plain-text readers print them, a paragraph break as two and
    a line break as one, so a document made by ``from_text(s)`` reads back as exactly
    ``s[:keep]`` plus the marker. A document that fits in ``keep`` comes back whole.
    """
    blocks, _ = _cut_sequence(doc.blocks, keep, 2, _cut_block, _mark_block)
    return Document(blocks)


def _cut_sequence(parts: tuple[Any, ...], budget: int, separator: int,
                  cut: Callable[[Any, int], tuple[Any, int | None]],
                  mark: Callable[[Any, bool], Any]) -> tuple[tuple[Any, ...], int | None]:
    """Keep parts while the budget lasts; the budget left, or None once the marker is placed.

    A cut that falls inside the separator between two parts marks the end of the first,
    after a line break when the budget reached into the separator.
    """
    kept: list[Any] = []
    for part in parts:
        if kept:
            if budget < separator:
                kept[-1] = mark(kept[-1], budget > 0)
                return tuple(kept), None
            budget -= separator
        part, remaining = cut(part, budget)
        kept.append(part)
        if remaining is None:
            return tuple(kept), None
        budget = remaining
    return tuple(kept), budget


def _cut_block(block: Block, budget: int) -> tuple[Block, int | None]:
    if isinstance(block, Paragraph | Heading):
        content, remaining = _cut_inlines(block.content, budget)
        return replace(block, content=content), remaining
    if isinstance(block, CodeBlock):
        if len(block.text) <= budget:
            return block, budget - len(block.text)
        return replace(block, text=block.text[:budget] + TRUNCATION_MARKER), None
    items, remaining = _cut_sequence(block.items, budget, 1, _cut_item, _mark_item)
    return replace(block, items=items), remaining


def _cut_item(item: tuple[Block, ...], budget: int) -> tuple[tuple[Block, ...], int | None]:
    return _cut_sequence(item, budget, 1, _cut_block, _mark_block)


def _cut_inlines(content: tuple[Inline, ...],
                 budget: int) -> tuple[tuple[Inline, ...], int | None]:
    kept: list[Inline] = []
    for part in content:
        size = len(part.text) if isinstance(part, Text) else 1
        if size > budget:
            if isinstance(part, Text) and budget:
                kept.append(replace(part, text=part.text[:budget]))
            kept.append(Text(TRUNCATION_MARKER))
            return tuple(kept), None
        kept.append(part)
        budget -= size
    return tuple(kept), budget


def _mark_block(block: Block, line_break: bool) -> Block:
    if isinstance(block, Paragraph | Heading):
        tail = (HardBreak(),) if line_break else ()
        return replace(block, content=(*block.content, *tail, Text(TRUNCATION_MARKER)))
    if isinstance(block, CodeBlock):
        return replace(block, text=block.text + "\n" * line_break + TRUNCATION_MARKER)
    if not block.items:
        return replace(block, items=((Paragraph((Text(TRUNCATION_MARKER),)),),))
    return replace(block, items=(*block.items[:-1], _mark_item(block.items[-1], line_break)))


def _mark_item(item: tuple[Block, ...], line_break: bool) -> tuple[Block, ...]:
    if not item:
        return (Paragraph((Text(TRUNCATION_MARKER),)),)
    return (*item[:-1], _mark_block(item[-1], line_break))
