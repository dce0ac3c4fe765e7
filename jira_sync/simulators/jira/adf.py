"""Atlassian Document Format: the simulator's own validator and ADF -> wiki converter.

Jira Cloud refuses a v3 rich-text field that is not a valid ADF document, and its webhooks carry
the same text as wiki markup. Both are reimplemented here, independently of the service's
renderer, so a mistake in one cannot be mirrored by the other.
"""

from __future__ import annotations

from typing import Any

_INLINE = {"text", "hardBreak", "mention", "emoji", "inlineCard"}
_LIST_ITEM_CHILDREN = {"paragraph", "bulletList", "orderedList", "codeBlock"}
_BLOCK_CHILDREN = {"paragraph", "heading", "bulletList", "orderedList", "codeBlock",
                   "blockquote", "rule"}
_QUOTE_CHILDREN = {"paragraph", "bulletList", "orderedList", "codeBlock"}
_MARKS = {"strong", "em", "code", "strike", "underline", "link"}


class AdfError(ValueError):
    """The document is not valid ADF; the message says where."""


def validate(doc: Any) -> None:
    """Raise AdfError unless ``doc`` is a version-1 ADF document of the supported nodes."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        raise AdfError("the root node must be {\"type\": \"doc\"}")
    if doc.get("version") != 1:
        raise AdfError("the document version must be 1")
    _children(doc, "doc", _BLOCK_CHILDREN, required=True)


def _children(node: dict, path: str, allowed: set[str], *, required: bool = False,
              non_empty: bool = False) -> None:
    content = node.get("content")
    if content is None and not required and not non_empty:
        return
    if not isinstance(content, list):
        raise AdfError(f"{path}.content must be a list")
    if non_empty and not content:
        raise AdfError(f"{path}.content must not be empty")
    for index, child in enumerate(content):
        child_path = f"{path}.content[{index}]"
        if not isinstance(child, dict) or not isinstance(child.get("type"), str):
            raise AdfError(f"{child_path} must be a node with a type")
        if child["type"] not in allowed:
            raise AdfError(f"{child_path}: node type '{child['type']}' is not allowed here")
        _node(child, child_path)


def _node(node: dict, path: str) -> None:
    kind = node["type"]
    attrs = node.get("attrs") or {}
    if not isinstance(attrs, dict):
        raise AdfError(f"{path}.attrs must be an object")
    if kind in ("paragraph", "heading"):
        if kind == "heading" and attrs.get("level") not in range(1, 7):
            raise AdfError(f"{path}: heading attrs.level must be 1 to 6")
        _children(node, path, _INLINE)
    elif kind in ("bulletList", "orderedList"):
        _children(node, path, {"listItem"}, non_empty=True)
    elif kind == "listItem":
        _children(node, path, _LIST_ITEM_CHILDREN, non_empty=True)
        if node["content"][0]["type"] in ("bulletList", "orderedList"):
            raise AdfError(f"{path}: a listItem cannot start with a nested list")
    elif kind == "codeBlock":
        _children(node, path, {"text"})
        if any(child.get("marks") for child in node.get("content") or []):
            raise AdfError(f"{path}: text in a codeBlock takes no marks")
    elif kind == "blockquote":
        _children(node, path, _QUOTE_CHILDREN, non_empty=True)
    elif kind == "text":
        _text(node, path)
    elif kind == "mention" and not isinstance(attrs.get("id"), str):
        raise AdfError(f"{path}: mention needs attrs.id")
    elif kind == "emoji" and not isinstance(attrs.get("shortName"), str):
        raise AdfError(f"{path}: emoji needs attrs.shortName")
    elif kind == "inlineCard" and not (isinstance(attrs.get("url"), str) or "data" in attrs):
        raise AdfError(f"{path}: inlineCard needs attrs.url or attrs.data")
    elif kind in ("rule", "hardBreak") and node.get("content"):
        raise AdfError(f"{path}: {kind} has no content")


def _text(node: dict, path: str) -> None:
    text = node.get("text")
    if not isinstance(text, str) or not text:
        raise AdfError(f"{path}: a text node needs a non-empty text string")
    marks = node.get("marks", [])
    if not isinstance(marks, list):
        raise AdfError(f"{path}.marks must be a list")
    for index, mark in enumerate(marks):
        mark_path = f"{path}.marks[{index}]"
        if not isinstance(mark, dict) or mark.get("type") not in _MARKS:
            raise AdfError(f"{mark_path}: unknown mark {mark!r}")
        if mark["type"] == "link":
            attrs = mark.get("attrs")
            if not isinstance(attrs, dict) or not isinstance(attrs.get("href"), str):
                raise AdfError(f"{mark_path}: a link mark needs attrs.href")


def from_text(text: str) -> dict:
    """Plain text as the Cloud editor stores it: a paragraph per blank-line-separated block, a
    hard break per line break inside one (what a person typing in Jira produces)."""
    blocks = text.replace("\r\n", "\n").split("\n\n")
    return {"type": "doc", "version": 1, "content": [_paragraph(block) for block in blocks]}


def _paragraph(block: str) -> dict:
    content: list[dict] = []
    for number, line in enumerate(block.split("\n")):
        if number:
            content.append({"type": "hardBreak"})
        if line:
            content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


# -- ADF -> wiki markup, the representation webhooks and REST v2 carry -----------------------

_WRAP = {"strong": "*", "em": "_", "strike": "-", "underline": "+"}


def to_wiki(doc: dict | None) -> str | None:
    if doc is None:
        return None
    return "\n\n".join(_block(node) for node in doc.get("content", [])).strip("\n")


def _block(node: dict, bullet: str = "") -> str:
    kind, content = node["type"], node.get("content") or []
    if kind == "paragraph":
        return _inline(content)
    if kind == "heading":
        return f"h{node['attrs']['level']}. {_inline(content)}"
    if kind in ("bulletList", "orderedList"):
        marker = bullet + ("*" if kind == "bulletList" else "#")
        return "\n".join(_list_item(item, marker) for item in content)
    if kind == "codeBlock":
        language = (node.get("attrs") or {}).get("language")
        opening = f"{{code:{language}}}" if language else "{code}"
        return f"{opening}\n{''.join(t['text'] for t in content)}\n{{code}}"
    if kind == "blockquote":
        return "{quote}\n" + "\n\n".join(_block(child) for child in content) + "\n{quote}"
    if kind == "rule":
        return "----"
    return _inline([node])


def _list_item(item: dict, marker: str) -> str:
    lines = []
    for child in item.get("content") or []:
        if child["type"] in ("bulletList", "orderedList"):
            lines.append(_block(child, marker))
        elif not lines:
            lines.append(f"{marker} {_block(child)}")
        else:
            lines.append(_block(child))
    return "\n".join(lines)


def _inline(nodes: list[dict]) -> str:
    parts = []
    for node in nodes:
        kind, attrs = node["type"], node.get("attrs") or {}
        if kind == "text":
            parts.append(_marked(node["text"], node.get("marks", [])))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind == "mention":
            parts.append(f"[~accountid:{attrs['id']}]")
        elif kind == "emoji":
            parts.append(attrs.get("text") or attrs["shortName"])
        elif kind == "inlineCard":
            url = attrs.get("url", "")
            parts.append(f"[{url}|{url}|smart-link]")
    return "".join(parts)


def _marked(text: str, marks: list[dict]) -> str:
    link = None
    for mark in marks:
        kind = mark["type"]
        if kind == "code":
            text = "{{" + text + "}}"
        elif kind == "link":
            link = mark["attrs"]["href"]
        else:
            text = _WRAP[kind] + text + _WRAP[kind]
    return f"[{text}|{link}]" if link else text


def stored_length(value: Any) -> int:
    """The length Jira's 32,767-character limit is checked against: the wiki string on
    Server; on Cloud the visible text of the ADF document (text in UTF-16 units, a line break
    as one character, a break between blocks as two), as Jira documents "characters"."""
    if isinstance(value, str):
        return _utf16(value)
    return _visible(value)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _visible(node: Any) -> int:
    if not isinstance(node, dict):
        return 0
    if node.get("type") == "text":
        return _utf16(node.get("text") or "")
    if node.get("type") == "hardBreak":
        return 1
    children = [c for c in node.get("content") or [] if isinstance(c, dict)]
    inline = all(c.get("type") in ("text", "hardBreak", "mention", "emoji", "inlineCard")
                 for c in children)
    separator = 0 if inline else 2
    return sum(_visible(c) for c in children) + separator * max(0, len(children) - 1)
