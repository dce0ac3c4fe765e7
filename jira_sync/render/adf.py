"""Atlassian Document Format, the rich text of Jira Cloud's REST v3 (notes §11).

Rendering uses only the basic nodes and marks every Cloud site accepts, and never an empty
text node (the schema refuses ``""``). Reading accepts whatever people write in Jira, so it
never raises: mentions, emoji, cards, panels, tables and media all come out as readable text,
and a node it does not know contributes its text content.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from jira_sync.render.limits import TEXT_LIMIT, fit, length
from jira_sync.render.model import (
    Block,
    BulletList,
    CodeBlock,
    Document,
    HardBreak,
    Heading,
    Inline,
    Paragraph,
    Text,
    with_breaks,
)
from jira_sync.render.text import decode_controls, encode_controls, link_text

Node = dict[str, Any]


def to_adf(doc: Document, limit: int = TEXT_LIMIT) -> Node:
    """``doc`` as an ADF document whose text fits in ``limit`` characters.

    The visible text is what is measured, as Jira documents its limit ("characters"); over
    the limit the text is cut with a visible marker, so ``from_text(s)`` reads back as the
    longest prefix of ``s`` that fits plus the marker. Whether Cloud counts the stored JSON
    instead is unverified: a description refused for length comes back as a permanent error
    whose reason says so.
    """
    return fit(doc, _document, lambda adf: length(adf_to_text(adf)), limit)


def _document(doc: Document) -> Node:
    return {"type": "doc", "version": 1, "content": _blocks(doc.blocks, in_item=False)}


def _blocks(blocks: tuple[Block, ...], *, in_item: bool) -> list[Node]:
    nodes = (_block(block, in_item=in_item) for block in blocks)
    return [node for node in nodes if node is not None]


def _block(block: Block, *, in_item: bool) -> Node | None:
    """One block node; a heading inside a list item becomes a paragraph (ADF allows no
    heading there), and a list without items is dropped (ADF requires one)."""
    if isinstance(block, Heading) and not in_item:
        return {"type": "heading", "attrs": {"level": block.level},
                "content": _inlines(block.content)}
    if isinstance(block, Paragraph | Heading):
        return {"type": "paragraph", "content": _inlines(block.content)}
    if isinstance(block, CodeBlock):
        node: Node = {"type": "codeBlock", "content": _texts(block.text)}
        if block.language:
            node["attrs"] = {"language": block.language}
        return node
    if not block.items:
        return None
    kind = "bulletList" if isinstance(block, BulletList) else "orderedList"
    return {"type": kind, "content": [_item(item) for item in block.items]}


def _item(blocks: tuple[Block, ...]) -> Node:
    content = _blocks(blocks, in_item=True)
    if not content or content[0]["type"] != "paragraph":
        content.insert(0, {"type": "paragraph", "content": []})
    return {"type": "listItem", "content": content}


def _inlines(content: tuple[Inline, ...]) -> list[Node]:
    nodes: list[Node] = []
    for part in with_breaks(content):
        if isinstance(part, HardBreak):
            nodes.append({"type": "hardBreak"})
        elif part.text:
            node = _texts(part.text)[0]
            marks = _marks(part)
            if marks:
                node["marks"] = marks
            nodes.append(node)
    return nodes


def _texts(text: str) -> list[Node]:
    return [{"type": "text", "text": encode_controls(text)}] if text else []


def _marks(part: Text) -> list[Node]:
    # The code mark combines with no other mark but link in Jira's editor schema.
    if part.code:
        marks = [{"type": "code"}]
    else:
        marks = [{"type": kind} for kind, on in (("strong", part.strong), ("em", part.em)) if on]
    if part.href:
        marks.append({"type": "link", "attrs": {"href": part.href}})
    return marks


# -- reading ---------------------------------------------------------------------------------

_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status",
           "mediaInline", "placeholder", "inlineExtension"}


def adf_to_text(adf: Any) -> str:
    """Plain text of any ADF document: blocks separated by a blank line, list items as
    ``- `` or ``1. `` lines, links as ``title (url)``. Not a document (None, a string) is ""."""
    return decode_controls(_text(adf)) if isinstance(adf, dict) else ""


def _text(node: Node) -> str:
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    children = _children(node)
    if kind == "text":
        return _string(node.get("text"))
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        name = _string(attrs.get("text")) or _string(attrs.get("id"))
        return name if name.startswith("@") else f"@{name}"
    if kind == "emoji":
        return _string(attrs.get("text")) or _string(attrs.get("shortName"))
    if kind in ("inlineCard", "blockCard", "embedCard"):
        data = attrs.get("data") if isinstance(attrs.get("data"), dict) else {}
        return _string(attrs.get("url")) or _string(data.get("url"))
    if kind == "status":
        return _string(attrs.get("text"))
    if kind == "date":
        return _date(attrs.get("timestamp"))
    if kind in ("media", "mediaInline"):
        return _string(attrs.get("alt")) or "[attachment]"
    if kind == "rule":
        return "----"
    if kind in ("bulletList", "orderedList"):
        return _list(node, children, attrs)
    if kind == "listItem":
        return "\n".join(_text(child) for child in children)
    if kind == "table":
        return "\n".join(_text(row) for row in children)
    if kind == "tableRow":
        return " | ".join(_text(cell) for cell in children)
    if kind in ("tableCell", "tableHeader"):
        return " ".join(_text(child) for child in children)
    if all(child.get("type") in _INLINE for child in children):
        return _inline_run(children)
    return "\n\n".join(_text(child) for child in children)


def _children(node: Node) -> list[Node]:
    content = node.get("content")
    return [child for child in content if isinstance(child, dict)] \
        if isinstance(content, list) else []


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _inline_run(nodes: list[Node]) -> str:
    """Inline nodes in order; consecutive text under the same link prints the URL once."""
    parts = []
    for href, group in groupby(nodes, key=_href):
        text = "".join(_text(node) for node in group)
        parts.append(link_text(text, href) if href else text)
    return "".join(parts)


def _href(node: Node) -> str | None:
    marks = node.get("marks") if node.get("type") == "text" else None
    for mark in marks if isinstance(marks, list) else ():
        if isinstance(mark, dict) and mark.get("type") == "link":
            attrs = mark.get("attrs")
            href = _string(attrs.get("href")) if isinstance(attrs, dict) else ""
            return href or None
    return None


def _list(node: Node, items: list[Node], attrs: dict[str, Any]) -> str:
    start = attrs.get("order")
    number = start if isinstance(start, int) else 1
    lines = []
    for item in items:
        marker = f"{number}. " if node["type"] == "orderedList" else "- "
        lines.append(marker + _text(item).replace("\n", "\n" + " " * len(marker)))
        number += 1
    return "\n".join(lines)


def _date(timestamp: Any) -> str:
    """ADF dates are milliseconds since the epoch, as a string."""
    try:
        return datetime.fromtimestamp(int(timestamp) / 1000, UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return _string(timestamp)
