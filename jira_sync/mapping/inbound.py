"""What a Jira issue's values mean for its QALITA issue: the inbound half of the mapping.

Texts are compared normalised (white space collapsed, ADF or wiki markup read as plain
text), because the same words come back from Jira in another markup than they were sent in.
Only what people write is written back: the description above the generated Details
heading, a summary that differs from what the title template renders, and the labels
jira-sync does not manage itself.
"""

from __future__ import annotations

import re
import string
from typing import Any

from jira_sync.mapping.config import IGNORED_STATUSES, MAPPED_STATUSES, Mapping
from jira_sync.mapping.issue import BASE_LABEL
from jira_sync.render import adf_to_text, wiki_to_text

MARKER_PREFIX = "qalita-id-"
DETAILS_HEADING = "Details"
QALITA_LINK_LINE = "View in QALITA:"
DEFAULT_STATUS_OF = {"new": "open", "indeterminate": "active", "done": "resolved"}
_WIKI_DETAILS = re.compile(r"^h3\.\s*Details\s*$", re.MULTILINE)
_SPACE = re.compile(r"\s+")
_NOT_WORDS = re.compile(r"[\W_]+")


def normalize(text: str | None) -> str:
    """White space collapsed: Jira reflows text, people do not mean anything by it."""
    return _SPACE.sub(" ", text or "").strip()


def text_key(text: str | None) -> str:
    """What two texts must share to be the same words: letters and digits, case folded.

    Markup does not survive a round trip through Jira unchanged (an ADF ``*`` may come back
    in a webhook as wiki emphasis), so texts jira-sync wrote are recognised by their words.
    """
    return _NOT_WORDS.sub("", text or "").casefold()


def jira_text(body: Any) -> str:
    """A rich-text value as plain text: ADF (Cloud REST v3) or wiki markup (webhooks, v2)."""
    if isinstance(body, dict):
        return adf_to_text(body)
    return wiki_to_text(body) if isinstance(body, str) else ""


def description_text(body: Any) -> str:
    """The part of a Jira description a person writes: above the generated Details heading
    (the last one: the written part may hold that line too), without the trailing link back
    to QALITA."""
    if isinstance(body, dict):
        blocks = list(body.get("content") or [])
        cut = next((i for i in reversed(range(len(blocks))) if _is_details(blocks[i])),
                   len(blocks))
        text = adf_to_text({**body, "content": blocks[:cut]})
    elif isinstance(body, str):
        matches = list(_WIKI_DETAILS.finditer(body))
        text = wiki_to_text(body[:matches[-1].start()] if matches else body)
    else:
        return ""
    lines = text.rstrip().split("\n")
    if lines and lines[-1].startswith(QALITA_LINK_LINE):
        lines.pop()
    return "\n".join(lines).strip()


def _is_details(block: Any) -> bool:
    return (isinstance(block, dict) and block.get("type") == "heading"
            and (block.get("attrs") or {}).get("level") == 3
            and normalize(adf_to_text({"type": "doc", "content": [block]})) == DETAILS_HEADING)


def is_managed_label(mapping: Mapping, label: str) -> bool:
    """Labels jira-sync sets itself (never QALITA tags): the base labels, the marker, the
    severity and domain labels and the ignored label, which stands for a status."""
    if label in (BASE_LABEL, mapping.ignored_label, *mapping.labels):
        return True
    if label.startswith(MARKER_PREFIX):
        return True
    return any(template and _template_match(template, label)
               for template in (mapping.severity_label, mapping.domain_label))


def _template_match(template: str, label: str) -> bool:
    pattern = "".join(re.escape(literal) + (".+" if name is not None else "")
                      for literal, name, _, _ in string.Formatter().parse(template))
    return re.fullmatch(pattern, label) is not None


def qalita_status(mapping: Mapping, category: str | None, name: str | None,
                  ignored: bool) -> str | None:
    """The QALITA status a Jira status stands for; None when the mapping says nothing.

    The ignored label wins over the status, as it does outbound (muted and ignored issues
    keep their Jira status and carry the label instead).
    """
    if ignored and mapping.inbound["ignored"]:
        return "ignored"
    if not mapping.inbound["status"]:
        return None
    if name is not None and name in mapping.inbound_statuses:
        return mapping.inbound_statuses[name]
    if category is None:
        return None
    for status in MAPPED_STATUSES:
        if mapping.statuses.get(status) == category:
            return status
    return DEFAULT_STATUS_OF.get(category)


def same_status(mapping: Mapping, current: str | None, target: str) -> bool:
    """Whether QALITA's status already says what Jira's does: muted and ignored both show
    as the ignored label, and statuses of one category show as that category."""
    if current == target:
        return True
    if current in IGNORED_STATUSES and target in IGNORED_STATUSES:
        return True
    if current in IGNORED_STATUSES or target in IGNORED_STATUSES or current is None:
        return False
    return mapping.statuses.get(current) is not None \
        and mapping.statuses.get(current) == mapping.statuses.get(target)
