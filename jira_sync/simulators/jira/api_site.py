"""What third-party clients read first: ``serverInfo`` (which Jira is this?) and ``field`` (the
field ids behind the names). Both are served on every REST version a deployment has; Cloud
also answers them under ``/rest/api/2``, where clients still call them.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from jira_sync.simulators.jira.api_meta import custom_schema
from jira_sync.simulators.jira.catalog import Catalog
from jira_sync.simulators.jira.model import jira_time, now
from jira_sync.simulators.jira.simulator import Simulator

# Jira answers serverInfo to anonymous callers; the gate lets this endpoint through.
ANONYMOUS_ENDPOINTS = frozenset({"server_info"})

_CLOUD_INFO = {"version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
               "deploymentType": "Cloud", "buildNumber": 100282,
               "buildDate": "2026-01-12T08:40:11.000+0000",
               "scmInfo": "2b7ce8e7b7c1b0a8b4d1e1d7a0f3c9e5d6a4b2c1"}
_SERVER_INFO = {"version": "9.12.2", "versionNumbers": [9, 12, 2],
                "deploymentType": "Server", "buildNumber": 9120002,
                "buildDate": "2023-12-04T00:00:00.000+0000", "databaseBuildNumber": 9120002,
                "scmInfo": "5a4f1ad3e8c2b7d6f9e0a1b2c3d4e5f60718293a"}

# id: (name, schema type or None, schema items, clause names, "o"rderable "n"avigable
# "s"earchable). The system fields every issue here carries, as Jira lists them.
_SYSTEM_FIELDS: dict[str, tuple[str, str | None, str | None, tuple[str, ...], str]] = {
    "issuekey": ("Key", None, None, ("id", "issue", "issuekey", "key"), "n"),
    "summary": ("Summary", "string", None, ("summary",), "ons"),
    "description": ("Description", "string", None, ("description",), "ons"),
    "environment": ("Environment", "string", None, ("environment",), "ons"),
    "issuetype": ("Issue Type", "issuetype", None, ("issuetype", "type"), "ons"),
    "project": ("Project", "project", None, ("project",), "ns"),
    "status": ("Status", "status", None, ("status",), "ns"),
    "statusCategory": ("Status Category", "statusCategory", None, ("statusCategory",), "s"),
    "statuscategorychangedate": ("Status Category Changed", "datetime", None,
                                 ("statusCategoryChangedDate",), "ns"),
    "resolution": ("Resolution", "resolution", None, ("resolution",), "ons"),
    "resolutiondate": ("Resolved", "datetime", None, ("resolutiondate", "resolved"), "ns"),
    "priority": ("Priority", "priority", None, ("priority",), "ons"),
    "labels": ("Labels", "array", "string", ("labels",), "ons"),
    "components": ("Components", "array", "component", ("component",), "ons"),
    "fixVersions": ("Fix versions", "array", "version", ("fixVersion",), "ons"),
    "versions": ("Affects versions", "array", "version", ("affectedVersion",), "ons"),
    "assignee": ("Assignee", "user", None, ("assignee",), "ons"),
    "reporter": ("Reporter", "user", None, ("reporter",), "ons"),
    "creator": ("Creator", "user", None, ("creator",), "ns"),
    "created": ("Created", "datetime", None, ("created", "createdDate"), "ns"),
    "updated": ("Updated", "datetime", None, ("updated", "updatedDate"), "ns"),
    "lastViewed": ("Last Viewed", "datetime", None, ("lastViewed",), "n"),
    "duedate": ("Due date", "date", None, ("due", "duedate"), "ons"),
    "comment": ("Comment", "comments-page", None, ("comment",), "os"),
    "worklog": ("Log Work", "array", "worklog", (), "o"),
    "attachment": ("Attachment", "array", "attachment", ("attachments",), "os"),
    "issuelinks": ("Linked Issues", "array", "issuelinks", ("issueLink",), "os"),
    "subtasks": ("Sub-tasks", "array", "issuelinks", ("subtasks",), "n"),
    "watches": ("Watchers", "watches", None, ("watchers",), "ns"),
    "votes": ("Votes", "votes", None, ("votes",), "ns"),
    "security": ("Security Level", "securitylevel", None, ("level",), "ons"),
    "timetracking": ("Time tracking", "timetracking", None, (), "o"),
    "timespent": ("Time Spent", "number", None, ("timespent",), "n"),
    "timeestimate": ("Remaining Estimate", "number", None,
                     ("remainingEstimate", "timeestimate"), "n"),
    "timeoriginalestimate": ("Original estimate", "number", None,
                             ("originalEstimate", "timeoriginalestimate"), "n"),
    "aggregatetimespent": ("Σ Time Spent", "number", None, (), "n"),
    "aggregatetimeestimate": ("Σ Remaining Estimate", "number", None, (), "n"),
    "aggregatetimeoriginalestimate": ("Σ Original Estimate", "number", None, (), "n"),
    "progress": ("Progress", "progress", None, ("progress",), "n"),
    "aggregateprogress": ("Σ Progress", "progress", None, (), "n"),
    "workratio": ("Work Ratio", "number", None, ("workratio",), "ns"),
    "issuerestriction": ("Restrict to", "issuerestriction", None, (), "on"),
}
_CLOUD_ONLY = frozenset({"statusCategory", "statuscategorychangedate", "issuerestriction"})


def server_information(base_url: str, cloud: bool) -> dict:
    """``ServerInformation``: Cloud says ``Cloud`` and a 1001 version; Data Center says
    ``Server`` (both Server and DC do) and a 9.x version."""
    info = _CLOUD_INFO if cloud else _SERVER_INFO
    return {"baseUrl": base_url, **info, "serverTime": jira_time(now()), "serverTitle": "Jira"}


def _system_field(field_id: str) -> dict:
    """One ``FieldDetails`` of a system field."""
    name, kind, items, clauses, flags = _SYSTEM_FIELDS[field_id]
    out = {"id": field_id, "key": field_id, "name": name, "custom": False,
           "orderable": "o" in flags, "navigable": "n" in flags, "searchable": "s" in flags,
           "clauseNames": list(clauses)}
    if kind is not None:
        out["schema"] = {"type": kind, **({"items": items} if items else {}),
                         "system": field_id}
    return out


def field_list(catalog: Catalog, cloud: bool) -> list[dict]:
    """Every system field, then each project's custom fields (once each)."""
    fields = [_system_field(f) for f in _SYSTEM_FIELDS if cloud or f not in _CLOUD_ONLY]
    seen = set()
    for project in catalog.projects.values():
        for custom in project.fields:
            if custom.id in seen:
                continue
            seen.add(custom.id)
            number = custom.id.rsplit("_", 1)[1]
            fields.append({"id": custom.id, "key": custom.id, "name": custom.name,
                           "custom": True, "orderable": True, "navigable": True,
                           "searchable": True, "clauseNames": [f"cf[{number}]", custom.name],
                           "schema": custom_schema(custom)})
    return fields


def register(bp: Blueprint, sim: Simulator) -> None:
    @bp.get("/serverInfo")
    def server_info():
        return jsonify(server_information(request.host_url.rstrip("/"), sim.cloud))

    @bp.get("/field")
    def fields():
        return jsonify(field_list(sim.catalog, sim.cloud))
