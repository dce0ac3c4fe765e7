"""Rich text for Jira: one model, rendered as ADF (Cloud, REST v3) or wiki markup (Server/Data
Center, REST v2), and read back to plain text for QALITA.

Plain text from QALITA goes through ``from_text`` and comes back exactly through either
format; Jira's length limits are met by cutting with a visible marker (``limits``).
"""

from jira_sync.render.adf import adf_to_text, to_adf
from jira_sync.render.limits import SUMMARY_LIMIT, TEXT_LIMIT, TRUNCATION_MARKER, cap, summary
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
)
from jira_sync.render.text import from_text
from jira_sync.render.wiki import to_wiki, wiki_to_text

__all__ = [
    "SUMMARY_LIMIT",
    "TEXT_LIMIT",
    "TRUNCATION_MARKER",
    "Block",
    "BulletList",
    "CodeBlock",
    "Document",
    "HardBreak",
    "Heading",
    "Inline",
    "OrderedList",
    "Paragraph",
    "Text",
    "adf_to_text",
    "cap",
    "from_text",
    "summary",
    "to_adf",
    "to_wiki",
    "wiki_to_text",
]
