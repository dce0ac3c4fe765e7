"""Jira wiki markup, the rich text of Server/Data Center and of REST v2 (notes §2.1, §4).

Text people typed must show as typed, so every character wiki markup could read as markup is
escaped with a backslash. Backslash itself cannot be escaped in Jira's wiki (``\\\\`` is a line
break), so it is written as the entity ``&#92;``. Emphasis characters between two letters or
digits stay bare, since Jira never reads them as markup there: ``customer_id`` stays readable
in the text editor.

Reading undoes those escapes and turns the markup people write in Jira (headings, lists,
links, images, code blocks, emphasis) into plain text, so a text written by ``to_wiki`` reads
back exactly and one written by a person reads naturally.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from jira_sync.render.limits import TEXT_LIMIT, fit, length
from jira_sync.render.model import (
    Block,
    BulletList,
    CodeBlock,
    Document,
    HardBreak,
    Heading,
    Inline,
    OrderedList,
    Paragraph,
    Text,
    with_breaks,
)
from jira_sync.render.text import decode_controls, encode_controls, link_text


def to_wiki(doc: Document, limit: int = TEXT_LIMIT) -> str:
    """``doc`` as wiki markup of at most ``limit`` characters, escapes included; over the
    limit, the text is cut with a visible marker."""
    return fit(doc, _document, length, limit)


def _document(doc: Document) -> str:
    rendered = (_block(block, in_item=False) for block in doc.blocks)
    return "\n\n".join(text for text in rendered if text is not None)


def _block(block: Block, *, in_item: bool) -> str | None:
    if isinstance(block, Heading) and not in_item:
        return f"h{block.level}. {_inlines(block.content, line_break=' ')}"
    if isinstance(block, Paragraph | Heading):
        return _line_starts(_inlines(block.content))
    if isinstance(block, CodeBlock):
        return _code(block)
    return "\n".join(_items(block, "")) if block.items else None


def _items(block: BulletList | OrderedList, marker: str) -> list[str]:
    """One line (or a few) per item; nested lists extend the marker, as ``*#``."""
    marker += "*" if isinstance(block, BulletList) else "#"
    lines = []
    for item in block.items:
        parts = []
        for child in item:
            if isinstance(child, BulletList | OrderedList):
                parts.extend(_items(child, marker))
            else:
                parts.append(_block(child, in_item=True) or "")
        if not item or isinstance(item[0], BulletList | OrderedList):
            parts.insert(0, "")
        lines.append(f"{marker} {parts[0]}")
        lines.extend(parts[1:])
    return lines


def _code(block: CodeBlock) -> str:
    """A ``{code}`` block, its text verbatim; a ``{code`` inside gets a zero-width space after
    its brace so it cannot close the block (and one more if it already had some, so the
    reader can take exactly one away)."""
    language = block.language if block.language and _LANGUAGE.fullmatch(block.language) else None
    opening = f"{{code:{language}}}" if language else "{code}"
    body = _CODE_INSIDE.sub("{\u200b", encode_controls(block.text))
    return f"{opening}\n{body}\n{{code}}"


_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]+")
_CODE_INSIDE = re.compile(r"\{(?=\u200b*code)")


def _inlines(content: tuple[Inline, ...], line_break: str = "\n") -> str:
    parts = with_breaks(content)
    out: list[str] = []
    before = ""
    for index, part in enumerate(parts):
        if isinstance(part, HardBreak):
            rendered = line_break
        else:
            following = parts[index + 1] if index + 1 < len(parts) else None
            after = following.text[:1] \
                if isinstance(following, Text) and not following.href else ""
            rendered = _text(part, before, after)
        out.append(rendered)
        before = rendered[-1:] or before
    return "".join(out)


_EDGES = re.compile(r"(\s*)(.*?)(\s*)", re.DOTALL)


def _text(part: Text, before: str, after: str) -> str:
    """One run: escaped text inside its marks. Whitespace at the ends goes outside the marks
    (Jira ignores ``* x*``), and next to a letter or digit the marks take their braced form
    ``{*}x{*}``, the only one Jira recognises inside a word."""
    text = encode_controls(part.text)
    lead, core, trail = _EDGES.fullmatch(text).groups()
    if not core or not (part.strong or part.em or part.code):
        body = _escape(text)
    else:
        left = lead[-1:] or ("" if part.href else before)
        right = trail[:1] or ("" if part.href else after)
        braced = left.isalnum() or right.isalnum()
        body = _escape(core)
        if part.code:
            body = f"{{{{{body}}}}}"
        for on, delimiter in ((part.em, "_"), (part.strong, "*")):
            if on:
                body = f"{{{delimiter}}}{body}{{{delimiter}}}" if braced \
                    else f"{delimiter}{body}{delimiter}"
        body = _escape(lead) + body + _escape(trail)
    if part.href and body:
        return f"[{body}|{quote(part.href, safe=_URL_SAFE)}]"
    return body


# Kept as they are in a link's URL; anything else (spaces, "|", "]", braces, backslashes,
# non-ASCII) is percent-encoded so it cannot end the link or break it.
_URL_SAFE = "!#$%&'()*+,/:;=?@~"

# Characters that start or end markup anywhere in a line; "(" only where it would make an
# emoticon such as (y) or (/), ":" and ";" only before a smiley's mouth.
_SPECIAL = re.compile(r"[\\&{}\[\]|!?*_+\-^~]"
                      r"|\((?=(?:[ynix/]|on|off|flag|flagoff)\))|:(?=[()PD])|;(?=\))")
_INTRAWORD = set("*_+-^~")


def _escape(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        char, at = match.group(), match.start()
        if char == "\\":
            return "&#92;"
        if (char in _INTRAWORD and 0 < at < len(text) - 1
                and text[at - 1].isalnum() and text[at + 1].isalnum()):
            return char
        return "\\" + char

    return _SPECIAL.sub(escape, text)


# Markup that only counts at the start of a line: numbered lists, headings, block quotes.
_LINE_START = re.compile(r"^([ \t]*)(#|(?:h[1-6]|bq)\.)", re.MULTILINE)


def _line_starts(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        indent, markup = match.groups()
        return indent + (r"\#" if markup == "#" else markup[:-1] + r"\.")

    return _LINE_START.sub(escape, text)


# -- reading ---------------------------------------------------------------------------------

_BLOCK = re.compile(r"(?<!\\)\{(code|noformat)(?::[^}\n]*)?\}(?P<body>.*?)\{\1\}", re.DOTALL)
_CODE_BREAK = re.compile(r"\{\u200b(?=\u200b*code)")
_HEADING = re.compile(r"(?:h[1-6]|bq)\.[ \t]+")
_LIST = re.compile(r"[ \t]*([*#]+|-)[ \t]+")
_INLINE = re.compile(r"""
    (?P<line_break>\\\\)
  | \\(?P<escaped>[!-/:-@\[-`{-~])
  | (?P<entity>&(?:\#[0-9]+|\#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)
  | \{\{(?P<monospaced>(?:\\.|[^\\])+?)\}\}
  | \{(?P<brace>[*_+\-^~])\}(?P<braced>(?:\\.|[^\\])+?)\{(?P=brace)\}
  | (?P<macro>\{(?:anchor|color|panel|quote|noformat|code)(?::[^}]*)?\})
  | \[(?:(?P<title>(?:\\.|[^\\\]|])*)\|)?(?P<target>[^\]|]+)(?:\|[^\]]*)?\]
  | !(?P<image>[^\s!|][^!|]*?)(?:\|[^!]*)?!
  | \?\?(?P<citation>(?:\\.|[^\\])+?)\?\?
  | (?<!\w)(?P<delimiter>[*_+\-^~])(?=\S)(?P<styled>(?:\\.|[^\\])+?)(?<=\S)(?P=delimiter)(?!\w)
""", re.VERBOSE)


def wiki_to_text(wiki: str | None) -> str:
    """Plain text of wiki markup: escapes and entities undone, markup dropped, links as
    ``title (url)``, list items as ``- `` or ``1. `` lines, code blocks verbatim. None is ""."""
    if not wiki:
        return ""
    out, position = [], 0
    for match in _BLOCK.finditer(wiki):
        out.append(_prose(wiki[position:match.start()]))
        # The line breaks after the opening tag and before the closing one are the markup's.
        # A closing "\r\n" keeps its "\r": it may be the last character of the code.
        body = match["body"].removeprefix("\r\n").removeprefix("\n").removesuffix("\n")
        out.append(_CODE_BREAK.sub("{", body))
        position = match.end()
    out.append(_prose(wiki[position:]))
    return decode_controls("".join(out))


def _prose(text: str) -> str:
    lines = []
    counts: dict[str, int] = {}  # items seen per marker path ("#", "#*") of the current list
    for line in text.split("\n"):
        prefix = ""
        if heading := _HEADING.match(line):
            line = line[heading.end():]
            counts.clear()
        elif item := _LIST.match(line):
            markers = item.group(1)
            counts = {path: count for path, count in counts.items() if markers.startswith(path)}
            counts[markers] = counts.get(markers, 0) + 1
            bullet = "- " if markers[-1] in "*-" else f"{counts[markers]}. "
            prefix, line = "  " * (len(markers) - 1) + bullet, line[item.end():]
        else:
            counts.clear()
        lines.append(prefix + _inline(line))
    return "\n".join(lines)


def _inline(text: str) -> str:
    return _INLINE.sub(_token, text)


def _token(match: re.Match[str]) -> str:
    if match["line_break"]:
        return "\n"
    if match["escaped"]:
        return match["escaped"]
    if match["entity"]:
        return html.unescape(match["entity"])
    if match["macro"]:
        return ""
    if match["target"]:
        return _link(_inline(match["title"] or ""), match["target"].strip())
    if match["image"]:
        return match["image"]
    inner = match["monospaced"] or match["braced"] or match["citation"] or match["styled"]
    return _inline(inner)


def _link(title: str, target: str) -> str:
    """``[~name]`` mentions a user, ``[^file]`` an attachment, anything else is a URL."""
    if target.startswith("~"):
        return title or f"@{target[1:]}"
    if target.startswith("^"):
        return title or target[1:]
    return link_text(title, target.removeprefix("mailto:"))
