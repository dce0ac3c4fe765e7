"""How a QALITA issue maps onto Jira: the configurable settings and the desired Jira issue.

``load_mapping`` merges the packaged defaults, the operator's file and an integration's
overrides into a :class:`MappingSet`; ``desired_issue`` turns a snapshot into what its Jira
issue should be under one project's :class:`Mapping`.
"""

from jira_sync.mapping.config import (
    Mapping,
    MappingError,
    MappingSet,
    Route,
    RouteRule,
    load_mapping,
    packaged_mapping_file,
)
from jira_sync.mapping.issue import (
    DesiredIssue,
    comment_marker,
    comment_text,
    description,
    desired_issue,
    find_comment_marker,
    marker_label,
    sanitize_label,
    tenant_label,
)

__all__ = [
    "DesiredIssue",
    "Mapping",
    "MappingError",
    "MappingSet",
    "Route",
    "RouteRule",
    "comment_marker",
    "comment_text",
    "description",
    "desired_issue",
    "find_comment_marker",
    "load_mapping",
    "marker_label",
    "packaged_mapping_file",
    "sanitize_label",
    "tenant_label",
]
