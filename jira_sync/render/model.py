"""The rich-text model the sync writes descriptions and comments in, whatever Jira speaks.

The sync builds a text once in this model and the integration's flavour picks the renderer:
ADF for Jira Cloud (REST v3), wiki markup for Server/Data Center (REST v2). Values are frozen
so a built document can be compared with what was last written and reused between attempts.
Sequences passed in as lists are stored as tuples for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A run of characters and its marks. With ``href`` it is a link whose visible text is
    ``text``, so a link always shows something a reader can click (the URL or a title)."""

    text: str
    strong: bool = False
    em: bool = False
    code: bool = False
    href: str | None = None


@dataclass(frozen=True)
class HardBreak:
    """A line break inside a paragraph: one newline of the source text."""


Inline = Text | HardBreak


@dataclass(frozen=True)
class Paragraph:
    content: tuple[Inline, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "content", tuple(self.content))


@dataclass(frozen=True)
class Heading:
    level: int
    content: tuple[Inline, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in range(1, 7):
            raise ValueError(f"heading level must be 1 to 6, not {self.level}")
        object.__setattr__(self, "content", tuple(self.content))


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str | None = None


@dataclass(frozen=True)
class _List:
    """Items of a list; each item is a sequence of blocks (a paragraph, maybe a nested list)."""

    items: tuple[tuple[Block, ...], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(tuple(item) for item in self.items))


class BulletList(_List):
    pass


class OrderedList(_List):
    pass


Block = Paragraph | Heading | CodeBlock | BulletList | OrderedList


@dataclass(frozen=True)
class Document:
    blocks: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))


def with_breaks(content: tuple[Inline, ...]) -> list[Inline]:
    """``content`` with every newline inside a Text turned into a HardBreak.

    Neither format shows a raw newline inside a run as a line break (ADF ignores it, wiki
    markup would end a marked span there), so renderers split runs on it first.
    """
    parts: list[Inline] = []
    for part in content:
        if isinstance(part, Text) and "\n" in part.text:
            for index, line in enumerate(part.text.split("\n")):
                if index:
                    parts.append(HardBreak())
                parts.append(Text(line, part.strong, part.em, part.code, part.href))
        else:
            parts.append(part)
    return parts
