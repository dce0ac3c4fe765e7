"""What a QALITA issue should look like in Jira, independent of what Jira has now.

The flush compares this desired state with what it last wrote, field by field, so everything
here is deterministic (sorted labels and components) and built from the snapshot and the
mapping alone. The description is one rich-text document that renders as ADF or wiki markup.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jira_sync.events.qalita_event import IssueSnapshot, Person
from jira_sync.mapping.config import IGNORED_STATUSES, Mapping
from jira_sync.render import (
    Block,
    BulletList,
    Document,
    Heading,
    Inline,
    Paragraph,
    Text,
    from_text,
    summary,
)

LABEL_LIMIT = 255
BASE_LABEL = "qalita"  # CONTRACT §6: on every issue, whatever the mapping says


@dataclass(frozen=True)
class DesiredIssue:
    summary: str
    description: Document
    labels: tuple[str, ...]
    priority: str | None
    components: tuple[str, ...]
    assignee_email: str | None
    status_category: str | None  # None: leave the status alone (muted, ignored, unmapped)
    ignored: bool


def tenant_label(tenant: str) -> str:
    """The tenant as it appears in ``qalita-id-<tenant>-<id>`` labels (CONTRACT §6)."""
    return re.sub(r"[^a-z0-9_-]", "-", tenant.lower())


def marker_label(tenant: str, issue_id: int) -> str:
    """The label a crashed create is found by again, so it must never depend on the mapping."""
    return f"qalita-id-{tenant_label(tenant)}-{issue_id}"


_LABEL_BREAKS = re.compile(r"[\s\x00-\x1f\x7f]+")


def sanitize_label(text: str) -> str:
    """Jira refuses a label with a space (and stores nothing else a person could search for),
    so white space and control characters become one dash each run; cut at Jira's 255."""
    label = _LABEL_BREAKS.sub("-", text.strip())
    return _cut(label, LABEL_LIMIT)


def _cut(text: str, limit: int) -> str:
    # Jira counts UTF-16 code units; an astral character is two and is never split.
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def desired_issue(mapping: Mapping, snapshot: IssueSnapshot, tenant: str) -> DesiredIssue:
    ignored = snapshot.status in IGNORED_STATUSES
    severity, domain = _present(snapshot.severity), _present(snapshot.domain)
    return DesiredIssue(
        summary=_summary(mapping, snapshot),
        description=description(snapshot),
        labels=_labels(mapping, snapshot, tenant, ignored),
        priority=mapping.priorities.get(severity) if severity else None,
        components=_components(mapping, domain, snapshot.owner),
        assignee_email=_present(snapshot.owner.email) if snapshot.owner else None,
        status_category=None if ignored or snapshot.status is None
        else mapping.statuses.get(snapshot.status),
        ignored=ignored,
    )


def _present(value: str | None) -> str | None:
    """Blank values count as missing: a label ``domain:`` or a title ``orders: `` helps nobody."""
    return value.strip() if value and value.strip() else None


def _summary(mapping: Mapping, snapshot: IssueSnapshot) -> str:
    values = {
        "id": str(snapshot.id),
        "title": _present(snapshot.title),
        "dataset": _present(snapshot.dataset),
        "rule": _present(snapshot.rule),
        "metric": _present(snapshot.metric),
        "rule_or_metric": _present(snapshot.rule) or _present(snapshot.metric),
        "domain": _present(snapshot.domain),
        "severity": _present(snapshot.severity),
    }
    # The loader lets only these bare names into a template, so format is safe (substituted
    # values are never read as a template themselves); a name it does not know, possible in
    # a Mapping built in code, counts as a missing value.
    wanted = _placeholders(mapping.title_template)
    if all(values.get(name) is not None for name in wanted):
        title = summary(mapping.title_template.format(**values))
        if title:
            return title
    # Jira refuses an empty summary; QALITA's title is required but may be blank.
    return summary(values["title"] or f"QALITA issue {snapshot.id}")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _labels(mapping: Mapping, snapshot: IssueSnapshot, tenant: str,
            ignored: bool) -> tuple[str, ...]:
    wanted = [BASE_LABEL, *mapping.labels, marker_label(tenant, snapshot.id)]
    severity, domain = _present(snapshot.severity), _present(snapshot.domain)
    if severity and mapping.severity_label:
        wanted.append(mapping.severity_label.format(severity=severity))
    if domain and mapping.domain_label:
        wanted.append(mapping.domain_label.format(domain=domain))
    if mapping.tag_labels:
        wanted.extend(snapshot.tags)
    if ignored:
        wanted.append(mapping.ignored_label)
    return tuple(sorted({label for label in map(sanitize_label, wanted) if label}))


def _components(mapping: Mapping, domain: str | None, owner: Person | None) -> tuple[str, ...]:
    found = set(mapping.components_by_domain.get(domain, ())) if domain else set()
    email = _present(owner.email) if owner else None
    if email:
        found.update(mapping.components_by_owner.get(email.lower(), ()))
    return tuple(sorted(found))


# -- description -----------------------------------------------------------------------------

def description(snapshot: IssueSnapshot) -> Document:
    """The QALITA text as written, then the facts a triager needs, then the way back."""
    blocks: list[Block] = []
    if snapshot.description and snapshot.description.strip():
        blocks.extend(from_text(snapshot.description).blocks)
    details = _details(snapshot)
    if details:
        blocks.append(Heading(3, (Text("Details"),)))
        blocks.append(BulletList(details))
    if _present(snapshot.url):
        blocks.append(Paragraph((Text("View in QALITA: "), _link(snapshot.url.strip()))))
    return Document(tuple(blocks))


def _details(snapshot: IssueSnapshot) -> list[tuple[Block, ...]]:
    items: list[tuple[Block, ...]] = []

    def add(name: str, *value: Inline, nested: tuple[Block, ...] = ()) -> None:
        items.append((Paragraph((Text(f"{name}:", strong=True), *value)), *nested))

    for name, value in (("Dataset", snapshot.dataset), ("Rule", snapshot.rule),
                        ("Metric", snapshot.metric), ("Domain", snapshot.domain),
                        ("Severity", snapshot.severity), ("Owner", _owner(snapshot.owner))):
        if _one_line(value):
            add(name, Text(f" {_one_line(value)}"))
    if snapshot.evidence:
        evidence = dict(snapshot.evidence)
        headline = evidence.pop("summary", None)
        headline = "" if headline is None else _value(headline).strip()
        others = [Paragraph((Text(f"{_one_line(str(key))}: {_value(value).strip()}"),))
                  for key, value in evidence.items()]
        add("Evidence", *((Text(f" {headline}"),) if headline else ()),
            nested=(BulletList([(line,) for line in others]),) if others else ())
    if snapshot.links:  # the schema refuses an empty URL, not a blank one
        runs = [(Paragraph((_link(link.url.strip(), _one_line(link.title)),)),)
                for link in snapshot.links if link.url.strip()]
        if runs:
            add("Runs", nested=(BulletList(runs),))
    return items


_CONTROLS = re.compile("[\x00-\x1f\x7f]")


def _one_line(value: str | None) -> str:
    """Names and identifiers on one line: a line break in a dataset name is noise, and list
    items read best as one line each."""
    return " ".join(_CONTROLS.sub(" ", value).split()) if value else ""


def _owner(owner: Person | None) -> str | None:
    if owner is None:
        return None
    name, email = _one_line(owner.name), _one_line(owner.email)
    if name and email:
        return f"{name} <{email}>"
    return name or email or None


def _value(value: Any) -> str:
    """Evidence values as people read them: strings bare, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except ValueError:  # a circular structure cannot come from JSON, but costs nothing
        return repr(value)


_LINK_SCHEMES = ("http", "https")


def _link(url: str, title: str | None = None) -> Text:
    """A link only to the web: a ``javascript:`` or ``file:`` URL in an event stays visible
    text, never something a triager can click."""
    text = _present(title) or url
    try:
        safe = urlsplit(url).scheme.lower() in _LINK_SCHEMES and bool(urlsplit(url).netloc)
    except ValueError:
        safe = False
    return Text(text, href=url if safe else None)


# -- comments --------------------------------------------------------------------------------

# Also as wiki markup shows it, where the brackets may come escaped (``\[``) or not.
_COMMENT_MARKER = re.compile(
    r"\A[^\n]*?\\?\[qalita-comment:(\d{1,19})\\?\][ \t]*(?:\r?\n|\Z)")
_AUTHOR_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def comment_marker(comment_id: int) -> str:
    """Visible on purpose: Jira keeps it through every edit and both formats, so a comment
    posted just before a crash is found and not posted twice."""
    return f"[qalita-comment:{comment_id}]"


def comment_text(mapping: Mapping, comment_id: int, author: str | None, body: str) -> str:
    # The author is one line, so the marker stays at the end of the first line.
    name = _AUTHOR_BREAKS.sub(" ", author or "").strip() or "QALITA"
    prefix = mapping.comment_prefix.format(author=name)
    first_line = f"{prefix} {comment_marker(comment_id)}" if prefix else comment_marker(comment_id)
    return f"{first_line}\n{body}"


def find_comment_marker(text: str | None) -> int | None:
    """The QALITA comment id of a comment ``comment_text`` wrote, in its plain text or its
    wiki markup; only the end of the first line counts, so a marker quoted in a body or an
    author name is not taken for it."""
    if not text:
        return None
    match = _COMMENT_MARKER.match(text)
    return int(match.group(1)) if match else None
