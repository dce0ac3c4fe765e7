"""Rich text as the connected Jira takes it, and fingerprints of what was written.

Cloud takes ADF and Server/Data Center wiki markup; this is the one place the flushes tell
the two apart. A fingerprint stands for a written value, so a flush can tell what changed
without keeping whole descriptions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jira_sync.jira.client import JiraClient
from jira_sync.render import Document, adf_to_text, to_adf, to_wiki, wiki_to_text


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def rich_text(client: JiraClient, doc: Document) -> Any:
    """ADF on Cloud, wiki markup on Server/DC."""
    return to_adf(doc) if client.is_cloud else to_wiki(doc)


def plain_text(client: JiraClient, body: Any) -> str:
    """A rich-text value read back through the REST API of this deployment."""
    return adf_to_text(body) if client.is_cloud else wiki_to_text(body)
